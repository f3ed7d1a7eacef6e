// Budgets against abuse, with wrangler.toml's defaults: counting requests are admitted
// against the client's budget inside the counter or page they count (an IPv6 /64 is one
// client), with X-RateLimit-* headers and 429 + Retry-After; plain reads are braked per
// client at the edge (the Rate Limiting binding) without asking an object; admin routes
// are not limited. Also the request log: one JSON line for what is worth one.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { admin, AGENTS, clientIp, errorCode, eventually, startWorker } from "./helpers/worker.mjs";

const logs = [];
let svc;
let tenant;
before(async () => {
  svc = await startWorker({ onLog: (line) => logs.push(line) });
  tenant = (await svc.createTenant()).tenant_id;
});
after(() => svc?.close());

describe("budgets in the counted object", () => {
  test("ten increments per client per counter a minute, then 429 with Retry-After", async () => {
    const counter = (await svc.createCounter(tenant)).counter_id;
    const path = `/tenants/${tenant}/${counter}/inc`;
    const remaining = [];
    for (let i = 0; i < 10; i++) {
      const res = await svc.request("POST", path, { ip: "203.0.113.1" });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("x-ratelimit-limit"), "10");
      remaining.push(Number(res.headers.get("x-ratelimit-remaining")));
    }
    assert.deepEqual(remaining, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    const refused = await svc.request("POST", path, { ip: "203.0.113.1" });
    assert.equal(refused.status, 429);
    assert.equal(errorCode(refused), "RATE_LIMIT_EXCEEDED");
    const retryAfter = Number(refused.headers.get("retry-after"));
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    assert.equal(refused.headers.get("x-ratelimit-remaining"), "0");
    // A refused request changes nothing; other clients and other counters are untouched.
    assert.equal((await svc.request("GET", `/tenants/${tenant}/${counter}`)).json.value, 10);
    assert.equal((await svc.request("POST", path, { ip: "203.0.113.2" })).status, 200);
    const other = (await svc.createCounter(tenant)).counter_id;
    assert.equal((await svc.request("POST", `/tenants/${tenant}/${other}/inc`, { ip: "203.0.113.1" })).status, 200);
  });

  test("an IPv6 /64 is one client; another /64 is another", async () => {
    const counter = (await svc.createCounter(tenant)).counter_id;
    const path = `/tenants/${tenant}/${counter}/inc`;
    for (let i = 0; i < 10; i++) {
      // Every request from a fresh address of the same network.
      assert.equal((await svc.request("POST", path, { ip: `2001:db8:aa:bb::${(i + 1).toString(16)}` })).status, 200);
    }
    assert.equal((await svc.request("POST", path, { ip: "2001:db8:aa:bb:ffff:1:2:3" })).status, 429);
    assert.equal((await svc.request("POST", path, { ip: "2001:db8:aa:bc::1" })).status, 200);
  });

  test("a replayed increment spends nothing", async () => {
    const counter = (await svc.createCounter(tenant)).counter_id;
    const key = { "Idempotency-Key": crypto.randomUUID() };
    const path = `/tenants/${tenant}/${counter}/inc`;
    for (let i = 0; i < 15; i++) {
      const res = await svc.request("POST", path, { ip: "198.51.100.40", headers: key });
      assert.equal(res.status, 200);
      assert.equal(res.json.replayed, i > 0);
    }
    assert.equal((await svc.request("POST", path, { ip: "198.51.100.40" })).headers.get("x-ratelimit-remaining"), "8");
  });

  test("a visit over budget shows the count, counts nothing and stores nothing", async () => {
    const res = await svc.request("POST", "/tenants", { headers: admin, json: { label: `b-${crypto.randomUUID()}`, page_auto_create: true } });
    const t = res.json.tenant_id;
    const path = `/tenants/${t}/pages/home/visit`;
    const answers = [];
    const browser = { ip: "192.0.2.33", headers: { "User-Agent": AGENTS.firefox } };
    for (let i = 0; i < 12; i++) answers.push(await svc.request("POST", path, browser));
    assert.deepEqual(answers.map((a) => a.status), Array(12).fill(200));
    assert.deepEqual(answers.slice(0, 10).map((a) => a.json.counted), Array(10).fill(true));
    const over = answers[11];
    assert.deepEqual(over.json, { page_id: "home", count: 10, unique: false, counted: false, reason: "budget" });
    assert.equal(over.headers.get("x-ratelimit-remaining"), "0");
    assert.ok(Number(over.headers.get("retry-after")) >= 1);
    const rows = async () => (await svc.db.prepare("SELECT COUNT(*) AS n FROM visits WHERE tenant_id = ?").bind(t).first()).n;
    assert.ok(await eventually(async () => (await rows()) === 10), "ten rows reach D1");
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await rows(), 10, "and nothing for the refused visits");
  });
});

/**
 * The brakes count in fixed 60-second windows aligned to the clock: a burst that crossed
 * into the next window would find it empty. Bursts start with at least 15 s of a window
 * left.
 */
async function freshWindow() {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 15_000) await new Promise((r) => setTimeout(r, left + 100));
}

describe("the read brake", () => {
  test("plain reads are braked per client without spending a budget", async () => {
    const counter = (await svc.createCounter(tenant)).counter_id;
    const path = `/tenants/${tenant}/${counter}`;
    await freshWindow();
    const statuses = [];
    for (let i = 0; i < 301; i++) statuses.push((await svc.request("GET", path, { ip: "198.51.100.77" })).status);
    assert.deepEqual([...new Set(statuses.slice(0, 300))], [200], "the brake's limit from wrangler.toml");
    assert.equal(statuses[300], 429);
    const braked = await svc.request("GET", path, { ip: "198.51.100.77" });
    assert.equal(errorCode(braked), "RATE_LIMIT_EXCEEDED");
    assert.ok(Number(braked.headers.get("retry-after")) >= 1);
    // Another client reads on; the braked one may still count (its budget is its own).
    assert.equal((await svc.request("GET", path, { ip: "198.51.100.78" })).status, 200);
    assert.equal((await svc.request("POST", `${path}/inc`, { ip: "198.51.100.77" })).status, 200);
  });

  test("made-up tenants behind an Origin cost at most the brake's worth of lookups", async () => {
    await freshWindow();
    const statuses = [];
    for (let i = 0; i < 305; i++) {
      const fake = crypto.randomUUID().replace(/^(.{14})./, "$17");
      const res = await svc.request("GET", `/tenants/${fake}`, { ip: "198.51.100.90", headers: { Origin: "https://any.example" } });
      statuses.push(res.status);
    }
    assert.ok(statuses.includes(429), "the brake stops the flood");
    assert.ok(statuses.filter((s) => s === 404).length <= 300);
  });

  test("counting requests to made-up ids are braked per client after 60 refusals, without an object", async () => {
    const fake = () => crypto.randomUUID().replace(/^(.{14})./, "$17");
    await freshWindow();
    const statuses = [];
    for (let i = 0; i < 70; i++) statuses.push((await svc.request("POST", `/tenants/${tenant}/${fake()}/inc`, { ip: "198.51.100.120" })).status);
    assert.deepEqual([...new Set(statuses.slice(0, 60))], [404], "each a real miss, within the brake");
    assert.deepEqual([...new Set(statuses.slice(62))], [429], "then stopped at the edge");
    const stopped = await svc.request("POST", `/tenants/${tenant}/${fake()}/inc`, { ip: "198.51.100.120" });
    assert.equal(errorCode(stopped), "RATE_LIMIT_EXCEEDED");
    assert.equal(stopped.headers.get("retry-after"), "60");
    // A braked badge still renders, without a value it would have had to ask for.
    const badge = await svc.request("GET", `/tenants/${tenant}/${fake()}/badge.svg`, { ip: "198.51.100.120" });
    assert.equal(badge.status, 200);
    assert.match(badge.text, /aria-label="count: …"/);
    // Another client is not braked.
    assert.equal((await svc.request("POST", `/tenants/${tenant}/${fake()}/inc`, { ip: "198.51.100.121" })).status, 404);
  });

  test("admin routes are not limited", async () => {
    for (let i = 0; i < 15; i++) {
      const res = await svc.request("POST", `/tenants/${tenant}`, { headers: admin, ip: "203.0.113.77" });
      assert.equal(res.status, 201);
      assert.equal(res.headers.get("x-ratelimit-limit"), null);
    }
  });
});

describe("request log", () => {
  test("one JSON line for refusals and errors, none for ordinary requests", async () => {
    const counter = (await svc.createCounter(tenant)).counter_id;
    const ok = await svc.request("GET", `/tenants/${tenant}/${counter}`, { ip: clientIp(901) });
    const missing = await svc.request("GET", "/nowhere", { ip: clientIp(902) });
    const refused = await svc.request("POST", "/tenants", { json: { label: "x" } });
    await new Promise((r) => setTimeout(r, 300));
    const linesOf = (res) => logs.filter((l) => l.includes(res.headers.get("x-request-id"))).map((l) => JSON.parse(l));
    assert.equal(linesOf(ok).length, 0);
    assert.equal(linesOf(missing).length, 0);
    const [line, ...more] = linesOf(refused);
    assert.equal(more.length, 0);
    assert.deepEqual(
      { level: line.level, method: line.method, route: line.route, status: line.status },
      { level: "warn", method: "POST", route: "/tenants", status: 401 },
    );
    assert.equal(typeof line.duration_ms, "number");
    assert.match(line.time, /^\d{4}-\d{2}-\d{2}T/);
  });

  test("REQUEST_LOG=all writes a line for every request", async () => {
    const lines = [];
    const verbose = await startWorker({ vars: { REQUEST_LOG: "all" }, onLog: (l) => lines.push(l) });
    try {
      const res = await verbose.request("GET", "/healthz");
      await new Promise((r) => setTimeout(r, 300));
      const mine = lines.filter((l) => l.includes(res.headers.get("x-request-id"))).map((l) => JSON.parse(l));
      assert.equal(mine.length, 1);
      assert.deepEqual({ level: mine[0].level, status: mine[0].status, route: mine[0].route }, { level: "info", status: 200, route: "/healthz" });
    } finally {
      await verbose.close();
    }
  });
});

describe("a budget's window", () => {
  test("reopens after the window", async () => {
    const quick = await startWorker({ vars: { RATE_LIMIT_POST: "3", RATE_LIMIT_WINDOW_SECONDS: "2" } });
    try {
      const t = (await quick.createTenant()).tenant_id;
      const c = (await quick.createCounter(t)).counter_id;
      const path = `/tenants/${t}/${c}/inc`;
      for (let i = 0; i < 3; i++) assert.equal((await quick.request("POST", path, { ip: "203.0.113.9" })).status, 200);
      const refused = await quick.request("POST", path, { ip: "203.0.113.9" });
      assert.equal(refused.status, 429);
      await new Promise((r) => setTimeout(r, Number(refused.headers.get("retry-after")) * 1000 + 100));
      const again = await quick.request("POST", path, { ip: "203.0.113.9" });
      assert.equal(again.status, 200);
      assert.equal(again.headers.get("x-ratelimit-remaining"), "2");
    } finally {
      await quick.close();
    }
  });
});
