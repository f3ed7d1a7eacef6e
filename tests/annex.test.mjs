// Two Workers: the edge (objects, hot routes) hands the annex its routes (stats, export,
// import, the GitHub cache) through the ANNEX service binding, and the annex runs the
// scheduled jobs. Its configuration is written from wrangler.toml.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { experimental_readRawConfig } from "wrangler";
import { annexConfig } from "../scripts/annex-config.mjs";
import { ADMIN_KEY, ANNEX, admin, edgecountOptions, errorCode, migrate, root, startWorker } from "./helpers/worker.mjs";

const edgeToml = () => experimental_readRawConfig({ config: join(root, "wrangler.toml") }).rawConfig;

describe("the annex's configuration, from wrangler.toml", () => {
  test("the same resources and vars, the edge's objects by script name, no public address, the crons", () => {
    const edge = edgeToml();
    const annex = annexConfig(edge);
    assert.equal(annex.name, ANNEX);
    assert.equal(annex.compatibility_date, edge.compatibility_date);
    assert.deepEqual(annex.vars, edge.vars, "every var as the edge has it");
    assert.deepEqual(annex.kv_namespaces, edge.kv_namespaces);
    assert.deepEqual(annex.d1_databases.map((d) => d.database_id), edge.d1_databases.map((d) => d.database_id));
    assert.deepEqual(annex.ratelimits, edge.ratelimits, "the brakes count in the same namespaces");
    assert.deepEqual(
      annex.durable_objects.bindings,
      edge.durable_objects.bindings.map((b) => ({ ...b, script_name: "edgecount" })),
    );
    assert.equal(annex.migrations, undefined, "the classes and their migrations stay with the edge");
    assert.equal(annex.workers_dev, false);
    assert.equal(annex.preview_urls, false);
    assert.deepEqual(annex.triggers.crons, [edge.vars.RETENTION_CRON, edge.vars.GITHUB_REFRESH_CRON]);
    // An empty list, not a missing one: deploying it also removes the crons an earlier
    // release scheduled on the edge, which has no scheduled handler now.
    assert.deepEqual(edge.triggers, { crons: [] });
  });

  test("settings it does not know are shared; the edge's addresses are not", () => {
    const edge = { ...edgeToml(), account_id: "abc", limits: { cpu_ms: 50 }, placement: { mode: "smart" }, routes: [{ pattern: "count.example/*", zone_name: "example" }] };
    const annex = annexConfig(edge);
    assert.equal(annex.account_id, "abc");
    assert.deepEqual(annex.limits, { cpu_ms: 50 });
    assert.deepEqual(annex.placement, { mode: "smart" });
    assert.equal(annex.routes, undefined, "no address of its own");
    assert.equal(annex.assets, undefined);
    assert.equal(annex.services, undefined);
  });

  test("the crons: config.rs's defaults when the vars are left out, and never the same twice", () => {
    const edge = edgeToml();
    const { RETENTION_CRON: _, GITHUB_REFRESH_CRON: __, ...vars } = edge.vars;
    assert.deepEqual(annexConfig({ ...edge, vars }).triggers.crons, ["17 3 * * *", "*/5 * * * *"]);
    assert.throws(() => annexConfig({ ...edge, vars: { ...vars, RETENTION_CRON: "0 * * * *", GITHUB_REFRESH_CRON: "0 * * * *" } }), /same/);
  });

  test("ids written into wrangler.toml (by setup:cloudflare) and a bound R2 bucket follow", () => {
    const edge = edgeToml();
    edge.d1_databases[0].database_id = "11111111-2222-4333-8444-555555555555";
    edge.kv_namespaces[0].id = "0123456789abcdef0123456789abcdef";
    edge.r2_buckets = [{ binding: "BACKUPS", bucket_name: "edgecount-backups" }];
    const annex = annexConfig(edge);
    assert.equal(annex.d1_databases[0].database_id, "11111111-2222-4333-8444-555555555555");
    assert.equal(annex.kv_namespaces[0].id, "0123456789abcdef0123456789abcdef");
    assert.deepEqual(annex.r2_buckets, edge.r2_buckets);
  });

  test("without the ANNEX service binding the build stops and says why", () => {
    const { services: _, ...edge } = edgeToml();
    assert.throws(() => annexConfig(edge), /ANNEX/);
  });
});

describe("the edge hands the annex its routes", () => {
  let svc;
  before(async () => {
    svc = await startWorker();
  });
  after(() => svc?.close());

  test("an annex route answers through the annex's own pipeline: auth, CORS, request id", async () => {
    const { tenant_id } = await svc.createTenant();
    const seen = await svc.request("GET", `/tenants/${tenant_id}/export`, { headers: { ...admin, "CF-Ray": "annex-ray-1" } });
    assert.equal(seen.status, 200);
    assert.equal(seen.headers.get("x-request-id"), "annex-ray-1", "the edge's request id reaches the annex");
    const [header] = seen.text.trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(header.tenant, tenant_id);
    const anonymous = await svc.request("GET", `/tenants/${tenant_id}/stats`);
    assert.equal(anonymous.status, 401);
    assert.equal(errorCode(anonymous), "UNAUTHORIZED");
    const head = await svc.request("HEAD", `/tenants/${tenant_id}/stats`, { headers: admin });
    assert.equal(head.status, 200);
    assert.equal(head.text, "");
  });

  test("the scheduled jobs run in the annex", async () => {
    const { tenant_id } = await svc.createTenant();
    const day = Math.floor(Date.now() / 86_400_000) - 500;
    await svc.db
      .prepare("INSERT INTO pages (tenant_id, page_id, count, version, created_ms, updated_ms) VALUES (?1, 'old', 1, 1, 0, 0)")
      .bind(tenant_id)
      .run();
    await svc.db
      .prepare("INSERT INTO visits (tenant_id, page_id, seq, ts, referrer_host, country, agent, counted, is_unique) VALUES (?1, 'old', 1, ?2, NULL, NULL, 'browser', 1, 1)")
      .bind(tenant_id, day * 86_400_000)
      .run();
    await (await svc.mf.getWorker(ANNEX)).scheduled({ cron: "17 3 * * *" });
    const left = await svc.db.prepare("SELECT COUNT(*) AS n FROM visits WHERE tenant_id = ?").bind(tenant_id).first();
    assert.equal(left.n, 0, "retention moved the expired visit");
  });
});

test("an annex that fails: the edge answers a JSON 500 with a request id, and its own routes go on", async () => {
  // The annex replaced by a Worker that throws on every request.
  const [edge] = edgecountOptions({ ADMIN_API_KEY: ADMIN_KEY });
  const broken = { name: ANNEX, modules: true, script: "export default { fetch() { throw new Error('annex down'); } }" };
  const mf = new Miniflare({ workers: [edge, broken], handleRuntimeStdio: (out, err) => (out.resume(), err.resume()) });
  try {
    const url = await mf.ready;
    await migrate(await mf.getD1Database("DB"));
    const call = (method, path, headers = {}) => fetch(new URL(path, url), { method, headers: { "X-API-Key": ADMIN_KEY, ...headers } });
    const tenant = await fetch(new URL("/tenants", url), { method: "POST", headers: { "X-API-Key": ADMIN_KEY }, body: JSON.stringify({ label: "annex-down" }) });
    assert.equal(tenant.status, 201);
    const { tenant_id } = await tenant.json();
    const stats = await call("GET", `/tenants/${tenant_id}/stats`, { "CF-Ray": "down-1" });
    assert.equal(stats.status, 500);
    assert.equal(stats.headers.get("x-request-id"), "down-1");
    const body = await stats.json();
    assert.equal(body.errors[0].code, "INTERNAL_ERROR");
    assert.ok(!JSON.stringify(body).includes("annex down"), "no internal detail in the answer");
    const counter = await fetch(new URL(`/tenants/${tenant_id}`, url), { method: "POST", headers: { "X-API-Key": ADMIN_KEY }, body: "{}" });
    assert.equal(counter.status, 201, "the edge's own routes still answer");
  } finally {
    await mf.dispose();
  }
});

test("wrangler.toml binds the annex by the name its configuration carries", () => {
  const toml = readFileSync(join(root, "wrangler.toml"), "utf8");
  assert.match(toml, /\[\[services\]\]\nbinding = "ANNEX"\nservice = "edgecount-annex"/);
});
