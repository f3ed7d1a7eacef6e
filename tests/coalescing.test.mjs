// Coalesced increments: public increments of one counter that arrive while a call to
// its object is in flight leave together in the next call. Each client must still get
// exactly the answer it would have got alone — its own operation and value, its own
// budget, its own error — and nothing may be counted twice or lost, also when clients
// hang up mid-flight. wrangler.toml's defaults (budgets on).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { clientIp, errorCode, eventually, startWorker } from "./helpers/worker.mjs";

let svc;
let tenant;
before(async () => {
  svc = await startWorker();
  tenant = (await svc.createTenant()).tenant_id;
});
after(() => svc?.close());

const inc = (counter, ip, query = "") => svc.request("POST", `/tenants/${tenant}/${counter}/inc${query}`, { ip });
const value = async (counter) => (await svc.request("GET", `/tenants/${tenant}/${counter}`)).json.value;

describe("coalesced increments", () => {
  test("500 clients at once: every increment counted once, each answer its own", async () => {
    const counter = (await svc.createCounter(tenant)).counter_id;
    const answers = await Promise.all(Array.from({ length: 500 }, (_, i) => inc(counter, clientIp(i))));
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
    const values = answers.map((a) => a.json.value).sort((a, b) => a - b);
    assert.deepEqual(values, Array.from({ length: 500 }, (_, i) => i + 1), "values 1..500, none repeated");
    assert.equal(new Set(answers.map((a) => a.json.operation_id)).size, 500, "an operation each");
    for (const a of answers) {
      assert.equal(a.json.counter_id, counter);
      assert.equal(a.headers.get("x-ratelimit-limit"), "10");
      assert.equal(a.headers.get("x-ratelimit-remaining"), "9", "each client spent one of its own budget");
      assert.equal(a.headers.get("content-type"), "application/json; charset=utf-8");
    }
    assert.equal(await value(counter), 500);
    const ops = await svc.request("GET", `/v2/tenants/${tenant}/counters/${counter}/operations?limit=100`, { headers: { "X-API-Key": "test-admin-key" } });
    assert.equal(ops.status, 200);
    assert.equal(ops.json.operations[0].value_after, 500);
    assert.ok(await eventually(async () => (await svc.d1Value(counter)) === 500), "D1 catches up");
  });

  test("budgets stay per client inside one object request", async () => {
    const counter = (await svc.createCounter(tenant)).counter_id;
    const clients = ["203.0.113.7", "203.0.113.8", "2001:db8:1:2::1"];
    const answers = await Promise.all(clients.flatMap((ip) => Array.from({ length: 15 }, () => inc(counter, ip).then((a) => ({ ip, a })))));
    for (const ip of clients) {
      const mine = answers.filter((x) => x.ip === ip).map((x) => x.a);
      assert.equal(mine.filter((a) => a.status === 200).length, 10, `${ip}: its ten`);
      const refused = mine.filter((a) => a.status === 429);
      assert.equal(refused.length, 5, `${ip}: the rest refused`);
      for (const r of refused) {
        assert.equal(errorCode(r), "RATE_LIMIT_EXCEEDED");
        assert.equal(r.headers.get("x-ratelimit-remaining"), "0");
        assert.ok(Number(r.headers.get("retry-after")) >= 1);
      }
      const remaining = mine.filter((a) => a.status === 200).map((a) => Number(a.headers.get("x-ratelimit-remaining")));
      assert.deepEqual(remaining.sort((a, b) => b - a), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    }
    assert.equal(await value(counter), 30);
  });

  test("one client's bad delta fails only its own increment", async () => {
    const counter = (await svc.createCounter(tenant, { max_delta: 5 })).counter_id;
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) => inc(counter, clientIp(1000 + i), i % 4 === 0 ? "?delta=9" : "?delta=2")),
    );
    const bad = answers.filter((_, i) => i % 4 === 0);
    const good = answers.filter((_, i) => i % 4 !== 0);
    for (const a of bad) {
      assert.equal(a.status, 400);
      assert.equal(errorCode(a), "DELTA_EXCEEDS_MAXIMUM");
    }
    assert.deepEqual([...new Set(good.map((a) => a.status))], [200]);
    assert.equal(await value(counter), good.length * 2);
  });

  test("a counter of another tenant, or of no tenant, is not found for every member", async () => {
    const counter = (await svc.createCounter(tenant)).counter_id;
    const other = (await svc.createTenant()).tenant_id;
    const missing = "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";
    const wrong = await Promise.all(Array.from({ length: 20 }, (_, i) => svc.request("POST", `/tenants/${other}/${counter}/inc`, { ip: clientIp(2000 + i) })));
    assert.deepEqual([...new Set(wrong.map(errorCode))], ["COUNTER_NOT_FOUND"]);
    const gone = await Promise.all(Array.from({ length: 20 }, (_, i) => svc.request("POST", `/tenants/${missing}/${counter}/inc`, { ip: clientIp(3000 + i) })));
    assert.deepEqual([...new Set(gone.map(errorCode))], ["TENANT_NOT_FOUND"]);
    assert.equal(await value(counter), 0);
  });

  test("clients hanging up mid-flight neither stall the others nor the counter", async () => {
    const counter = (await svc.createCounter(tenant)).counter_id;
    const url = new URL(`/tenants/${tenant}/${counter}/inc`, svc.url);
    const attempts = Array.from({ length: 100 }, (_, i) => {
      const abort = new AbortController();
      const sent = fetch(url, { method: "POST", headers: { "CF-Connecting-IP": clientIp(4000 + i) }, signal: abort.signal })
        .then(async (res) => ({ status: res.status, body: await res.json() }))
        .catch(() => "hung up");
      if (i % 3 === 0) setTimeout(() => abort.abort(), i % 2);
      return sent;
    });
    const outcomes = await Promise.all(attempts);
    const answered = outcomes.filter((o) => o !== "hung up");
    assert.deepEqual([...new Set(answered.map((o) => o.status))], [200]);
    assert.ok(answered.length >= 66, `${answered.length} answered`);
    // Each answered increment counted; a hung-up one may have been counted before its
    // client left (as when it travels alone), never twice.
    const counted = await value(counter);
    assert.ok(counted >= answered.length && counted <= 100, `counted ${counted}, answered ${answered.length}`);
    assert.equal(new Set(answered.map((o) => o.body.value)).size, answered.length);
    // The lane is free: the next increment goes straight through.
    const started = Date.now();
    const next = await inc(counter, clientIp(4999));
    assert.equal(next.status, 200);
    assert.equal(next.json.value, counted + 1);
    assert.ok(Date.now() - started < 5000, "not held behind a lost flight");
  });
});
