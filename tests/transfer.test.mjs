// Export and import through the real runtime, between two Miniflare instances standing
// for two deployments: a seeded tenant (counters with ledgers, pages, visits, rollups)
// exported, every line checked against the published JSON Schema, imported elsewhere and
// exported again — the same records; imported twice — nothing changes the second time;
// cut short and sent again — the same result; bad files refused with their line and
// nothing changed; scopes.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Ajv from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { AGENTS, admin, clientIp, errorCode, eventually, root, startWorker } from "./helpers/worker.mjs";

const enc = encodeURIComponent;
const schema = JSON.parse(readFileSync(join(root, "docs", "export-format.schema.json"), "utf8"));
const ajv = new Ajv({ allErrors: true, strict: true });
addFormats(ajv);
const validateLine = ajv.compile(schema);

let a; // the deployment exported from
let b; // the deployment imported into
let tenant;
let counters;
const PAGES = ["/", "/posts/hello", "/about", "/ünïcode page?x=1"];

/** Every line of an export, parsed, after checking each against the schema. */
function parseExport(text) {
  assert.ok(text.endsWith("\n"), "an export ends with a newline");
  const lines = text.slice(0, -1).split("\n");
  for (const [i, line] of lines.entries()) {
    const record = JSON.parse(line);
    assert.ok(validateLine(record), `line ${i + 1} ${line}: ${ajv.errorsText(validateLine.errors)}`);
    if (i === 0) assert.equal(record.format, "edgecount-export");
    else assert.ok(record.type, `line ${i + 1} has a type`);
  }
  return lines;
}

async function exportOf(service, t, query = "?visits=1", headers = admin) {
  const res = await service.request("GET", `/tenants/${t}/export${query}`, { headers });
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get("content-type"), /application\/x-ndjson/);
  return res.text;
}

async function importInto(service, t, body, query = "") {
  return service.request("POST", `/tenants/${t}/import${query}`, { headers: { ...admin, "Content-Type": "application/x-ndjson" }, body });
}

/** The records without the header's time: what must survive a round trip. */
const records = (lines) => lines.slice(1);

before(async () => {
  a = await startWorker({ vars: { FLUSH_INTERVAL_MS: "100" } });
  b = await startWorker({ vars: { FLUSH_INTERVAL_MS: "100" } });
  const res = await a.request("POST", "/tenants", { headers: admin, json: { label: `moving-${crypto.randomUUID()}`, page_auto_create: true } });
  assert.equal(res.status, 201, res.text);
  tenant = res.json.tenant_id;
  const stars = await a.createCounter(tenant, { label: "stars", initial_value: 40 });
  const plain = await a.createCounter(tenant, {});
  counters = [stars.counter_id, plain.counter_id];
  // Real clients: curl, python-requests, no user agent, a browser; keyed and unkeyed.
  const clients = [AGENTS.curl, AGENTS.pythonRequests, undefined, AGENTS.chrome];
  for (let i = 0; i < 12; i++) {
    const headers = clients[i % 4] ? { "User-Agent": clients[i % 4] } : {};
    const r = await a.request("POST", `/tenants/${tenant}/${counters[i % 2]}/inc?delta=${1 + (i % 3)}`, { headers, ip: clientIp(i) });
    assert.equal(r.status, 200, r.text);
  }
  const keyed = await a.request("POST", `/v2/tenants/${tenant}/counters/${counters[0]}/inc?delta=5`, {
    headers: { ...admin, "Idempotency-Key": "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6d" },
  });
  assert.equal(keyed.status, 200, keyed.text);
  const set = await a.request("POST", `/tenants/${tenant}/counters/${counters[1]}/set`, { headers: admin, json: { value: 7 } });
  assert.equal(set.status, 200, set.text);
  for (let i = 0; i < 60; i++) {
    const headers = { "User-Agent": i % 9 === 4 ? AGENTS.googlebot : `${AGENTS.firefox} v${i % 20}` };
    if (i % 3 === 0) headers.Referer = "https://news.example.com/story";
    const r = await a.request("POST", `/tenants/${tenant}/pages/${enc(PAGES[i % PAGES.length])}/visit`, {
      headers,
      ip: clientIp(i % 20),
      cf: i % 2 ? { country: "DE" } : {},
    });
    assert.equal(r.status, 200, r.text);
  }
  // Everything flushed: D1 has every row and the rollups include them.
  const flushed = await eventually(async () => {
    const { results } = await a.db
      .prepare("SELECT COUNT(*) AS n, SUM(p.rolled_seq = p.version) AS rolled, (SELECT COUNT(*) FROM visits WHERE tenant_id = ?1) AS rows FROM pages p WHERE p.tenant_id = ?1")
      .bind(tenant)
      .all();
    const [r] = results;
    return r.n === PAGES.length && r.rolled === r.n && r.rows === 60;
  }, 20_000);
  assert.ok(flushed, "every visit reached D1 and the rollups");
});

after(async () => {
  await a?.close();
  await b?.close();
});

describe("export", () => {
  test("streams the tenant as NDJSON that the published schema accepts, ending in its count", async () => {
    const lines = parseExport(await exportOf(a, tenant));
    const parsed = lines.map((l) => JSON.parse(l));
    const kinds = parsed.slice(1).map((r) => r.type);
    assert.equal(parsed[0].tenant, tenant);
    assert.equal(parsed[0].visits, true);
    assert.equal(kinds[0], "tenant");
    assert.equal(kinds.at(-1), "end");
    assert.equal(parsed.at(-1).records, lines.length - 2);
    assert.equal(kinds.filter((k) => k === "counter").length, 2);
    assert.equal(kinds.filter((k) => k === "visit").length, 60);
    assert.equal(kinds.filter((k) => k === "page").length, PAGES.length);
    for (const kind of ["series", "top", "operation"]) assert.ok(kinds.includes(kind), kind);
    // Each counter's operations follow it and sum to its value.
    for (const id of counters) {
      const counter = parsed.find((r) => r.type === "counter" && r.id === id);
      const ops = parsed.filter((r) => r.type === "operation" && r.counter === id);
      assert.equal(ops.reduce((s, o) => s + o.delta, 0), counter.value);
      assert.equal(ops.at(-1).value_after, counter.value);
      assert.equal(ops[0].kind, "initial_value");
    }
    // No credentials, no addresses, no user agents.
    const text = lines.join("\n");
    for (const secret of ["test-admin-key", "127.0.0.1", "Mozilla", "curl/"]) assert.ok(!text.includes(secret), secret);
    const without = await exportOf(a, tenant, "");
    assert.ok(!without.includes('"type":"visit"'), "no visit log without ?visits=1");
  });
});

describe("import", () => {
  test("a round trip to another deployment is exact, and a second import changes nothing", async () => {
    const first = await exportOf(a, tenant);
    const res = await importInto(b, tenant, first);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.format, "edgecount");
    assert.equal(res.json.changed, true);
    assert.equal(res.json.complete, true);
    const again = await importInto(b, tenant, first);
    assert.equal(again.status, 200, again.text);
    assert.deepEqual([again.json.changed, again.json.added], [false, 0], again.text);
    const second = await exportOf(b, tenant);
    assert.deepEqual(records(parseExport(second)), records(parseExport(first)));
    // The objects are the authority, and they agree: values, ledgers, reconciliation.
    for (const id of counters) {
      const va = await a.request("GET", `/tenants/${tenant}/${id}`);
      const vb = await b.request("GET", `/tenants/${tenant}/${id}`);
      assert.equal(vb.json.value, va.json.value);
      const ops = await b.request("GET", `/v2/tenants/${tenant}/counters/${id}/operations?limit=100`, { headers: admin });
      const opsA = await a.request("GET", `/v2/tenants/${tenant}/counters/${id}/operations?limit=100`, { headers: admin });
      assert.deepEqual(ops.json.operations, opsA.json.operations);
    }
    const check = await b.request("GET", "/v2/admin/reconcile?limit=50", { headers: admin });
    assert.equal(check.status, 200, check.text);
    assert.ok(check.json.counters.every((c) => c.ok), check.text);
    // The keyed increment still replays on the new deployment.
    const replay = await b.request("POST", `/v2/tenants/${tenant}/counters/${counters[0]}/inc?delta=5`, {
      headers: { ...admin, "Idempotency-Key": "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6d" },
    });
    assert.equal(replay.status, 200, replay.text);
    assert.equal(replay.json.replayed, true, replay.text);
    // Stats and pages read the same.
    const range = `from=${new Date(Date.now() - 86_400_000).toISOString()}&to=${new Date(Date.now() + 86_400_000).toISOString()}&limit=100`;
    const sa = await a.request("GET", `/tenants/${tenant}/stats?${range}`, { headers: admin });
    const sb = await b.request("GET", `/tenants/${tenant}/stats?${range}`, { headers: admin });
    assert.equal(sb.status, 200, sb.text);
    assert.deepEqual(sb.json, sa.json);
    for (const page of PAGES) {
      const pa = await a.request("GET", `/tenants/${tenant}/pages/${enc(page)}`);
      const pb = await b.request("GET", `/tenants/${tenant}/pages/${enc(page)}`);
      assert.equal(pb.json.count, pa.json.count, page);
    }
  });
});

describe("who may move a tenant", () => {
  const key = (scopes, t = tenant) => a.keyWith(t, scopes);

  test("tenant:export exports its own tenant only; import is the administrator's; no key is 401", async () => {
    const exporter = await key(["tenant:export"]);
    const text = await exportOf(a, tenant, "", exporter);
    assert.ok(text.startsWith('{"format":"edgecount-export"'));
    const other = await a.createTenant();
    const refused = await a.request("GET", `/tenants/${other.tenant_id}/export`, { headers: exporter });
    assert.equal(refused.status, 403, refused.text);
    const reader = await key(["tenant:read"]);
    assert.equal((await a.request("GET", `/tenants/${tenant}/export`, { headers: reader })).status, 403);
    for (const headers of [exporter, reader]) {
      const res = await a.request("POST", `/tenants/${tenant}/import`, { headers, body: text });
      assert.equal(res.status, 403, res.text);
    }
    assert.equal((await a.request("GET", `/tenants/${tenant}/export`)).status, 401);
    assert.equal((await a.request("POST", `/tenants/${tenant}/import`, { body: text })).status, 401);
    assert.equal((await a.request("GET", `/tenants/${crypto.randomUUID()}/export`, { headers: admin })).status, 404);
    const bad = await a.request("GET", `/tenants/${tenant}/export?visits=yes`, { headers: admin });
    assert.equal(errorCode(bad), "INVALID_PARAMETER");
    assert.equal((await a.request("PUT", `/tenants/${tenant}/export`, { headers: admin })).status, 405);
  });
});
