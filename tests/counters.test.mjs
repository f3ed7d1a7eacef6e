// The V1 counter API through the real runtime: every route, its aliases, and its errors.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { admin, errorCode, startWorker } from "./helpers/worker.mjs";

let svc;
before(async () => {
  svc = await startWorker({ vars: { CORS_ALLOWED_ORIGINS: "https://blog.example" } });
});
after(() => svc?.close());

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const MISSING = "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";

describe("tenants", () => {
  test("create and read a tenant", async () => {
    const created = await svc.request("POST", "/tenants", { headers: admin, json: { label: "acme" } });
    assert.equal(created.status, 201);
    assert.match(created.json.tenant_id, UUID_V7);
    assert.equal(created.json.label, "acme");
    assert.match(created.json.created_at, RFC3339);
    assert.deepEqual(Object.keys(created.json).sort(), ["allowed_origins", "count_bots", "created_at", "label", "page_auto_create", "respect_dnt", "tenant_id", "updated_at"]);
    assert.equal(created.json.page_auto_create, false);

    const read = await svc.request("GET", `/tenants/${created.json.tenant_id}`);
    assert.equal(read.status, 200);
    assert.deepEqual(read.json, created.json);
  });

  test("a duplicate label is 409 TENANT_LABEL_EXISTS and creates nothing", async () => {
    await svc.createTenant("dup");
    const before = await svc.db.prepare("SELECT COUNT(*) AS n FROM tenants").first();
    const res = await svc.request("POST", "/tenants", { headers: admin, json: { label: "dup" } });
    assert.equal(res.status, 409);
    assert.equal(errorCode(res), "TENANT_LABEL_EXISTS");
    const afterCount = await svc.db.prepare("SELECT COUNT(*) AS n FROM tenants").first();
    assert.equal(afterCount.n, before.n);
  });

  test("unknown tenant is 404 TENANT_NOT_FOUND; malformed id is 400 INVALID_UUID", async () => {
    const missing = await svc.request("GET", `/tenants/${MISSING}`);
    assert.equal(missing.status, 404);
    assert.equal(errorCode(missing), "TENANT_NOT_FOUND");
    const bad = await svc.request("GET", "/tenants/not-a-uuid");
    assert.equal(bad.status, 400);
    assert.equal(errorCode(bad), "INVALID_UUID");
  });

  test("admin routes need the admin key, by either header, compared exactly", async () => {
    const none = await svc.request("POST", "/tenants", { json: { label: "x1" } });
    assert.equal(none.status, 401);
    assert.equal(errorCode(none), "UNAUTHORIZED");
    const wrong = await svc.request("POST", "/tenants", { headers: { "X-API-Key": "test-admin-keyX" }, json: { label: "x1" } });
    assert.equal(wrong.status, 401);
    const bearer = await svc.request("POST", "/tenants", {
      headers: { Authorization: "Bearer test-admin-key" },
      json: { label: "x1" },
    });
    assert.equal(bearer.status, 201);
  });

  test("bad tenant bodies are 400 with the right code", async () => {
    const cases = [
      ["{", "INVALID_JSON"],
      ["[]", "INVALID_JSON"],
      ["{}", "INVALID_PARAMETER"],
      ['{"label": 7}', "INVALID_PARAMETER"],
      ['{"label": ""}', "INVALID_PARAMETER"],
      ['{"label": "ok", "extra": true}', "INVALID_PARAMETER"],
      [JSON.stringify({ label: "x".repeat(129) }), "INVALID_PARAMETER"],
    ];
    for (const [body, code] of cases) {
      const res = await svc.request("POST", "/tenants", { headers: admin, body });
      assert.equal(res.status, 400, body);
      assert.equal(errorCode(res), code, body);
    }
  });
});

describe("counters", () => {
  let tenant;
  before(async () => {
    tenant = (await svc.createTenant()).tenant_id;
  });

  test("create with defaults and with every field", async () => {
    const plain = await svc.request("POST", `/tenants/${tenant}`, { headers: admin });
    assert.equal(plain.status, 201);
    assert.match(plain.json.counter_id, UUID_V7);
    assert.equal(plain.json.tenant_id, tenant);
    assert.equal(plain.json.label, null);
    assert.equal(plain.json.value, 0);
    assert.equal(plain.json.max_delta, 50);

    const full = await svc.request("POST", `/tenants/${tenant}/counters`, {
      headers: admin,
      json: { label: "stars", initial_value: 41, max_delta: 5 },
    });
    assert.equal(full.status, 201);
    assert.deepEqual(
      { label: full.json.label, value: full.json.value, max_delta: full.json.max_delta },
      { label: "stars", value: 41, max_delta: 5 },
    );
    const read = await svc.request("GET", `/tenants/${tenant}/${full.json.counter_id}`);
    assert.equal(read.status, 200);
    assert.deepEqual(read.json, full.json);
    const alias = await svc.request("GET", `/tenants/${tenant}/counters/${full.json.counter_id}`);
    assert.deepEqual(alias.json, full.json);
  });

  test("labels are unique within a tenant only", async () => {
    await svc.createCounter(tenant, { label: "views" });
    const dup = await svc.request("POST", `/tenants/${tenant}`, { headers: admin, json: { label: "views" } });
    assert.equal(dup.status, 409);
    assert.equal(errorCode(dup), "COUNTER_LABEL_EXISTS");
    const other = await svc.createTenant();
    await svc.createCounter(other.tenant_id, { label: "views" });
  });

  test("creating under a missing tenant is 404 TENANT_NOT_FOUND", async () => {
    const res = await svc.request("POST", `/tenants/${MISSING}`, { headers: admin, json: {} });
    assert.equal(res.status, 404);
    assert.equal(errorCode(res), "TENANT_NOT_FOUND");
  });

  test("bad counter bodies", async () => {
    const cases = [
      ['{"max_delta": 0}', "INVALID_PARAMETER"],
      ['{"max_delta": -5}', "INVALID_PARAMETER"],
      ['{"max_delta": 2.5}', "INVALID_PARAMETER"],
      ['{"initial_value": "10"}', "INVALID_PARAMETER"],
      ['{"initial_value": 9007199254740992}', "COUNTER_OVERFLOW"],
      ['{"initial_value": -9007199254740992}', "COUNTER_OVERFLOW"],
      ['{"label": ["a"]}', "INVALID_PARAMETER"],
      ['{"lable": "typo"}', "INVALID_PARAMETER"],
      ["not json", "INVALID_JSON"],
    ];
    const before = await svc.db.prepare("SELECT COUNT(*) AS n FROM counters").first();
    for (const [body, code] of cases) {
      const res = await svc.request("POST", `/tenants/${tenant}`, { headers: admin, body });
      assert.equal(res.status, 400, body);
      assert.equal(errorCode(res), code, body);
    }
    const afterCount = await svc.db.prepare("SELECT COUNT(*) AS n FROM counters").first();
    assert.equal(afterCount.n, before.n);
  });

  test("increment: default delta, explicit delta, both paths", async () => {
    const c = await svc.createCounter(tenant, { max_delta: 10 });
    const one = await svc.request("POST", `/tenants/${tenant}/${c.counter_id}/inc`);
    assert.equal(one.status, 200);
    assert.match(one.json.operation_id, UUID_V7);
    assert.deepEqual(
      { counter_id: one.json.counter_id, delta: one.json.delta, value: one.json.value, replayed: one.json.replayed },
      { counter_id: c.counter_id, delta: 1, value: 1, replayed: false },
    );
    assert.match(one.json.updated_at, RFC3339);
    const ten = await svc.request("POST", `/tenants/${tenant}/counters/${c.counter_id}/inc?delta=10`);
    assert.equal(ten.status, 200);
    assert.equal(ten.json.value, 11);
    assert.equal((await svc.request("GET", `/tenants/${tenant}/${c.counter_id}`)).json.value, 11);
  });

  test("bad deltas change nothing", async () => {
    const c = await svc.createCounter(tenant, { max_delta: 10, initial_value: 5 });
    const cases = [
      ["0", "INVALID_DELTA"],
      ["-1", "INVALID_DELTA"],
      ["abc", "INVALID_DELTA"],
      ["1.5", "INVALID_DELTA"],
      ["", "INVALID_DELTA"],
      ["%F0%9F%92%A9", "INVALID_DELTA"],
      ["11", "DELTA_EXCEEDS_MAXIMUM"],
      ["99999999999999999999999999999", "DELTA_EXCEEDS_MAXIMUM"],
    ];
    for (const [delta, code] of cases) {
      const res = await svc.request("POST", `/tenants/${tenant}/${c.counter_id}/inc?delta=${delta}`);
      assert.equal(res.status, 400, delta);
      assert.equal(errorCode(res), code, delta);
    }
    const twice = await svc.request("POST", `/tenants/${tenant}/${c.counter_id}/inc?delta=1&delta=2`);
    assert.equal(twice.status, 400);
    assert.equal((await svc.request("GET", `/tenants/${tenant}/${c.counter_id}`)).json.value, 5);
  });

  test("overflow at the safe-integer bound is refused and changes nothing", async () => {
    const c = await svc.createCounter(tenant, { initial_value: 9007199254740990, max_delta: 50 });
    const ok = await svc.request("POST", `/tenants/${tenant}/${c.counter_id}/inc`);
    assert.equal(ok.json.value, 9007199254740991);
    const over = await svc.request("POST", `/tenants/${tenant}/${c.counter_id}/inc`);
    assert.equal(over.status, 400);
    assert.equal(errorCode(over), "COUNTER_OVERFLOW");
    assert.equal((await svc.request("GET", `/tenants/${tenant}/${c.counter_id}`)).json.value, 9007199254740991);
    const below = await svc.request("POST", `/tenants/${tenant}/counters/${c.counter_id}/set`, {
      headers: admin,
      json: { value: -9007199254740992 },
    });
    assert.equal(errorCode(below), "COUNTER_OVERFLOW");
  });

  test("set: admin only, answers the inc shape with delta = new - old", async () => {
    const c = await svc.createCounter(tenant, { initial_value: 7 });
    const path = `/tenants/${tenant}/counters/${c.counter_id}/set`;
    const anon = await svc.request("POST", path, { json: { value: 1 } });
    assert.equal(anon.status, 401);
    const set = await svc.request("POST", path, { headers: admin, json: { value: -3 } });
    assert.equal(set.status, 200);
    assert.deepEqual(
      { delta: set.json.delta, value: set.json.value, replayed: set.json.replayed },
      { delta: -10, value: -3, replayed: false },
    );
    for (const [body, code] of [["{}", "INVALID_PARAMETER"], ['{"value":"1"}', "INVALID_PARAMETER"], ["{", "INVALID_JSON"]]) {
      const res = await svc.request("POST", path, { headers: admin, body });
      assert.equal(errorCode(res), code, body);
    }
    assert.equal((await svc.request("GET", `/tenants/${tenant}/${c.counter_id}`)).json.value, -3);
  });

  test("a counter exists only under its own tenant", async () => {
    const c = await svc.createCounter(tenant);
    const other = await svc.createTenant();
    const wrongTenant = await svc.request("POST", `/tenants/${other.tenant_id}/${c.counter_id}/inc`);
    assert.equal(wrongTenant.status, 404);
    assert.equal(errorCode(wrongTenant), "COUNTER_NOT_FOUND");
    const noTenant = await svc.request("GET", `/tenants/${MISSING}/${c.counter_id}`);
    assert.equal(errorCode(noTenant), "TENANT_NOT_FOUND");
    const noCounter = await svc.request("GET", `/tenants/${tenant}/${MISSING}`);
    assert.equal(noCounter.status, 404);
    assert.equal(errorCode(noCounter), "COUNTER_NOT_FOUND");
    assert.equal((await svc.request("GET", `/tenants/${tenant}/${c.counter_id}`)).json.value, 0);
  });

  test("list pages through every counter with opaque cursors", async () => {
    const t = (await svc.createTenant()).tenant_id;
    const ids = [];
    for (let i = 0; i < 45; i++) ids.push((await svc.createCounter(t, { label: `c${i}` })).counter_id);
    const seen = [];
    let cursor = null;
    let pages = 0;
    do {
      const q = cursor ? `?cursor=${encodeURIComponent(cursor)}` : "";
      const page = await svc.request("GET", `/tenants/${t}/counters${q}`, { headers: admin });
      assert.equal(page.status, 200);
      seen.push(...page.json.counters.map((c) => c.counter_id));
      cursor = page.json.next_cursor;
      pages++;
    } while (cursor);
    assert.equal(pages, 3);
    assert.deepEqual(seen, ids);

    const big = await svc.request("GET", `/tenants/${t}/counters?limit=100`, { headers: admin });
    assert.equal(big.json.counters.length, 45);
    assert.equal(big.json.next_cursor, null);
    const small = await svc.request("GET", `/tenants/${t}/counters?limit=44`, { headers: admin });
    assert.equal(typeof small.json.next_cursor, "string");
    // A cursor belongs to its tenant.
    const elsewhere = await svc.request("GET", `/tenants/${tenant}/counters?cursor=${small.json.next_cursor}`, { headers: admin });
    assert.equal(errorCode(elsewhere), "INVALID_CURSOR");
  });

  test("list refuses bad limits, forged cursors, anonymous callers, missing tenants", async () => {
    for (const limit of ["0", "101", "-1", "ten", "1.5"]) {
      const res = await svc.request("GET", `/tenants/${tenant}/counters?limit=${limit}`, { headers: admin });
      assert.equal(errorCode(res), "INVALID_PARAMETER", limit);
    }
    for (const cursor of ["abc", "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "%00", "x".repeat(500)]) {
      const res = await svc.request("GET", `/tenants/${tenant}/counters?cursor=${cursor}`, { headers: admin });
      assert.equal(res.status, 400, cursor);
      assert.equal(errorCode(res), "INVALID_CURSOR", cursor);
    }
    assert.equal((await svc.request("GET", `/tenants/${tenant}/counters`)).status, 401);
    assert.equal(errorCode(await svc.request("GET", `/tenants/${MISSING}/counters`, { headers: admin })), "TENANT_NOT_FOUND");
  });
});

describe("http", () => {
  test("unknown routes are 404 JSON; wrong methods 405 with Allow", async () => {
    const nf = await svc.request("GET", "/nope");
    assert.equal(nf.status, 404);
    assert.equal(errorCode(nf), "NOT_FOUND");
    assert.match(nf.headers.get("content-type"), /application\/json/);
    const t = await svc.createTenant();
    const c = await svc.createCounter(t.tenant_id);
    const wrong = await svc.request("DELETE", `/tenants/${t.tenant_id}/${c.counter_id}/inc`);
    assert.equal(wrong.status, 405);
    assert.equal(errorCode(wrong), "METHOD_NOT_ALLOWED");
    assert.equal(wrong.headers.get("allow"), "POST, OPTIONS");
    const get = await svc.request("GET", `/tenants/${t.tenant_id}/${c.counter_id}/inc`);
    assert.equal(get.status, 405);
  });

  test("bodies over 16 KiB are 413 and create nothing", async () => {
    const res = await svc.request("POST", "/tenants", {
      headers: admin,
      body: JSON.stringify({ label: "big", pad: "x".repeat(17 * 1024) }),
    });
    assert.equal(res.status, 413);
    assert.equal(errorCode(res), "PAYLOAD_TOO_LARGE");
    const row = await svc.db.prepare("SELECT COUNT(*) AS n FROM tenants WHERE label = 'big'").first();
    assert.equal(row.n, 0);
  });

  test("CORS: allowed origins get headers and preflights; others are refused", async () => {
    const t = await svc.createTenant();
    const c = await svc.createCounter(t.tenant_id);
    const path = `/tenants/${t.tenant_id}/${c.counter_id}/inc`;
    const pre = await svc.request("OPTIONS", path, {
      headers: { Origin: "https://blog.example", "Access-Control-Request-Method": "POST" },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get("access-control-allow-origin"), "https://blog.example");
    assert.match(pre.headers.get("access-control-allow-methods"), /POST/);
    assert.match(pre.headers.get("access-control-allow-headers"), /Idempotency-Key/);

    const ok = await svc.request("POST", path, { headers: { Origin: "https://blog.example" } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get("access-control-allow-origin"), "https://blog.example");
    assert.match(ok.headers.get("access-control-expose-headers"), /X-RateLimit-Remaining/);

    const evil = await svc.request("POST", path, { headers: { Origin: "https://evil.example" } });
    assert.equal(evil.status, 403);
    assert.equal(errorCode(evil), "FORBIDDEN");
    assert.equal(evil.headers.get("access-control-allow-origin"), null);
    const evilPre = await svc.request("OPTIONS", path, { headers: { Origin: "https://evil.example" } });
    assert.equal(evilPre.status, 403);
    assert.equal((await svc.request("GET", `/tenants/${t.tenant_id}/${c.counter_id}`)).json.value, 1);
  });

  test("health", async () => {
    const res = await svc.request("GET", "/healthz");
    assert.equal(res.status, 200);
    assert.equal(res.json.status, "ok");
    assert.equal((await svc.request("GET", "/healthcheck")).status, 200);
  });
});

describe("openapi", () => {
  let served;
  before(async () => {
    // As deployed: public/ answers before the Worker.
    served = await startWorker({ assets: true });
  });
  after(() => served?.close());

  test("GET /openapi.json is a static asset documenting every route, and each documented route exists", async () => {
    const res = await served.request("GET", "/openapi.json");
    assert.equal(res.status, 200);
    const doc = res.json;
    assert.equal(doc.openapi, "3.1.0");
    assert.ok(doc.components.schemas.Error);
    const sample = (path) =>
      path
        .replace("{tenant_id}", MISSING)
        .replace("{counter_id}", "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6c")
        .replace("{page_id}", "home")
        .replace("{n}", "3")
        .replace("{field}", "stars")
        .replace("{org}", "acme");
    let operations = 0;
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const method of Object.keys(methods)) {
        operations++;
        if (path.startsWith("/orgs") || path.startsWith("/view")) continue; // off without GITHUB_ORGS
        const answer = await served.request(method.toUpperCase(), sample(path), { headers: admin });
        assert.notEqual(errorCode(answer), "NOT_FOUND", `${method} ${path}`);
        assert.notEqual(errorCode(answer), "METHOD_NOT_ALLOWED", `${method} ${path}`);
      }
    }
    assert.ok(operations >= 30, `${operations} operations`);
  });
});
