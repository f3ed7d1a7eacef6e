// Daily backups through the real runtime and Miniflare's local R2: the retention cron
// writes each tenant's export, gzipped, to backups/{tenant}/{date}.ndjson.gz, skips a
// tenant whose copy of the day exists, deletes copies past BACKUP_KEEP_DAYS, and a
// restore is one import of the file on another deployment.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { ANNEX, AGENTS, admin, eventually, startWorker } from "./helpers/worker.mjs";

const DAY = 86_400_000;
const date = (ms) => new Date(ms).toISOString().slice(0, 10);
let svc;
let tenant;
let counter;

before(async () => {
  svc = await startWorker({ r2: true, vars: { FLUSH_INTERVAL_MS: "100", BACKUP_KEEP_DAYS: "30" } });
  tenant = (await svc.createTenant()).tenant_id;
  counter = (await svc.createCounter(tenant, { label: "downloads", initial_value: 7 })).counter_id;
  assert.equal((await svc.request("POST", `/tenants/${tenant}/${counter}/inc`, { headers: { "User-Agent": AGENTS.curl } })).status, 200);
  await svc.request("PATCH", `/tenants/${tenant}`, { headers: admin, json: { page_auto_create: true } });
  const visit = await svc.request("POST", `/tenants/${tenant}/pages/%2Fhome/visit`, { headers: { "User-Agent": AGENTS.firefox } });
  assert.equal(visit.status, 200, visit.text);
  const flushed = await eventually(async () => (await svc.db.prepare("SELECT COUNT(*) AS n FROM visits WHERE tenant_id = ?").bind(tenant).first()).n === 1, 10_000);
  assert.ok(flushed);
});
after(async () => {
  await svc?.close();
});

const cron = async () => (await svc.mf.getWorker(ANNEX)).scheduled({ cron: "17 3 * * *" });

describe("daily backups to R2", () => {
  test("write every tenant's export, gzipped; skip a day already written; prune past the kept days", async () => {
    const bucket = await svc.mf.getR2Bucket("BACKUPS");
    const prefix = `backups/${tenant}/`;
    const old = [`${prefix}2020-01-01.ndjson.gz`, `${prefix}${date(Date.now() - 30 * DAY)}.ndjson.gz`];
    const kept = `${prefix}${date(Date.now() - 29 * DAY)}.ndjson.gz`;
    for (const key of [...old, kept]) await bucket.put(key, "an older copy");
    await cron();
    const key = `${prefix}${date(Date.now())}.ndjson.gz`;
    const object = await bucket.get(key);
    assert.ok(object, `${key} written`);
    const text = gunzipSync(Buffer.from(await object.arrayBuffer())).toString("utf8");
    const lines = text.trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(lines[0].format, "edgecount-export");
    assert.equal(lines[0].tenant, tenant);
    assert.equal(lines[0].visits, true, "a backup keeps the visit log");
    assert.equal(lines.at(-1).type, "end");
    assert.equal(lines.filter((l) => l.type === "visit").length, 1);
    assert.equal(lines.find((l) => l.type === "counter").value, 8);
    const listed = (await bucket.list({ prefix })).objects.map((o) => o.key).sort();
    assert.deepEqual(listed, [kept, key].sort(), "copies older than 30 days are gone");
    // Every tenant has its copy.
    const { results } = await svc.db.prepare("SELECT id FROM tenants").all();
    for (const { id } of results) assert.ok(await bucket.head(`backups/${id}/${date(Date.now())}.ndjson.gz`), id);
    // Run again the same day: the copy stands as written.
    const before = (await bucket.head(key)).uploaded.getTime();
    await svc.request("POST", `/tenants/${tenant}/${counter}/inc`);
    await cron();
    assert.equal((await bucket.head(key)).uploaded.getTime(), before);
  });

  test("restore is one import of the backup on another deployment", async () => {
    const bucket = await svc.mf.getR2Bucket("BACKUPS");
    const object = await bucket.get(`backups/${tenant}/${date(Date.now())}.ndjson.gz`);
    const text = gunzipSync(Buffer.from(await object.arrayBuffer())).toString("utf8");
    const elsewhere = await startWorker();
    try {
      const res = await elsewhere.request("POST", `/tenants/${tenant}/import`, { headers: admin, body: text });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.complete, true);
      const value = await elsewhere.request("GET", `/tenants/${tenant}/${counter}`);
      assert.equal(value.json.value, 8);
      const page = await elsewhere.request("GET", `/tenants/${tenant}/pages/%2Fhome`);
      assert.equal(page.json.count, 1);
    } finally {
      await elsewhere.close();
    }
  });
});
