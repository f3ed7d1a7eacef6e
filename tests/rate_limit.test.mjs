// Public routes are rate-limited per client IP across the whole service; admin routes
// are not. Also checks the one-JSON-line-per-request log.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { admin, errorCode, startWorker } from "./helpers/worker.mjs";

const logs = [];
let svc;
let tenant;
let counter;
before(async () => {
  svc = await startWorker({
    vars: { RATE_LIMIT_POST: "3", RATE_LIMIT_GET: "5", RATE_LIMIT_WINDOW_SECONDS: "2" },
    onLog: (line) => logs.push(line),
  });
  tenant = (await svc.createTenant()).tenant_id;
  counter = (await svc.createCounter(tenant)).counter_id;
});
after(() => svc?.close());

const from = (ip) => ({ headers: { "CF-Connecting-IP": ip } });

test("POSTs: the limit, then 429 with Retry-After, then recovery after the window", async () => {
  const path = `/tenants/${tenant}/${counter}/inc`;
  const remaining = [];
  for (let i = 0; i < 3; i++) {
    const res = await svc.request("POST", path, from("203.0.113.1"));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-ratelimit-limit"), "3");
    remaining.push(res.headers.get("x-ratelimit-remaining"));
  }
  assert.deepEqual(remaining, ["2", "1", "0"]);
  const limited = await svc.request("POST", path, from("203.0.113.1"));
  assert.equal(limited.status, 429);
  assert.equal(errorCode(limited), "RATE_LIMIT_EXCEEDED");
  const retryAfter = Number(limited.headers.get("retry-after"));
  assert.ok(retryAfter >= 1 && retryAfter <= 2, `Retry-After ${retryAfter}`);
  assert.equal(limited.headers.get("x-ratelimit-remaining"), "0");
  // Refused requests change nothing.
  assert.equal((await svc.request("GET", `/tenants/${tenant}/${counter}`, from("198.51.100.9"))).json.value, 3);

  // Another client has its own allowance; GETs have theirs.
  assert.equal((await svc.request("POST", path, from("203.0.113.2"))).status, 200);
  assert.equal((await svc.request("GET", `/tenants/${tenant}/${counter}`, from("203.0.113.1"))).status, 200);

  await new Promise((r) => setTimeout(r, retryAfter * 1000 + 100));
  const recovered = await svc.request("POST", path, from("203.0.113.1"));
  assert.equal(recovered.status, 200);
  assert.equal(recovered.headers.get("x-ratelimit-remaining"), "2");
});

test("GETs have their own limit", async () => {
  const statuses = [];
  for (let i = 0; i < 6; i++) {
    statuses.push((await svc.request("GET", `/tenants/${tenant}`, from("203.0.113.50"))).status);
  }
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
});

test("admin routes are not limited", async () => {
  for (let i = 0; i < 8; i++) {
    const res = await svc.request("POST", `/tenants/${tenant}`, { headers: { ...admin, "CF-Connecting-IP": "203.0.113.77" } });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get("x-ratelimit-limit"), null);
  }
});

test("every request writes one JSON log line", async () => {
  const res = await svc.request("GET", `/tenants/${tenant}/${counter}`, from("203.0.113.99"));
  const id = res.headers.get("x-request-id");
  assert.ok(id);
  await new Promise((r) => setTimeout(r, 200));
  const mine = logs.filter((l) => l.includes(id)).map((l) => JSON.parse(l));
  assert.equal(mine.length, 1);
  const [line] = mine;
  assert.deepEqual(
    { level: line.level, method: line.method, route: line.route, status: line.status, tenant_id: line.tenant_id },
    { level: "info", method: "GET", route: "/tenants/{tenant_id}/{counter_id}", status: 200, tenant_id: tenant },
  );
  assert.equal(typeof line.duration_ms, "number");
  assert.match(line.time, /^\d{4}-\d{2}-\d{2}T/);
});
