// V2 through the real runtime: tenant and administrator credentials, the 401/403 matrix,
// required idempotency, and every counter's operation ledger (history, retention,
// reconciliation) — in the counter's object, with real D1 and Durable Objects.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { admin, clientIp, errorCode, eventually, root, startWorker } from "./helpers/worker.mjs";
import { reconcile } from "../scripts/reconcile.mjs";

let svc;
before(async () => {
  svc = await startWorker({ vars: { FLUSH_INTERVAL_MS: "200" } });
});
after(() => svc?.close());

const SCOPES = ["counter:adjust", "counter:create", "counter:history", "counter:increment", "counter:read", "tenant:export", "tenant:read"];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const key = (k) => ({ "X-API-Key": k });
const bearer = (k) => ({ Authorization: `Bearer ${k}` });
const idem = (k = crypto.randomUUID()) => ({ "Idempotency-Key": k });

async function issue(tenant, body = {}) {
  const res = await svc.request("POST", `/v2/tenants/${tenant}/credentials`, { headers: admin, json: body });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

async function history(tenant, counter, headers = admin, query = "") {
  const res = await svc.request("GET", `/v2/tenants/${tenant}/counters/${counter}/operations${query}`, { headers });
  assert.equal(res.status, 200, res.text);
  return res.json;
}

/** Every operation of a counter, newest first, following cursors. */
async function allOperations(tenant, counter) {
  const ops = [];
  let cursor = null;
  do {
    const page = await history(tenant, counter, admin, `?limit=100${cursor ? `&cursor=${cursor}` : ""}`);
    ops.push(...page.operations);
    cursor = page.next_cursor;
  } while (cursor);
  return ops;
}

describe("credentials", () => {
  test("issue: default scopes sorted, the key shown once, never listed, audited", async () => {
    const { tenant_id: t } = await svc.createTenant();
    const c = await issue(t);
    assert.match(c.credential_id, UUID);
    assert.equal(c.tenant_id, t);
    assert.deepEqual(c.scopes, ["counter:history", "counter:increment", "counter:read"]);
    assert.match(c.api_key, new RegExp(`^ck_${c.credential_id}\\.[A-Za-z0-9_-]{43}$`));
    assert.equal(c.expires_at, null);
    const chosen = await issue(t, { scopes: ["tenant:read", "counter:adjust", "tenant:read"], expires_at: "2099-01-01T00:00:00Z" });
    assert.deepEqual(chosen.scopes, ["counter:adjust", "tenant:read"]);
    assert.equal(chosen.expires_at, "2099-01-01T00:00:00.000Z");

    const listed = await svc.request("GET", `/v2/tenants/${t}/credentials`, { headers: admin });
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.json.credentials.map((x) => x.credential_id), [c.credential_id, chosen.credential_id]);
    assert.ok(!listed.text.includes(c.api_key.split(".")[1]), "no secret in a listing");
    assert.ok(listed.json.credentials.every((x) => !("api_key" in x) && x.revoked_at === null));
    const stored = await svc.db.prepare("SELECT secret_hash FROM credentials WHERE id = ?").bind(c.credential_id).first();
    assert.match(stored.secret_hash, /^[0-9a-f]{64}$/);
    assert.ok(!stored.secret_hash.includes(c.api_key.split(".")[1]));
    const audit = await svc.db.prepare("SELECT action, actor_id FROM credential_audit WHERE credential_id = ?").bind(c.credential_id).all();
    assert.deepEqual(audit.results, [{ action: "issue", actor_id: "admin" }]);
  });

  test("bad requests are 400 and create nothing", async () => {
    const { tenant_id: t } = await svc.createTenant();
    for (const body of [{ scopes: ["counter:delete"] }, { scopes: "counter:read" }, { expires_at: "2001-01-01T00:00:00Z" }, { expires_at: "soon" }, { scope: [] }]) {
      const res = await svc.request("POST", `/v2/tenants/${t}/credentials`, { headers: admin, json: body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(errorCode(res), "INVALID_PARAMETER");
    }
    const bad = await svc.request("POST", `/v2/tenants/${t}/credentials`, { headers: admin, body: "{" });
    assert.equal(errorCode(bad), "INVALID_JSON");
    const n = await svc.db.prepare("SELECT COUNT(*) AS n FROM credentials WHERE tenant_id = ?").bind(t).first();
    assert.equal(n.n, 0);
    const missing = await svc.request("POST", `/v2/tenants/${crypto.randomUUID()}/credentials`, { headers: admin, json: {} });
    assert.equal(errorCode(missing), "TENANT_NOT_FOUND");
  });

  test("rotation overlaps, revocation holds at once; unknown, revoked or other-tenant ids are 404", async () => {
    const { tenant_id: t } = await svc.createTenant();
    const { tenant_id: other } = await svc.createTenant();
    const { counter_id: c } = await svc.createCounter(t);
    const old = await issue(t, { scopes: ["counter:read"], expires_at: "2099-01-01T00:00:00Z" });
    const read = (k) => svc.request("GET", `/v2/tenants/${t}/counters/${c}`, { headers: key(k) });
    assert.equal((await read(old.api_key)).status, 200);

    const rotated = await svc.request("POST", `/v2/tenants/${t}/credentials/${old.credential_id}/rotate`, { headers: admin });
    assert.equal(rotated.status, 201);
    assert.notEqual(rotated.json.credential_id, old.credential_id);
    assert.equal(rotated.json.rotated_from, old.credential_id);
    assert.deepEqual(rotated.json.scopes, ["counter:read"]);
    assert.equal(rotated.json.expires_at, old.expires_at);
    assert.equal((await read(old.api_key)).status, 200, "the old key works until revoked");
    assert.equal((await read(rotated.json.api_key)).status, 200);

    const wrongTenant = await svc.request("POST", `/v2/tenants/${other}/credentials/${old.credential_id}/revoke`, { headers: admin });
    assert.equal(wrongTenant.status, 404);
    assert.equal(errorCode(wrongTenant), "CREDENTIAL_NOT_FOUND");
    const revoked = await svc.request("POST", `/v2/tenants/${t}/credentials/${old.credential_id}/revoke`, { headers: admin });
    assert.equal(revoked.status, 204);
    const after = await read(old.api_key);
    assert.equal(after.status, 401);
    assert.equal(errorCode(after), "UNAUTHORIZED");
    assert.equal((await read(rotated.json.api_key)).status, 200);
    for (const action of ["revoke", "rotate"]) {
      const again = await svc.request("POST", `/v2/tenants/${t}/credentials/${old.credential_id}/${action}`, { headers: admin });
      assert.equal(errorCode(again), "CREDENTIAL_NOT_FOUND", action);
    }
    const unknown = await svc.request("POST", `/v2/tenants/${t}/credentials/${crypto.randomUUID()}/revoke`, { headers: admin });
    assert.equal(errorCode(unknown), "CREDENTIAL_NOT_FOUND");
    const listed = (await svc.request("GET", `/v2/tenants/${t}/credentials`, { headers: admin })).json.credentials;
    assert.ok(listed.find((x) => x.credential_id === old.credential_id).revoked_at);
    const audit = await svc.db.prepare("SELECT action FROM credential_audit WHERE tenant_id = ? ORDER BY seq").bind(t).all();
    assert.deepEqual(audit.results.map((r) => r.action), ["issue", "rotate", "revoke"]);
  });

  test("an expired key is 401", async () => {
    const { tenant_id: t } = await svc.createTenant();
    const { counter_id: c } = await svc.createCounter(t);
    const soon = new Date(Date.now() + 1500).toISOString();
    const k = await issue(t, { scopes: ["counter:read"], expires_at: soon });
    assert.equal((await svc.request("GET", `/v2/tenants/${t}/counters/${c}`, { headers: key(k.api_key) })).status, 200);
    await new Promise((r) => setTimeout(r, 1700));
    const res = await svc.request("GET", `/v2/tenants/${t}/counters/${c}`, { headers: key(k.api_key) });
    assert.equal(res.status, 401);
    const rotate = await svc.request("POST", `/v2/tenants/${t}/credentials/${k.credential_id}/rotate`, { headers: admin });
    assert.equal(errorCode(rotate), "CREDENTIAL_NOT_FOUND");
  });

  test("managed administrator keys work everywhere, rotate and revoke, so ADMIN_API_KEY can go", async () => {
    const made = await svc.request("POST", "/v2/admin/credentials", { headers: admin, json: {} });
    assert.equal(made.status, 201);
    assert.equal(made.json.tenant_id, undefined);
    assert.deepEqual(made.json.scopes, ["admin"]);
    const k = made.json.api_key;
    const tenant = await svc.request("POST", "/tenants", { headers: bearer(k), json: { label: `managed-${crypto.randomUUID()}` } });
    assert.equal(tenant.status, 201);
    const t = tenant.json.tenant_id;
    const counter = await svc.request("POST", `/tenants/${t}`, { headers: key(k), json: { initial_value: 3 } });
    assert.equal(counter.status, 201);
    const c = counter.json.counter_id;
    assert.equal((await svc.request("POST", `/v2/tenants/${t}/counters/${c}/inc`, { headers: { ...key(k), ...idem() } })).status, 200);
    assert.equal((await svc.request("POST", `/v2/tenants/${t}/credentials`, { headers: key(k), json: {} })).status, 201);
    const ops = await allOperations(t, c);
    assert.deepEqual(ops.map((o) => o.actor_id), [made.json.credential_id, made.json.credential_id]);
    // A managed key may issue another and retire itself.
    const next = await svc.request("POST", `/v2/admin/credentials/${made.json.credential_id}/rotate`, { headers: key(k) });
    assert.equal(next.status, 201);
    assert.equal((await svc.request("POST", `/v2/admin/credentials/${made.json.credential_id}/revoke`, { headers: key(next.json.api_key) })).status, 204);
    assert.equal((await svc.request("POST", "/tenants", { headers: key(k), json: { label: "x" } })).status, 401);
    // A tenant credential id is not an administrator key's.
    const tenantKey = await issue(t);
    const cross = await svc.request("POST", `/v2/admin/credentials/${tenantKey.credential_id}/revoke`, { headers: admin });
    assert.equal(errorCode(cross), "CREDENTIAL_NOT_FOUND");
  });
});

describe("401 and 403", () => {
  let t, other, c, otherCounter;
  const keys = {};
  before(async () => {
    t = (await svc.createTenant()).tenant_id;
    other = (await svc.createTenant()).tenant_id;
    c = (await svc.createCounter(t, { max_delta: 5 })).counter_id;
    otherCounter = (await svc.createCounter(other)).counter_id;
    for (const scope of SCOPES) keys[scope] = (await issue(t, { scopes: [scope] })).api_key;
    keys.all = (await issue(t, { scopes: SCOPES })).api_key;
    keys.managedAdmin = (await svc.request("POST", "/v2/admin/credentials", { headers: admin, json: {} })).json.api_key;
    keys.revoked = (await issue(t, { scopes: SCOPES })).api_key;
    const revokedId = keys.revoked.slice(3, 39);
    assert.equal((await svc.request("POST", `/v2/tenants/${t}/credentials/${revokedId}/revoke`, { headers: admin })).status, 204);
  });

  // Each operation a tenant key may be given, with the scope it needs.
  const operations = () => [
    ["counter:increment", "POST", `/v2/tenants/${t}/counters/${c}/inc`, { idem: true }],
    ["counter:adjust", "POST", `/v2/tenants/${t}/counters/${c}/set`, { idem: true, json: { value: 7 } }],
    ["counter:read", "GET", `/v2/tenants/${t}/counters/${c}`, {}],
    ["counter:history", "GET", `/v2/tenants/${t}/counters/${c}/operations`, {}],
    ["counter:read", "GET", `/tenants/${t}/counters`, {}],
    ["counter:create", "POST", `/tenants/${t}/counters`, { json: {} }],
    ["counter:adjust", "POST", `/tenants/${t}/counters/${c}/set`, { json: { value: 9 } }],
  ];
  const send = (method, path, opts, headers) =>
    svc.request(method, path, { headers: { ...headers, ...(opts.idem ? idem() : {}) }, json: opts.json });

  test("each scope allows exactly its operations, with either header", async () => {
    for (const [needed, method, path, opts] of operations()) {
      for (const scope of SCOPES) {
        const res = await send(method, path, opts, scope.length % 2 ? key(keys[scope]) : bearer(keys[scope]));
        const want = scope === needed ? [200, 201] : [403];
        assert.ok(want.includes(res.status), `${scope} on ${method} ${path}: ${res.status} ${res.text}`);
        if (res.status === 403) assert.equal(errorCode(res), "FORBIDDEN");
      }
      const all = await send(method, path, opts, key(keys.all));
      assert.ok([200, 201].includes(all.status), `${method} ${path} with every scope: ${all.status}`);
      for (const adminKey of [admin, bearer(keys.managedAdmin)]) {
        const adminAnswer = await send(method, path, opts, adminKey);
        assert.ok([200, 201].includes(adminAnswer.status), `${method} ${path} as admin`);
      }
      const none = await send(method, path, opts, {});
      assert.equal(none.status, ["counter:increment"].includes(needed) && path.startsWith("/tenants") ? 200 : 401, `${method} ${path} without a key`);
    }
  });

  test("another tenant's path is 403; admin routes are 403 to tenant keys", async () => {
    const cases = [
      ["GET", `/v2/tenants/${other}/counters/${otherCounter}`],
      ["GET", `/v2/tenants/${other}/counters/${otherCounter}/operations`],
      ["GET", `/tenants/${other}/counters`],
      ["POST", "/tenants"],
      ["PATCH", `/tenants/${t}`],
      ["POST", `/v2/tenants/${t}/credentials`],
      ["GET", `/v2/tenants/${t}/credentials`],
      ["POST", "/v2/admin/credentials"],
      ["GET", "/v2/admin/reconcile"],
      ["DELETE", `/tenants/${t}/pages/home`],
    ];
    for (const [method, path] of cases) {
      const json = method === "GET" || method === "DELETE" ? undefined : {};
      const res = await svc.request(method, path, { headers: key(keys.all), json });
      assert.equal(res.status, 403, `${method} ${path}: ${res.text}`);
      assert.equal(errorCode(res), "FORBIDDEN");
      // Either administrator key passes the same step (the routes' own checks may then
      // refuse the request, but never as 401 or 403).
      for (const adminKey of [admin, key(keys.managedAdmin)]) {
        const passed = await svc.request(method, path, { headers: adminKey, json: path === "/tenants" ? { label: `m-${crypto.randomUUID()}` } : json });
        assert.ok(![401, 403].includes(passed.status), `${method} ${path} as an administrator: ${passed.status} ${passed.text}`);
      }
    }
  });

  test("unknown, malformed and revoked keys are 401 on every route, public ones included", async () => {
    const bad = [keys.revoked, `ck_${crypto.randomUUID()}.${"A".repeat(43)}`, "ck_nope", "not-a-key", `${keys.all}x`];
    const routes = [
      ["GET", `/tenants/${t}/${c}`],
      ["POST", `/tenants/${t}/${c}/inc`],
      ["GET", `/tenants/${t}`],
      ["POST", `/tenants/${t}/pages/home/visit`],
      ["GET", `/v2/tenants/${t}/counters/${c}`],
      ["POST", "/tenants"],
    ];
    const before = (await svc.request("GET", `/tenants/${t}/${c}`)).json.value;
    for (const k of bad) {
      for (const [method, path] of routes) {
        for (const headers of [key(k), bearer(k)]) {
          const res = await svc.request(method, path, { headers, ip: clientIp(7000 + bad.indexOf(k)) });
          assert.equal(res.status, 401, `${k.slice(0, 12)} ${method} ${path}`);
          assert.equal(errorCode(res), "UNAUTHORIZED");
        }
      }
    }
    assert.equal((await svc.request("GET", `/tenants/${t}/${c}`)).json.value, before, "a refused key counts nothing");
  });

  test("a bad key is 401 before anything else is decided, a disallowed origin included", async () => {
    const res = await svc.request("GET", `/tenants/${t}/${c}`, { headers: { ...key("ck_nope"), Origin: "https://elsewhere.example" }, ip: "192.0.2.120" });
    assert.equal(res.status, 401);
    const noKey = await svc.request("GET", `/v2/tenants/${t}/counters/${c}`, { ip: "192.0.2.121" });
    assert.equal(noKey.status, 401);
  });

  test("made-up keys charge the refusal brake: a flood is stopped without reading D1 for each", async () => {
    const ip = "192.0.2.150";
    // The brake counts in fixed one-minute windows: start early in one.
    const intoWindow = Date.now() % 60_000;
    if (intoWindow > 45_000) await new Promise((r) => setTimeout(r, 60_100 - intoWindow));
    const statuses = [];
    for (let i = 0; i < 65; i++) {
      const made = `ck_${crypto.randomUUID()}.${"A".repeat(43)}`;
      statuses.push((await svc.request("GET", `/tenants/${t}/${c}`, { headers: key(made), ip })).status);
    }
    assert.deepEqual([...new Set(statuses.slice(0, 60))], [401], "the brake's limit from wrangler.toml");
    assert.deepEqual([...new Set(statuses.slice(61))], [429]);
    // Another client is not affected, and a real key still works.
    assert.equal((await svc.request("GET", `/v2/tenants/${t}/counters/${c}`, { headers: key(keys.all), ip: "192.0.2.151" })).status, 200);
  });
});

describe("idempotency and the ledger", () => {
  test("V2 mutations require a UUID Idempotency-Key, which is the operation id and replays", async () => {
    const { tenant_id: t } = await svc.createTenant();
    const { counter_id: c } = await svc.createCounter(t, { max_delta: 10 });
    const inc = (headers, delta = 2) => svc.request("POST", `/v2/tenants/${t}/counters/${c}/inc?delta=${delta}`, { headers: { ...admin, ...headers } });
    const missing = await inc({});
    assert.equal(missing.status, 400);
    assert.equal(errorCode(missing), "IDEMPOTENCY_KEY_REQUIRED");
    assert.equal(errorCode(await inc({ "Idempotency-Key": "" })), "IDEMPOTENCY_KEY_REQUIRED");
    assert.equal(errorCode(await inc({ "Idempotency-Key": "  " })), "IDEMPOTENCY_KEY_REQUIRED");
    assert.equal(errorCode(await inc({ "Idempotency-Key": "retry-1" })), "INVALID_IDEMPOTENCY_KEY");
    const setMissing = await svc.request("POST", `/v2/tenants/${t}/counters/${c}/set`, { headers: admin, json: { value: 1 } });
    assert.equal(errorCode(setMissing), "IDEMPOTENCY_KEY_REQUIRED");

    const k = crypto.randomUUID();
    const first = await inc(idem(k));
    assert.equal(first.status, 200);
    assert.deepEqual([first.json.operation_id, first.json.value, first.json.replayed], [k, 2, false]);
    const again = await inc(idem(k));
    assert.deepEqual({ ...again.json, replayed: false }, first.json);
    assert.equal(again.json.replayed, true);
    assert.equal(errorCode(await inc(idem(k), 3)), "IDEMPOTENCY_KEY_REUSED");
    const asSet = await svc.request("POST", `/v2/tenants/${t}/counters/${c}/set`, { headers: { ...admin, ...idem(k) }, json: { value: 2 } });
    assert.equal(asSet.status, 409);
    // A refused request leaves its key unused.
    const refusedKey = crypto.randomUUID();
    assert.equal(errorCode(await inc(idem(refusedKey), 11)), "DELTA_EXCEEDS_MAXIMUM");
    assert.equal((await inc(idem(refusedKey), 1)).json.replayed, false);

    // A V2 retry of a keyed V1 increment replays it.
    const v1Key = crypto.randomUUID();
    const v1 = await svc.request("POST", `/tenants/${t}/${c}/inc?delta=4`, { headers: idem(v1Key), ip: "192.0.2.90" });
    assert.equal(v1.status, 200);
    const v2 = await inc(idem(v1Key), 4);
    assert.equal(v2.json.replayed, true);
    assert.equal(v2.json.value, v1.json.value);
    // Keys are scoped to their counter.
    const { counter_id: c2 } = await svc.createCounter(t);
    const elsewhere = await svc.request("POST", `/v2/tenants/${t}/counters/${c2}/inc?delta=2`, { headers: { ...admin, ...idem(k) } });
    assert.equal(elsewhere.json.replayed, false);

    const ops = await allOperations(t, c);
    assert.deepEqual(ops.map((o) => o.operation_id).filter((id) => id === k || id === v1Key).sort(), [k, v1Key].sort());
    assert.equal(ops.filter((o) => o.operation_id === k).length, 1, "a replay adds no operation");
  });

  test("history: every kind, attributed, newest first, in the contract's shape", async () => {
    const { tenant_id: t } = await svc.createTenant();
    const { counter_id: c } = await svc.createCounter(t, { initial_value: 5 });
    const cred = await issue(t, { scopes: ["counter:increment", "counter:history"] });
    assert.equal((await svc.request("POST", `/tenants/${t}/${c}/inc`, { ip: "192.0.2.91" })).status, 200);
    assert.equal((await svc.request("POST", `/v2/tenants/${t}/counters/${c}/inc?delta=3`, { headers: { ...key(cred.api_key), ...idem() } })).status, 200);
    assert.equal((await svc.request("POST", `/tenants/${t}/counters/${c}/set`, { headers: admin, json: { value: 2 } })).status, 200);
    assert.equal((await svc.request("POST", `/tenants/${t}/counters/${c}/set`, { headers: admin, json: { value: 2 } })).status, 200);
    const page = await history(t, c, key(cred.api_key));
    assert.equal(page.next_cursor, null);
    const ops = page.operations;
    assert.deepEqual(ops.map((o) => [o.kind, o.delta, o.value_before, o.value_after, o.actor_id]), [
      ["set_adjustment", 0, 2, 2, "admin"],
      ["set_adjustment", -7, 9, 2, "admin"],
      ["increment", 3, 6, 9, cred.credential_id],
      ["increment", 1, 5, 6, "anonymous"],
      ["initial_value", 5, 0, 5, "admin"],
    ]);
    for (const o of ops) {
      assert.deepEqual(Object.keys(o), ["operation_id", "counter_id", "kind", "delta", "value_before", "value_after", "actor_id", "metadata", "created_at", "completed_at"]);
      assert.equal(o.counter_id, c);
      assert.deepEqual(o.metadata, {});
      assert.ok(o.completed_at >= o.created_at);
    }
    const wrongTenant = await svc.request("GET", `/v2/tenants/${(await svc.createTenant()).tenant_id}/counters/${c}/operations`, { headers: admin });
    assert.equal(errorCode(wrongTenant), "COUNTER_NOT_FOUND");
  });

  test("pagination: every limit edge, cursors that cannot be forged or moved", async () => {
    const { tenant_id: t } = await svc.createTenant();
    const { counter_id: c } = await svc.createCounter(t);
    for (let i = 0; i < 6; i++) {
      await svc.request("POST", `/v2/tenants/${t}/counters/${c}/inc`, { headers: { ...admin, ...idem() } });
    }
    for (const limit of ["0", "101", "-1", "1.5", "abc", ""]) {
      const res = await svc.request("GET", `/v2/tenants/${t}/counters/${c}/operations?limit=${limit}`, { headers: admin });
      assert.equal(res.status, 400, `limit=${limit}`);
      assert.equal(errorCode(res), "INVALID_PARAMETER");
    }
    assert.equal((await history(t, c, admin, "?limit=100")).operations.length, 7);
    assert.equal((await history(t, c)).operations.length, 7, "default 50");
    const seen = [];
    let cursor = null;
    do {
      const page = await history(t, c, admin, `?limit=1${cursor ? `&cursor=${cursor}` : ""}`);
      assert.equal(page.operations.length, 1);
      seen.push(page.operations[0].value_after);
      cursor = page.next_cursor;
    } while (cursor);
    assert.deepEqual(seen, [6, 5, 4, 3, 2, 1, 0]);
    const two = await history(t, c, admin, "?limit=2");
    const forged = two.next_cursor.slice(0, -2) + (two.next_cursor.endsWith("AA") ? "AB" : "AA");
    for (const bad of [forged, "garbage", "A".repeat(200)]) {
      const res = await svc.request("GET", `/v2/tenants/${t}/counters/${c}/operations?cursor=${bad}`, { headers: admin });
      assert.equal(errorCode(res), "INVALID_CURSOR", bad);
    }
    const { counter_id: c2 } = await svc.createCounter(t);
    const moved = await svc.request("GET", `/v2/tenants/${t}/counters/${c2}/operations?cursor=${two.next_cursor}`, { headers: admin });
    assert.equal(errorCode(moved), "INVALID_CURSOR");
  });

  test("200 concurrent V1, V2 and keyed increments: every acknowledged one exactly once", async () => {
    const { tenant_id: t } = await svc.createTenant();
    const { counter_id: c } = await svc.createCounter(t, { initial_value: 10 });
    const keys = Array.from({ length: 60 }, () => crypto.randomUUID());
    const requests = Array.from({ length: 200 }, (_, i) => {
      if (i % 4 === 0) return svc.request("POST", `/tenants/${t}/${c}/inc`, { ip: clientIp(9000 + i) });
      if (i % 4 === 1) return svc.request("POST", `/tenants/${t}/${c}/inc`, { ip: clientIp(9000 + i), headers: idem(keys[i % 60]) });
      return svc.request("POST", `/v2/tenants/${t}/counters/${c}/inc`, { headers: { ...admin, ...idem(keys[i % 60]) } });
    });
    const answers = await Promise.all(requests);
    assert.ok(answers.every((a) => a.status === 200), answers.filter((a) => a.status !== 200).map((a) => a.text).join("\n"));
    const fresh = answers.filter((a) => !a.json.replayed);
    const ops = (await allOperations(t, c)).reverse();
    const value = (await svc.request("GET", `/tenants/${t}/${c}`)).json.value;
    assert.equal(value, 10 + fresh.length);
    assert.equal(ops.length, 1 + fresh.length);
    assert.equal(ops[0].kind, "initial_value");
    assert.deepEqual(ops.map((o) => o.value_after), Array.from({ length: ops.length }, (_, i) => 10 + i), "values consecutive");
    assert.equal(ops.reduce((s, o) => s + o.delta, 0), value);
    assert.deepEqual(new Set(ops.slice(1).map((o) => o.operation_id)), new Set(fresh.map((a) => a.json.operation_id)));
    const used = new Set(answers.map((a) => a.json.operation_id));
    for (const k of keys.filter((k) => used.has(k))) assert.equal(ops.filter((o) => o.operation_id === k).length, 1, k);
    assert.ok(keys.filter((k) => used.has(k)).length > 30);
  });
});

describe("reconciliation", () => {
  test("the admin route and npm run reconcile: healthy, then with a damaged D1 copy", async () => {
    const { tenant_id: t } = await svc.createTenant();
    const { counter_id: c } = await svc.createCounter(t, { initial_value: 2 });
    await svc.request("POST", `/v2/tenants/${t}/counters/${c}/inc?delta=3`, { headers: { ...admin, ...idem() } });
    const first = await svc.request("GET", "/v2/admin/reconcile?limit=2", { headers: admin });
    assert.equal(first.status, 200);
    assert.equal(first.json.counters.length, 2);
    assert.deepEqual(Object.keys(first.json.counters[0]), ["counter_id", "value", "sum_of_deltas", "operations", "ok"]);
    for (const limit of ["0", "51"]) {
      assert.equal(errorCode(await svc.request("GET", `/v2/admin/reconcile?limit=${limit}`, { headers: admin })), "INVALID_PARAMETER");
    }
    const lines = [];
    const totals = await reconcile({ url: svc.url, key: "test-admin-key", pageSize: 7, log: (l) => lines.push(l) });
    assert.deepEqual(totals.mismatched, []);
    const all = await svc.db.prepare("SELECT COUNT(*) AS n FROM counters").first();
    assert.equal(totals.counters, all.n, "every counter, across pages");
    assert.match(lines.at(-1), /every ledger sums to its value/);

    // The D1 copy is only a copy: damaging it changes nothing the ledgers report.
    assert.ok(await eventually(async () => (await svc.d1Value(c)) === 5));
    await svc.db.prepare("UPDATE counters SET value = 999 WHERE id = ?").bind(c).run();
    const run = spawnSync(process.execPath, [join(root, "scripts", "reconcile.mjs"), "--url", String(svc.url), "--key", "test-admin-key"], { encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /every ledger sums to its value/);
    const mine = (await svc.request("GET", "/v2/admin/reconcile?limit=50", { headers: admin })).json;
    const bad = spawnSync(process.execPath, [join(root, "scripts", "reconcile.mjs"), "--url", String(svc.url), "--key", "wrong"], { encoding: "utf8" });
    assert.equal(bad.status, 2);
    assert.ok(mine.counters.length > 0);
  });
});

describe("retention", () => {
  test("operations past OPERATION_RETENTION_DAYS fold into one baseline; reconciliation holds", async () => {
    const persistTo = mkdtempSync(join(tmpdir(), "edgecount-ledger-"));
    let svc1 = await startWorker({ persistTo, vars: { FLUSH_INTERVAL_MS: "100" } });
    const { tenant_id: t } = await svc1.createTenant();
    const { counter_id: c } = await svc1.createCounter(t, { initial_value: 4 });
    const oldKey = crypto.randomUUID();
    await svc1.request("POST", `/v2/tenants/${t}/counters/${c}/inc?delta=2`, { headers: { ...admin, ...idem(oldKey) } });
    for (let i = 0; i < 3; i++) await svc1.request("POST", `/v2/tenants/${t}/counters/${c}/inc`, { headers: { ...admin, ...idem() } });
    await svc1.close();
    // 401 days later, as the object's retention clock sees it.
    const skew = String(401 * 86_400_000);
    const svc2 = await startWorker({ persistTo, vars: { FLUSH_INTERVAL_MS: "100", EDGECOUNT_CLOCK_SKEW_MS: skew } });
    try {
      const recent = await svc2.request("POST", `/v2/tenants/${t}/counters/${c}/inc?delta=5`, { headers: { ...admin, ...idem() } });
      assert.equal(recent.json.value, 14);
      const folded = await eventually(async () => {
        const page = await svc2.request("GET", `/v2/tenants/${t}/counters/${c}/operations`, { headers: admin });
        return page.json.operations.length === 2;
      }, 8000);
      assert.ok(folded, "the old operations were folded");
      const ops = (await svc2.request("GET", `/v2/tenants/${t}/counters/${c}/operations`, { headers: admin })).json.operations;
      assert.deepEqual(ops.map((o) => [o.kind, o.delta, o.value_before, o.value_after]), [
        ["increment", 5, 9, 14],
        ["baseline", 9, 0, 9],
      ]);
      const check = (await svc2.request("GET", "/v2/admin/reconcile?limit=50", { headers: admin })).json.counters.find((x) => x.counter_id === c);
      assert.deepEqual(check, { counter_id: c, value: 14, sum_of_deltas: 14, operations: 2, ok: true });
      // A folded key no longer replays: it is no longer in the history.
      const retried = await svc2.request("POST", `/v2/tenants/${t}/counters/${c}/inc?delta=2`, { headers: { ...admin, ...idem(oldKey) } });
      assert.equal(retried.json.replayed, false);
    } finally {
      await svc2.close();
    }
  });
});

describe("durability", () => {
  test("the ledger and its keys survive a SIGKILL of workerd mid-load", async () => {
    const persistTo = mkdtempSync(join(tmpdir(), "edgecount-kill-"));
    const { spawn } = await import("node:child_process");
    const load = join(root, "tests", "fixtures", "ledger-load.mjs");
    const child = spawn(process.execPath, [load, persistTo], { stdio: ["ignore", "pipe", "inherit"], detached: true });
    const lines = [];
    let buffer = "";
    child.stdout.on("data", (d) => {
      buffer += d;
      const parts = buffer.split("\n");
      buffer = parts.pop();
      lines.push(...parts.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)));
    });
    assert.ok(await eventually(async () => lines.length > 40, 30000), "load started");
    // Kill the whole process group, workerd included, without warning.
    process.kill(-child.pid, "SIGKILL");
    await new Promise((r) => child.on("exit", r));
    const { t, c } = lines[0];
    const acknowledged = lines.slice(1);
    const svc3 = await startWorker({ persistTo });
    try {
      const ops = [];
      let cursor = null;
      do {
        const page = await svc3.request("GET", `/v2/tenants/${t}/counters/${c}/operations?limit=100${cursor ? `&cursor=${cursor}` : ""}`, { headers: admin });
        ops.push(...page.json.operations);
        cursor = page.json.next_cursor;
      } while (cursor);
      const ids = new Set(ops.map((o) => o.operation_id));
      for (const a of acknowledged) assert.ok(ids.has(a.k), `acknowledged ${a.k} (value ${a.value}) is in the ledger`);
      const value = (await svc3.request("GET", `/tenants/${t}/${c}`)).json.value;
      assert.equal(ops.reduce((s, o) => s + o.delta, 0), value);
      assert.ok(value >= acknowledged.length);
      const last = acknowledged.at(-1);
      const replay = await svc3.request("POST", `/v2/tenants/${t}/counters/${c}/inc`, { headers: { ...admin, "Idempotency-Key": last.k } });
      assert.equal(replay.json.replayed, true);
      assert.equal(replay.json.value, last.value);
    } finally {
      await svc3.close();
    }
  });
});
