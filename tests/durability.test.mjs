// An acknowledged increment is never lost and an unacknowledged one never counted twice:
// concurrency on one object, batching into D1, idempotent retries, failed flushes and
// restarts, all through the real runtime.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { admin, clientIp, errorCode, eventually, startWorker } from "./helpers/worker.mjs";

const FLUSH_MS = 300;
let svc;
before(async () => {
  svc = await startWorker({ vars: { FLUSH_INTERVAL_MS: String(FLUSH_MS) } });
  // Counts every write of a value into D1, so tests can see how often flushes land.
  await svc.db.exec("CREATE TABLE IF NOT EXISTS test_flushes (counter_id TEXT, value INTEGER)");
  await svc.db.exec(
    "CREATE TRIGGER IF NOT EXISTS test_count_flushes AFTER UPDATE OF value ON counters BEGIN INSERT INTO test_flushes VALUES (NEW.id, NEW.value); END",
  );
});
after(() => svc?.close());

async function flushCount(counterId) {
  const row = await svc.db.prepare("SELECT COUNT(*) AS n FROM test_flushes WHERE counter_id = ?").bind(counterId).first();
  return row.n;
}

describe("concurrency and batching", () => {
  test("1,000 concurrent increments on one counter add exactly 1,000", async () => {
    const t = await svc.createTenant();
    const c = await svc.createCounter(t.tenant_id, { initial_value: 5 });
    const path = `/tenants/${t.tenant_id}/${c.counter_id}/inc`;
    // A thousand readers, each liking once: one client each, as on the real edge.
    const answers = await Promise.all(Array.from({ length: 1000 }, (_, i) => svc.request("POST", path, { ip: clientIp(i) })));
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
    const values = answers.map((a) => a.json.value).sort((a, b) => a - b);
    // Every acknowledged increment saw a distinct value: none lost, none doubled.
    assert.deepEqual(values, Array.from({ length: 1000 }, (_, i) => 6 + i));
    assert.equal(new Set(answers.map((a) => a.json.operation_id)).size, 1000);
    assert.equal((await svc.request("GET", `/tenants/${t.tenant_id}/${c.counter_id}`)).json.value, 1005);
    assert.ok(await eventually(async () => (await svc.d1Value(c.counter_id)) === 1005), "D1 catches up with the object");
  });

  test("under sustained load D1 sees about one write per flush interval", async () => {
    const t = await svc.createTenant();
    const c = await svc.createCounter(t.tenant_id);
    const path = `/tenants/${t.tenant_id}/${c.counter_id}/inc`;
    const started = Date.now();
    let sent = 0;
    while (Date.now() - started < 1500) {
      await Promise.all(Array.from({ length: 20 }, (_, i) => svc.request("POST", path, { ip: clientIp(sent + i) })));
      sent += 20;
    }
    const elapsed = Date.now() - started;
    assert.ok(await eventually(async () => (await svc.d1Value(c.counter_id)) === sent));
    const writes = await flushCount(c.counter_id);
    const intervals = Math.ceil(elapsed / FLUSH_MS) + 1;
    assert.ok(sent > 100, `sent ${sent}`);
    assert.ok(writes >= 1 && writes <= intervals, `${writes} D1 writes for ${sent} increments over ${elapsed} ms`);
  });

  test("D1 keeps up under continuous keyed traffic: pruning keys never holds back a flush", async () => {
    const t = await svc.createTenant();
    const c = await svc.createCounter(t.tenant_id);
    const path = `/tenants/${t.tenant_id}/${c.counter_id}/inc`;
    // A keyed increment schedules the key's pruning, two days out.
    await svc.request("POST", path, { headers: { "Idempotency-Key": crypto.randomUUID() } });
    assert.ok(await eventually(async () => (await svc.d1Value(c.counter_id)) === 1, 3000), "the first flush");
    // Then traffic that keeps the object alive, keyed and not.
    let sent = 1;
    const acknowledged = []; // [time, value]
    const started = Date.now();
    while (Date.now() - started < 2000) {
      const res = await svc.request("POST", path, { ip: clientIp(5000 + sent), headers: sent % 2 ? { "Idempotency-Key": crypto.randomUUID() } : {} });
      acknowledged.push([Date.now(), res.json.value]);
      sent++;
    }
    // D1 trails the object by at most about a flush interval (with room for a slow run).
    const d1 = await svc.d1Value(c.counter_id);
    const due = acknowledged.filter(([at]) => at < Date.now() - 3 * FLUSH_MS).at(-1)[1];
    assert.ok(d1 >= due, `D1 holds ${d1}, but ${due} were acknowledged more than ${3 * FLUSH_MS} ms ago`);
    assert.ok(await eventually(async () => (await svc.d1Value(c.counter_id)) === sent, FLUSH_MS * 4), `D1 reaches ${sent}`);
  });

  test("reads never write to D1", async () => {
    const t = await svc.createTenant();
    const c = await svc.createCounter(t.tenant_id);
    for (let i = 0; i < 5; i++) await svc.request("GET", `/tenants/${t.tenant_id}/${c.counter_id}`);
    await new Promise((r) => setTimeout(r, FLUSH_MS * 2));
    assert.equal(await flushCount(c.counter_id), 0);
  });
});

describe("idempotency", () => {
  let tenant;
  before(async () => {
    tenant = (await svc.createTenant()).tenant_id;
  });

  test("a replayed increment returns the first answer and changes nothing", async () => {
    const c = await svc.createCounter(tenant);
    const key = crypto.randomUUID();
    const path = `/tenants/${tenant}/${c.counter_id}/inc?delta=4`;
    const first = await svc.request("POST", path, { headers: { "Idempotency-Key": key } });
    const again = await svc.request("POST", path, { headers: { "Idempotency-Key": key } });
    assert.equal(first.status, 200);
    assert.equal(first.json.replayed, false);
    assert.equal(again.status, 200);
    assert.equal(again.json.replayed, true);
    assert.equal(again.json.operation_id, first.json.operation_id);
    assert.equal(again.json.value, 4);
    assert.equal((await svc.request("GET", `/tenants/${tenant}/${c.counter_id}`)).json.value, 4);

    const reused = await svc.request("POST", `/tenants/${tenant}/${c.counter_id}/inc?delta=5`, {
      headers: { "Idempotency-Key": key },
    });
    assert.equal(reused.status, 409);
    assert.equal(errorCode(reused), "IDEMPOTENCY_KEY_REUSED");
    assert.equal((await svc.request("GET", `/tenants/${tenant}/${c.counter_id}`)).json.value, 4);
  });

  test("the same key sent 50 times in parallel applies once", async () => {
    const c = await svc.createCounter(tenant);
    const key = crypto.randomUUID();
    const answers = await Promise.all(
      Array.from({ length: 50 }, () =>
        svc.request("POST", `/tenants/${tenant}/${c.counter_id}/inc`, { headers: { "Idempotency-Key": key } }),
      ),
    );
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
    assert.equal(answers.filter((a) => !a.json.replayed).length, 1);
    assert.equal(new Set(answers.map((a) => a.json.operation_id)).size, 1);
    assert.equal((await svc.request("GET", `/tenants/${tenant}/${c.counter_id}`)).json.value, 1);
  });

  test("set replays too", async () => {
    const c = await svc.createCounter(tenant);
    const key = crypto.randomUUID();
    const path = `/tenants/${tenant}/counters/${c.counter_id}/set`;
    const headers = { ...admin, "Idempotency-Key": key };
    const first = await svc.request("POST", path, { headers, json: { value: 10 } });
    await svc.request("POST", `/tenants/${tenant}/${c.counter_id}/inc`);
    const again = await svc.request("POST", path, { headers, json: { value: 10 } });
    assert.equal(again.json.replayed, true);
    assert.equal(again.json.operation_id, first.json.operation_id);
    assert.equal((await svc.request("GET", `/tenants/${tenant}/${c.counter_id}`)).json.value, 11);
    const reused = await svc.request("POST", path, { headers, json: { value: 12 } });
    assert.equal(errorCode(reused), "IDEMPOTENCY_KEY_REUSED");
  });

  test("keyed creations replay instead of creating twice", async () => {
    const key = crypto.randomUUID();
    const headers = { ...admin, "Idempotency-Key": key };
    const label = `keyed-${key}`;
    const first = await svc.request("POST", "/tenants", { headers, json: { label } });
    const again = await svc.request("POST", "/tenants", { headers, json: { label } });
    assert.equal(first.status, 201);
    assert.equal(again.status, 201);
    assert.deepEqual(again.json, first.json);
    assert.equal(again.headers.get("idempotent-replayed"), "true");
    const other = await svc.request("POST", "/tenants", { headers, json: { label: `${label}-2` } });
    assert.equal(errorCode(other), "IDEMPOTENCY_KEY_REUSED");

    const counterKey = { ...admin, "Idempotency-Key": crypto.randomUUID() };
    const created = await Promise.all(
      Array.from({ length: 10 }, () => svc.request("POST", `/tenants/${first.json.tenant_id}`, { headers: counterKey, json: {} })),
    );
    assert.deepEqual([...new Set(created.map((r) => r.status))], [201]);
    assert.equal(new Set(created.map((r) => r.json.counter_id)).size, 1);
    const rows = await svc.db.prepare("SELECT COUNT(*) AS n FROM counters WHERE tenant_id = ?").bind(first.json.tenant_id).first();
    assert.equal(rows.n, 1);

    // Retries of a labelled creation racing each other replay too, not 409 LABEL_EXISTS.
    const labelled = { ...admin, "Idempotency-Key": crypto.randomUUID() };
    const labelled2 = { ...admin, "Idempotency-Key": crypto.randomUUID() };
    const raced = await Promise.all(
      Array.from({ length: 10 }, () => svc.request("POST", `/tenants/${first.json.tenant_id}`, { headers: labelled, json: { label: "raced" } })),
    );
    assert.deepEqual(raced.map((r) => r.status), Array(10).fill(201), raced.map((r) => r.text).join("\n"));
    assert.equal(new Set(raced.map((r) => r.json.counter_id)).size, 1);
    const racedTenants = await Promise.all(
      Array.from({ length: 10 }, () => svc.request("POST", "/tenants", { headers: labelled2, json: { label: `raced-${key}` } })),
    );
    assert.deepEqual(racedTenants.map((r) => r.status), Array(10).fill(201));
  });

  test("a malformed key is 400 INVALID_IDEMPOTENCY_KEY and changes nothing", async () => {
    const c = await svc.createCounter(tenant);
    for (const key of ["abc", "", "0190a6b23c4d7e8f9a0b1c2d3e4f5a6b", "x".repeat(100)]) {
      const res = await svc.request("POST", `/tenants/${tenant}/${c.counter_id}/inc`, { headers: { "Idempotency-Key": key } });
      assert.equal(res.status, 400, key);
      assert.equal(errorCode(res), "INVALID_IDEMPOTENCY_KEY", key);
    }
    assert.equal((await svc.request("GET", `/tenants/${tenant}/${c.counter_id}`)).json.value, 0);
  });
});

describe("failures and restarts", () => {
  test("a failed flush is retried and D1 catches up exactly", async () => {
    const t = await svc.createTenant();
    const c = await svc.createCounter(t.tenant_id);
    const path = `/tenants/${t.tenant_id}/${c.counter_id}/inc`;
    // Take the table away so every flush fails, then bring it back.
    await svc.db.exec("ALTER TABLE counters RENAME TO counters_parked");
    try {
      for (let i = 0; i < 7; i++) assert.equal((await svc.request("POST", path)).status, 200);
      await new Promise((r) => setTimeout(r, FLUSH_MS * 3));
    } finally {
      await svc.db.exec("ALTER TABLE counters_parked RENAME TO counters");
    }
    assert.equal(await svc.d1Value(c.counter_id), 0, "nothing reached D1 while it was away");
    assert.ok(await eventually(async () => (await svc.d1Value(c.counter_id)) === 7, 8000), "the retry lands");
    await new Promise((r) => setTimeout(r, FLUSH_MS * 2));
    assert.equal(await svc.d1Value(c.counter_id), 7, "and nothing is counted twice");
    assert.equal((await svc.request("GET", `/tenants/${t.tenant_id}/${c.counter_id}`)).json.value, 7);
  });

  test("state survives disposing the runtime and starting a new one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edgecount-persist-"));
    try {
      let first = await startWorker({ persistTo: dir, vars: { FLUSH_INTERVAL_MS: "60000" } });
      const t = await first.createTenant();
      const c = await first.createCounter(t.tenant_id, { label: "persisted" });
      const key = crypto.randomUUID();
      const path = `/tenants/${t.tenant_id}/${c.counter_id}/inc`;
      for (let i = 0; i < 3; i++) await first.request("POST", path);
      await first.request("POST", path, { headers: { "Idempotency-Key": key } });
      // The flush interval is a minute: D1 has not seen these increments yet.
      assert.equal(await first.d1Value(c.counter_id), 0);
      await first.close();

      const second = await startWorker({ persistTo: dir });
      try {
        const read = await second.request("GET", `/tenants/${t.tenant_id}/${c.counter_id}`);
        assert.equal(read.status, 200);
        assert.equal(read.json.value, 4);
        assert.equal(read.json.label, "persisted");
        const replay = await second.request("POST", path, { headers: { "Idempotency-Key": key } });
        assert.equal(replay.json.replayed, true);
        assert.equal((await second.request("POST", path)).json.value, 5);
        assert.equal((await second.request("GET", `/tenants/${t.tenant_id}`)).json.label, t.label);
        // The pending alarm fires in the new runtime and brings D1 up to date.
        assert.ok(await eventually(async () => (await second.d1Value(c.counter_id)) === 5, 5000));
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
