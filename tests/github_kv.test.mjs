// The GitHub cache's KV budget and failures, through the real runtime with a spy in front
// of the real local KV namespace: it counts every write, and refuses writes on demand
// (as KV does past the free plan's 1,000 writes a day, or 1 write a second per key).
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ORG, startFakeGitHub } from "./fixtures/fake-github.mjs";
import { ANNEX, errorCode, startWorker } from "./helpers/worker.mjs";

let gh;
let svc;
let kv; // the real namespace behind the spy
const puts = [];
const logs = [];
before(async () => {
  gh = await startFakeGitHub();
  svc = await startWorker({
    kvSpy: true,
    vars: { GITHUB_ORGS: ORG, GITHUB_API_URL: gh.url, GITHUB_TOKEN: "test-token" },
    onLog: (line) => {
      logs.push(line);
      if (line.includes('"kvSpy"')) puts.push(JSON.parse(line).key);
    },
  });
  kv = await svc.mf.getKVNamespace("INNER", "kv-spy");
});
after(async () => {
  await svc?.close();
  await gh?.close();
});
beforeEach(async () => {
  gh.state.mode = "ok";
  await kv.delete("spy:fail");
});

const refresh = async () => (await svc.mf.getWorker(ANNEX)).scheduled({ cron: "*/5 * * * *" });
const CACHED = ["/", `/orgs/${ORG}`, `/orgs/${ORG}/members`, `/orgs/${ORG}/repos`];
/** Waits until the runtime's log lines so far have arrived. */
const settle = () => new Promise((r) => setTimeout(r, 300));

/** Makes a copy's body look fetched `seconds` ago (written past the spy). */
async function ageBody(key, seconds) {
  const { value, metadata } = await kv.getWithMetadata(key);
  await kv.put(key, value, { metadata: { ...metadata, fetched_ms: Date.now() - seconds * 1000 } });
}

describe("KV refusing writes", () => {
  test("a failed write is logged, and the good upstream answer is still served", async () => {
    await kv.put("spy:fail", "1");
    logs.length = 0;
    const cached = await svc.request("GET", `/orgs/${ORG}`);
    assert.equal(cached.status, 200);
    assert.equal(cached.headers.get("x-cache"), "MISS");
    assert.equal(cached.json.login, ORG);
    const proxied = await svc.request("GET", `/repos/${ORG}/repo-010`);
    assert.equal(proxied.status, 200);
    assert.equal(proxied.json.full_name, `${ORG}/repo-010`);
    await refresh();
    await settle();
    const failures = logs.filter((l) => l.includes("writing the GitHub cache"));
    assert.ok(failures.length >= 3, logs.join("\n"));
    assert.equal(await kv.get(`gh:path:/orgs/${ORG}`), null, "nothing was written");
  });
});

describe("the write budget", () => {
  test("a cron 304 renews the copy's confirmation without writing its body; freshness follows it", async () => {
    await refresh();
    for (const path of CACHED) await ageBody(`gh:path:${path}`, 3600);
    await settle();
    puts.length = 0;
    gh.reset();
    await refresh();
    await settle();
    assert.ok(gh.state.requests.every((r) => r.conditional), "conditional requests only");
    assert.deepEqual(puts, ["gh:confirmed"], "one write for every path confirmed");
    gh.reset();
    for (const path of CACHED) {
      const res = await svc.request("GET", path);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get("x-cache"), "HIT", path);
      assert.ok(Number(res.headers.get("age")) < 60, `${path}: Age ${res.headers.get("age")} counts from the confirmation`);
    }
    assert.deepEqual(gh.state.requests, [], "a confirmed copy is fresh: GitHub is not asked");
  });

  test("STALE is judged from the last confirmation, not the last fetch", async () => {
    await refresh();
    const key = `gh:path:/orgs/${ORG}`;
    await ageBody(key, 3 * 86_400); // fetched past GITHUB_STALE_MAX_SECONDS...
    const confirmed = JSON.parse(await kv.get("gh:confirmed"));
    confirmed[key] = Date.now() - 3600 * 1000; // ...but confirmed an hour ago
    await kv.put("gh:confirmed", JSON.stringify(confirmed));
    gh.state.mode = "fail500";
    const res = await svc.request("GET", `/orgs/${ORG}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-cache"), "STALE");
    assert.ok(Number(res.headers.get("age")) >= 3600 && Number(res.headers.get("age")) < 3700);
    gh.state.mode = "ok";
    await refresh();
  });

  test("an unchanged org costs fewer than 300 KV writes per path per day (288 scheduled refreshes)", async (t) => {
    await refresh();
    await settle();
    puts.length = 0;
    gh.reset();
    const started = Date.now();
    // A day of the shipped schedule (every 5 minutes), with readers in between.
    for (let tick = 0; tick < 288; tick++) {
      await refresh();
      if (tick % 24 === 0) {
        for (const path of [...CACHED, "/view/top/5/stars"]) assert.equal((await svc.request("GET", path)).status, 200);
      }
    }
    await settle();
    const perKey = {};
    for (const key of puts) perKey[key] = (perKey[key] ?? 0) + 1;
    t.diagnostic(`KV writes over 288 refreshes: ${JSON.stringify(perKey)} (${gh.state.requests.length} upstream requests, all conditional; ${Date.now() - started} ms)`);
    assert.deepEqual(Object.keys(perKey), ["gh:confirmed"], "no body or view was written");
    assert.ok(perKey["gh:confirmed"] < 300);
    assert.ok(gh.state.requests.every((r) => r.conditional));
  });
});

describe("proxy copies in KV", () => {
  test("a proxied answer is kept for GITHUB_PROXY_CACHE_SECONDS with an expiry, one write per miss", async () => {
    puts.length = 0;
    gh.reset();
    for (let i = 0; i < 5; i++) assert.equal((await svc.request("GET", `/repos/${ORG}/repo-020?per_page=1`)).status, 200);
    await settle();
    assert.equal(puts.filter((k) => k.startsWith("gh:proxy:")).length, 1);
    assert.equal(gh.asked(`/repos/${ORG}/repo-020`).length, 1, "repeats within the cache time spend no token quota");
    const { keys } = await kv.list({ prefix: "gh:proxy:" });
    assert.ok(keys.length >= 1 && keys.every((k) => k.expiration > Date.now() / 1000), JSON.stringify(keys));
  });

  test("past GITHUB_PROXY_WRITES_PER_DAY answers are relayed without a KV copy, repeats held by the object", async () => {
    const writes = [];
    const capped = await startWorker({
      kvSpy: true,
      vars: { GITHUB_ORGS: ORG, GITHUB_API_URL: gh.url, GITHUB_PROXY_WRITES_PER_DAY: "3" },
      onLog: (line) => line.includes('"kvSpy"') && writes.push(JSON.parse(line).key),
    });
    try {
      gh.reset();
      for (let i = 0; i < 8; i++) {
        const res = await capped.request("GET", `/repos/${ORG}/repo-${100 + i}`);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("x-cache"), "MISS");
      }
      const again = await capped.request("GET", `/repos/${ORG}/repo-107`);
      assert.equal(again.headers.get("x-cache"), "HIT");
      await settle();
      assert.equal(writes.filter((k) => k.startsWith("gh:proxy:")).length, 3, JSON.stringify(writes));
      assert.equal(gh.asked(`/repos/${ORG}/repo-107`).length, 1, "a repeat spends no token quota");
    } finally {
      await capped.close();
    }
  });

  test("an unknown proxy target or a refused one is not written", async () => {
    puts.length = 0;
    assert.equal(errorCode(await svc.request("GET", "/user/emails")), "NOT_FOUND");
    assert.equal((await svc.request("GET", "/nothing/here")).status, 404);
    await settle();
    assert.deepEqual(puts, []);
  });
});
