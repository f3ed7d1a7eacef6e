// Fault tests: the runtime killed mid-load, and a sweep of malformed requests. Each is
// bounded to a few seconds.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { admin, clientIp, eventually, startWorker, workerdChildren } from "./helpers/worker.mjs";

describe("crash", () => {
  test("SIGKILL mid-load: every acknowledged increment survives, nothing is invented", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edgecount-crash-"));
    try {
      const before = new Set(workerdChildren());
      const first = await startWorker({ persistTo: dir });
      const runtime = workerdChildren().filter((pid) => !before.has(pid));
      if (runtime.length !== 1) await first.close();
      assert.equal(runtime.length, 1, "found the runtime process");
      const t = await first.createTenant();
      const c = await first.createCounter(t.tenant_id, { initial_value: 100 });
      const path = `/tenants/${t.tenant_id}/${c.counter_id}/inc`;

      let sent = 0;
      let acknowledged = 0;
      let stop = false;
      const client = async () => {
        while (!stop) {
          sent++;
          try {
            // Many readers, each its own client, as on the real edge.
            const res = await first.request("POST", path, { ip: clientIp(sent) });
            if (res.status === 200) acknowledged++;
          } catch {
            // The runtime died under this request: not acknowledged.
          }
        }
      };
      const clients = Array.from({ length: 16 }, client);
      await eventually(() => acknowledged >= 300, 10_000, 5);
      process.kill(runtime[0], "SIGKILL");
      stop = true;
      await Promise.all(clients);
      // Disposing a runtime that is already dead can wait forever; give it a moment.
      await Promise.race([first.close().catch(() => {}), new Promise((r) => setTimeout(r, 2000))]);
      assert.ok(acknowledged >= 300, `acknowledged ${acknowledged}`);

      const second = await startWorker({ persistTo: dir });
      try {
        const value = (await second.request("GET", `/tenants/${t.tenant_id}/${c.counter_id}`)).json.value;
        assert.ok(value >= 100 + acknowledged, `value ${value} holds all ${acknowledged} acknowledged increments`);
        assert.ok(value <= 100 + sent, `value ${value} is not more than the ${sent} sent`);
        assert.ok(await eventually(async () => (await second.d1Value(c.counter_id)) === value, 5000), "D1 converges");
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("malformed input", () => {
  let svc;
  let tenant;
  let counters;
  before(async () => {
    svc = await startWorker({ vars: { CORS_ALLOWED_ORIGINS: "https://ok.example" } });
    tenant = (await svc.createTenant("sweep")).tenant_id;
    counters = [
      await svc.createCounter(tenant, { label: "a", initial_value: 10, max_delta: 5 }),
      await svc.createCounter(tenant, { label: "b", initial_value: -4 }),
    ];
  });
  after(() => svc?.close());

  const CODES = new Set([
    "TENANT_NOT_FOUND", "TENANT_LABEL_EXISTS", "COUNTER_NOT_FOUND", "COUNTER_LABEL_EXISTS",
    "RATE_LIMIT_EXCEEDED", "UNAUTHORIZED", "FORBIDDEN", "INVALID_JSON", "INVALID_PARAMETER",
    "INVALID_DELTA", "INVALID_UUID", "INVALID_CURSOR", "DELTA_EXCEEDS_MAXIMUM", "COUNTER_OVERFLOW",
    "IDEMPOTENCY_KEY_REQUIRED", "INVALID_IDEMPOTENCY_KEY", "IDEMPOTENCY_KEY_REUSED",
    "METHOD_NOT_ALLOWED", "PAYLOAD_TOO_LARGE", "NOT_FOUND",
  ]);

  function cases() {
    const [a] = counters;
    const c = a.counter_id;
    const t = tenant;
    const missing = "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";
    const out = [];
    const add = (method, path, init = {}) => out.push({ method, path, ...init });

    // Paths: bad ids, unicode, control characters, traversal, unknown shapes.
    const badIds = ["x", "0", "%00", "%F0%9F%98%80", "%C3%A9", "null", "undefined", "' OR 1=1 --", "..%2F..", "a".repeat(600),
      missing.toUpperCase().replace(/-/g, ""), `${missing}0`, missing.slice(1), "%", "%zz", "%E2%80%AE", "{}", "[]"];
    for (const id of badIds) {
      add("GET", `/tenants/${id}`);
      add("POST", `/tenants/${id}`, { headers: admin, body: "{}" });
      add("GET", `/tenants/${t}/${id}`);
      add("POST", `/tenants/${t}/${id}/inc`);
      add("POST", `/tenants/${id}/${c}/inc`);
      add("POST", `/tenants/${t}/counters/${id}/set`, { headers: admin, body: '{"value":1}' });
    }
    for (const p of ["/", "/tenants/", `/tenants/${t}/${c}/dec`, `/tenants/${t}/${c}/inc/extra`, "/v3", "/%00", "/tenants//inc", `/tenants/${t}/counters/${c}/set/x`]) {
      add("GET", p);
      add("POST", p);
    }
    // Query strings: deltas of every wrong kind.
    const deltas = ["0", "-1", "-0", "1.0", "1e2", "0x10", "+1", "%201", "1%20", "", "%00", "%F0%9F%98%80", "NaN", "Infinity",
      "6", "9007199254740992", "99999999999999999999999999999999", "1&delta=1", "[]", "true", "١", "%2B1"];
    for (const d of deltas) add("POST", `/tenants/${t}/${c}/inc?delta=${d}`);
    for (const q of ["limit=0", "limit=101", "limit=-5", "limit=abc", "limit=", "cursor=", "cursor=%00", "cursor=AAAA", "limit=5&limit=6",
      `cursor=${"A".repeat(5000)}`, "cursor=eyJhZnRlciI6MX0"]) {
      add("GET", `/tenants/${t}/counters?${q}`, { headers: admin });
    }
    // Headers: keys, idempotency keys, origins, methods.
    for (const key of ["", "nope", "test-admin-key.", "TEST-ADMIN-KEY", "x".repeat(4000), "test-admin-ke"]) {
      add("POST", "/tenants", { headers: { "X-API-Key": key }, body: '{"label":"never"}' });
      add("POST", `/tenants/${t}/counters/${c}/set`, { headers: { Authorization: `Bearer ${key}` }, body: '{"value":1}' });
    }
    for (const auth of ["Basic dGVzdA==", "Bearer", "bearer", "Token test-admin-key", "Bearer  "]) {
      add("GET", `/tenants/${t}/counters`, { headers: { Authorization: auth } });
    }
    for (const k of ["", "abc", "not-a-uuid-at-all-not-a-uuid-at-all", "0190a6b23c4d7e8f9a0b1c2d3e4f5a6b0000", "é".repeat(18), "{0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b}"]) {
      add("POST", `/tenants/${t}/${c}/inc`, { headers: { "Idempotency-Key": k } });
      add("POST", "/tenants", { headers: { ...admin, "Idempotency-Key": k }, body: '{"label":"never2"}' });
    }
    for (const origin of ["https://evil.example", "null", "https://ok.example.evil", "http://ok.example"]) {
      add("POST", `/tenants/${t}/${c}/inc`, { headers: { Origin: origin } });
      add("OPTIONS", `/tenants/${t}/${c}/inc`, { headers: { Origin: origin } });
    }
    for (const method of ["PUT", "DELETE", "PATCH"]) {
      add(method, `/tenants/${t}/${c}/inc`);
      add(method, `/tenants/${t}`, { headers: admin });
      add(method, "/tenants", { headers: admin });
    }
    add("GET", `/tenants/${t}/${c}/inc`);
    add("GET", `/tenants/${t}/counters/${c}/set`, { headers: admin });
    // Bodies: syntax, types, ranges, sizes, encodings.
    const bodies = ["{", "}", "[", '{"label":', '{"label":"x"', "nul", "null", "1", '"text"', "[]", "[{}]", "{}", '{"label":null}',
      '{"label":1}', '{"label":true}', '{"label":["a"]}', '{"label":{}}', '{"label":""}', '{"label":"   "}', '{"label":"a\\u0000b"}',
      '{"label":"a\\nb"}', JSON.stringify({ label: "x".repeat(200) }), '{"label":"ok","extra":1}', '{"LABEL":"x"}',
      '{"label":"\\ud800"}', "\u00ff\u00fe", "label=x", `{"label":"${"y".repeat(17000)}"}`];
    for (const body of bodies) add("POST", "/tenants", { headers: admin, body });
    const counterBodies = ["{", '{"max_delta":0}', '{"max_delta":-1}', '{"max_delta":1.5}', '{"max_delta":"5"}', '{"max_delta":9007199254740992}',
      '{"max_delta":1e400}', '{"initial_value":1e400}', '{"initial_value":-9007199254740992}', '{"initial_value":9007199254740992}',
      '{"initial_value":"0"}', '{"initial_value":[]}', '{"initial_value":0.5}', '{"label":"a"}', '{"label":"b"}', '{"value":1}',
      '{"label":5}', "[1,2]", JSON.stringify({ label: "z", pad: "p".repeat(16 * 1024) })];
    for (const body of counterBodies) add("POST", `/tenants/${t}`, { headers: admin, body });
    add("POST", `/tenants/${missing}`, { headers: admin, body: "{}" });
    const setBodies = ["", "{}", "{", '{"value":null}', '{"value":"1"}', '{"value":1.5}', '{"value":9007199254740992}', '{"value":-9007199254740992}',
      '{"value":1e300}', '{"value":true}', '{"value":[1]}', '{"value":1,"extra":2}', '{"delta":1}', `{"value":${"9".repeat(400)}}`,
      "x".repeat(17 * 1024)];
    for (const body of setBodies) add("POST", `/tenants/${t}/counters/${c}/set`, { headers: admin, body });
    // Increments that would break the counter's own rules.
    add("POST", `/tenants/${t}/${counters[1].counter_id}/inc?delta=51`);
    add("POST", `/tenants/${missing}/${c}/inc`);
    add("POST", `/tenants/${t}/${missing}/inc`);
    return out;
  }

  test("a method the runtime does not know is refused, not served as GET", async () => {
    // workers-rs reads QUERY (or any method it lacks) as GET; a counting route must not count.
    const before = (await svc.request("GET", "/web-counter/")).text;
    for (const path of ["/web-counter/increment", "/healthz", `/tenants/${tenant}/${counters[0].counter_id}`]) {
      const res = await svc.request("QUERY", path);
      assert.equal(res.status, 405, `QUERY ${path}: ${res.status} ${res.text.slice(0, 200)}`);
      assert.equal(res.json.errors[0].code, "METHOD_NOT_ALLOWED");
      assert.ok(res.headers.get("allow"), "Allow lists the methods");
    }
    assert.equal((await svc.request("GET", "/web-counter/")).text, before, "nothing counted");
  });

  test("a set that would move the value by more than a safe integer is refused and changes nothing", async () => {
    const c = await svc.createCounter(tenant, { initial_value: -9007199254740991 });
    const path = `/tenants/${tenant}/counters/${c.counter_id}`;
    const res = await svc.request("POST", `${path}/set`, { headers: admin, json: { value: 9007199254740991 } });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.errors[0].code, "INVALID_PARAMETER");
    assert.equal((await svc.request("GET", path)).json.value, -9007199254740991);
    // In two steps it works, and the ledger still reads back.
    for (const value of [0, 9007199254740991]) {
      assert.equal((await svc.request("POST", `${path}/set`, { headers: admin, json: { value } })).status, 200);
    }
    const ops = await svc.request("GET", `/v2/tenants/${tenant}/counters/${c.counter_id}/operations`, { headers: admin });
    assert.equal(ops.status, 200, ops.text);
    assert.equal(ops.json.operations.reduce((sum, op) => sum + op.delta, 0), 9007199254740991);
  });

  test("at least 200 malformed requests: only 4xx contract errors, nothing changes", async () => {
    const all = cases();
    assert.ok(all.length >= 200, `${all.length} cases`);
    const rowsBefore = await svc.db.prepare("SELECT (SELECT COUNT(*) FROM tenants) AS t, (SELECT COUNT(*) FROM counters) AS c").first();
    for (const { method, path, headers, body } of all) {
      const res = await svc.request(method, path, { headers, body });
      const label = `${method} ${path.slice(0, 120)} ${body === undefined ? "" : String(body).slice(0, 60)}`;
      if (method === "OPTIONS" && res.status === 204) continue;
      assert.ok(res.status >= 400 && res.status < 500, `${label} → ${res.status} ${res.text.slice(0, 200)}`);
      if (method === "HEAD") continue;
      assert.match(res.headers.get("content-type") ?? "", /application\/json/, label);
      assert.equal(res.json?.errors?.length, 1, `${label}: ${res.text.slice(0, 200)}`);
      assert.ok(CODES.has(res.json.errors[0].code), `${label}: code ${res.json.errors[0].code}`);
      assert.equal(typeof res.json.errors[0].message, "string");
    }
    const rowsAfter = await svc.db.prepare("SELECT (SELECT COUNT(*) FROM tenants) AS t, (SELECT COUNT(*) FROM counters) AS c").first();
    assert.deepEqual(rowsAfter, rowsBefore, "no tenant or counter was created");
    const values = [];
    for (const c of counters) values.push((await svc.request("GET", `/tenants/${tenant}/${c.counter_id}`)).json.value);
    assert.deepEqual(values, [10, -4], "every counter unchanged");
  });
});
