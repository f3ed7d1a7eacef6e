// Page views through the real runtime: visits, uniques, privacy, the page cap, bots,
// history, retention and the migration routes.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ANNEX, admin, errorCode, eventually, startWorker } from "./helpers/worker.mjs";

const IP = "198.51.100.77";
const UA = "Mozilla/5.0 (X11; Linux x86_64) EdgecountTestBrowser/1.0 Firefox/120.0";
const visitorHeaders = (ip = IP, ua = UA) => ({ "CF-Connecting-IP": ip, "User-Agent": ua, Referer: "https://news.example.com/story?id=1" });
const enc = encodeURIComponent;

let svc;
const state = mkdtempSync(join(tmpdir(), "edgecount-pages-"));
before(async () => {
  svc = await startWorker({ persistTo: state, vars: { FLUSH_INTERVAL_MS: "200", MAX_PAGES_PER_TENANT: "5" } });
});
after(async () => {
  await svc?.close();
  rmSync(state, { recursive: true, force: true });
});

async function pageTenant(settings = { page_auto_create: true }) {
  const res = await svc.request("POST", "/tenants", { headers: admin, json: { label: `pages-${crypto.randomUUID()}`, ...settings } });
  assert.equal(res.status, 201, res.text);
  return res.json.tenant_id;
}

async function d1Rows(tenant, page) {
  return (await svc.db.prepare("SELECT COUNT(*) AS n FROM visits WHERE tenant_id = ? AND page_id = ?").bind(tenant, page).first()).n;
}

describe("visits", () => {
  test("500 concurrent visits give count 500 and exactly 500 D1 rows", async () => {
    const t = await pageTenant();
    const page = "/posts/hello";
    const path = `/tenants/${t}/pages/${enc(page)}/visit`;
    const answers = await Promise.all(
      Array.from({ length: 500 }, (_, i) => svc.request("POST", path, { headers: visitorHeaders(`203.0.113.${i % 250}`, `${UA} v${i}`) })),
    );
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
    assert.deepEqual(answers.map((a) => a.json.count).sort((a, b) => a - b), Array.from({ length: 500 }, (_, i) => i + 1));
    const read = await svc.request("GET", `/tenants/${t}/pages/${enc(page)}`);
    assert.deepEqual(read.json, { page_id: page, count: 500, uniques_today: 500 });
    assert.ok(await eventually(async () => (await d1Rows(t, page)) === 500, 8000), "all rows reach D1");
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(await d1Rows(t, page), 500, "and no more");
    const d1Page = await svc.db.prepare("SELECT count FROM pages WHERE tenant_id = ? AND page_id = ?").bind(t, page).first();
    assert.equal(d1Page.count, 500);
  });

  test("a failed flush retried later adds no duplicate", async () => {
    const t = await pageTenant();
    const page = "retry";
    await svc.db.exec("ALTER TABLE visits RENAME TO visits_parked");
    try {
      for (let i = 0; i < 30; i++) {
        const res = await svc.request("POST", `/tenants/${t}/pages/${page}/visit`, { headers: visitorHeaders(`203.0.113.${i}`) });
        assert.equal(res.json.counted, true);
      }
      await new Promise((r) => setTimeout(r, 700));
    } finally {
      await svc.db.exec("ALTER TABLE visits_parked RENAME TO visits");
    }
    assert.ok(await eventually(async () => (await d1Rows(t, page)) === 30, 8000), "the retry lands");
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(await d1Rows(t, page), 30);
    const seqs = await svc.db.prepare("SELECT COUNT(DISTINCT seq) AS n, MIN(seq) AS lo, MAX(seq) AS hi FROM visits WHERE tenant_id = ? AND page_id = ?").bind(t, page).first();
    assert.deepEqual(seqs, { n: 30, lo: 1, hi: 30 });
  });

  test("the same visitor twice in a day is one unique", async () => {
    const t = await pageTenant();
    const path = `/tenants/${t}/pages/u/visit`;
    const first = await svc.request("POST", path, { headers: visitorHeaders() });
    const again = await svc.request("POST", path, { headers: visitorHeaders() });
    const other = await svc.request("POST", path, { headers: visitorHeaders("198.51.100.78") });
    assert.deepEqual([first.json.unique, again.json.unique, other.json.unique], [true, false, true]);
    assert.equal(again.json.count, 2);
    const read = await svc.request("GET", `/tenants/${t}/pages/u`);
    assert.equal(read.json.uniques_today, 2);
  });

  test("bots are logged but not counted, unless the tenant says so", async () => {
    const t = await pageTenant();
    const bot = { "CF-Connecting-IP": IP, "User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1)" };
    const path = `/tenants/${t}/pages/b/visit`;
    await svc.request("POST", path, { headers: visitorHeaders() });
    const botVisit = await svc.request("POST", path, { headers: bot });
    assert.deepEqual(botVisit.json, { page_id: "b", count: 1, unique: false, counted: false, reason: "bot" });
    assert.ok(await eventually(async () => (await d1Rows(t, "b")) === 2, 5000));
    const row = await svc.db.prepare("SELECT agent, counted FROM visits WHERE tenant_id = ? AND page_id = 'b' AND seq = 2").bind(t).first();
    assert.deepEqual(row, { agent: "bot", counted: 0 });

    const counting = await pageTenant({ page_auto_create: true, count_bots: true });
    await svc.request("POST", `/tenants/${counting}/pages/b/visit`, { headers: bot });
    assert.equal((await svc.request("GET", `/tenants/${counting}/pages/b`)).json.count, 1);
  });
});

describe("creation rules", () => {
  test("pages are created on first visit only where the tenant allows it", async () => {
    const t = await pageTenant({ page_auto_create: false });
    const res = await svc.request("POST", `/tenants/${t}/pages/p/visit`, { headers: visitorHeaders() });
    assert.equal(res.status, 404);
    assert.equal(errorCode(res), "PAGE_NOT_FOUND");
    const patched = await svc.request("PATCH", `/tenants/${t}`, { headers: admin, json: { page_auto_create: true } });
    assert.equal(patched.status, 200);
    assert.equal(patched.json.page_auto_create, true);
    assert.equal((await svc.request("POST", `/tenants/${t}/pages/p/visit`, { headers: visitorHeaders() })).status, 200);
    const missing = await svc.request("GET", `/tenants/${t}/pages/never-visited`);
    assert.equal(errorCode(missing), "PAGE_NOT_FOUND");
    const noTenant = await svc.request("POST", "/tenants/0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b/pages/p/visit");
    assert.equal(errorCode(noTenant), "TENANT_NOT_FOUND");
  });

  test("the page cap holds, even for concurrent first visits", async () => {
    const t = await pageTenant();
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => svc.request("POST", `/tenants/${t}/pages/cap-${i}/visit`, { headers: visitorHeaders() })),
    );
    const statuses = answers.map((a) => a.status).sort();
    assert.equal(statuses.filter((s) => s === 200).length, 5, JSON.stringify(statuses));
    assert.ok(answers.filter((a) => a.status === 403).every((a) => errorCode(a) === "PAGE_LIMIT_REACHED"));
    const rows = await svc.db.prepare("SELECT COUNT(*) AS n FROM pages WHERE tenant_id = ?").bind(t).first();
    assert.equal(rows.n, 5);
    const existing = answers.findIndex((a) => a.status === 200);
    assert.equal((await svc.request("POST", `/tenants/${t}/pages/cap-${existing}/visit`, { headers: visitorHeaders() })).status, 200);
  });

  test("bad page ids are 400", async () => {
    const t = await pageTenant();
    for (const bad of ["%00", "a%0Ab", "%zz", "%C3", "x".repeat(513), "%E2%82"]) {
      const res = await svc.request("POST", `/tenants/${t}/pages/${bad}/visit`);
      assert.equal(res.status, 400, bad);
      assert.equal(errorCode(res), "INVALID_PARAMETER", bad);
    }
    const rows = await svc.db.prepare("SELECT COUNT(*) AS n FROM pages WHERE tenant_id = ?").bind(t).first();
    assert.equal(rows.n, 0);
  });
});

describe("history and retention", () => {
  test("history aggregates by hour and day, with empty buckets as zeros", async () => {
    const t = await pageTenant();
    for (let i = 0; i < 3; i++) await svc.request("POST", `/tenants/${t}/pages/h/visit`, { headers: visitorHeaders(`192.0.2.${i}`) });
    await svc.request("POST", `/tenants/${t}/pages/h/visit`, { headers: visitorHeaders("192.0.2.0") });
    assert.ok(await eventually(async () => (await d1Rows(t, "h")) === 4, 5000));
    const byDay = await svc.request("GET", `/tenants/${t}/pages/h/history`);
    assert.equal(byDay.status, 200);
    assert.equal(byDay.json.series.length, 31);
    const today = byDay.json.series.at(-1);
    assert.deepEqual({ visits: today.visits, uniques: today.uniques }, { visits: 4, uniques: 3 });
    assert.ok(byDay.json.series.slice(0, -1).every((b) => b.visits === 0 && b.uniques === 0));
    const now = new Date();
    const from = new Date(now.getTime() - 2 * 3600_000).toISOString();
    const byHour = await svc.request("GET", `/tenants/${t}/pages/h/history?granularity=hour&from=${from}`);
    assert.equal(byHour.json.series.reduce((n, b) => n + b.visits, 0), 4);
    for (const q of ["granularity=week", "from=yesterday", "from=2020-01-01&to=2019-01-01", "from=2000-01-01&granularity=hour"]) {
      assert.equal(errorCode(await svc.request("GET", `/tenants/${t}/pages/h/history?${q}`)), "INVALID_PARAMETER", q);
    }
  });

  test("history queries use the page-and-time index", async () => {
    const plan = await svc.db
      .prepare("EXPLAIN QUERY PLAN SELECT (ts / 3600000) * 3600000 AS start, SUM(counted), SUM(is_unique) FROM visits WHERE tenant_id = ? AND page_id = ? AND ts >= ? AND ts < ? GROUP BY start")
      .bind("t", "p", 0, 1)
      .all();
    const detail = plan.results.map((r) => r.detail).join(" | ");
    assert.match(detail, /USING (COVERING )?INDEX visits_by_page_time/, detail);
  });

  test("retention deletes old rows in batches and keeps their daily totals", async () => {
    const t = await pageTenant();
    await svc.request("POST", `/tenants/${t}/pages/old/visit`, { headers: visitorHeaders() });
    const day = Math.floor(Date.now() / 86_400_000) - 500;
    const rows = [];
    for (let i = 0; i < 7; i++) {
      rows.push(svc.db.prepare("INSERT INTO visits VALUES (?, 'old', ?, ?, NULL, NULL, 'browser', 1, ?)").bind(t, 1000 + i, day * 86_400_000 + i * 1000, i < 3 ? 1 : 0));
    }
    await svc.db.batch(rows);
    const worker = await svc.mf.getWorker(ANNEX);
    await worker.scheduled({ cron: "17 3 * * *" });
    const left = await svc.db.prepare("SELECT COUNT(*) AS n FROM visits WHERE tenant_id = ? AND page_id = 'old' AND seq >= 1000").bind(t).first();
    assert.equal(left.n, 0);
    const total = await svc.db.prepare("SELECT visits, uniques FROM visit_days WHERE tenant_id = ? AND page_id = 'old' AND day = ?").bind(t, day).first();
    assert.deepEqual(total, { visits: 7, uniques: 3 });
    const from = new Date(day * 86_400_000).toISOString().slice(0, 10);
    const to = new Date((day + 1) * 86_400_000).toISOString().slice(0, 10);
    const history = await svc.request("GET", `/tenants/${t}/pages/old/history?from=${from}&to=${to}`);
    assert.deepEqual(history.json.series.map((b) => [b.visits, b.uniques]), [[7, 3]]);
  });
});

describe("privacy", () => {
  test("no stored column anywhere holds the client's IP or user agent", async () => {
    const t = await pageTenant();
    await svc.request("POST", `/tenants/${t}/pages/private/visit`, { headers: visitorHeaders() });
    assert.ok(await eventually(async () => (await d1Rows(t, "private")) === 1, 5000));
    const tables = (await svc.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'").all()).results;
    for (const { name } of tables) {
      const dump = JSON.stringify((await svc.db.prepare(`SELECT * FROM "${name}"`).all()).results);
      assert.ok(!dump.includes(IP), `D1 table ${name} holds the IP`);
      assert.ok(!dump.includes("EdgecountTestBrowser"), `D1 table ${name} holds the user agent`);
    }
    const row = await svc.db.prepare("SELECT referrer_host, agent FROM visits WHERE tenant_id = ? AND page_id = 'private'").bind(t).first();
    assert.deepEqual(row, { referrer_host: "news.example.com", agent: "browser" });
    // Every byte the runtime persisted: Durable Object storage, D1 and KV files.
    const files = [];
    const walk = (dir) => readdirSync(dir).forEach((f) => (statSync(join(dir, f)).isDirectory() ? walk(join(dir, f)) : files.push(join(dir, f))));
    walk(state);
    assert.ok(files.length > 0);
    for (const file of files) {
      const bytes = readFileSync(file);
      assert.ok(!bytes.includes(IP), `${file} holds the IP`);
      assert.ok(!bytes.includes("EdgecountTestBrowser"), `${file} holds the user agent`);
    }
  });
});

describe("migration routes", () => {
  test("each answers in its old shape on the default tenant", async () => {
    const inc = await svc.request("POST", "/api/v1/counter");
    assert.equal(inc.status, 204);
    assert.equal(inc.text, "");
    await svc.request("POST", "/api/v1/counter");
    const read = await svc.request("GET", "/api/v1/counter");
    assert.equal(read.status, 200);
    assert.deepEqual(read.json, { count: 2 });

    const before = await svc.request("GET", "/web-counter/");
    assert.equal(before.status, 200);
    assert.equal(before.text, "0");
    const one = await svc.request("GET", "/web-counter/increment", { headers: visitorHeaders() });
    assert.match(one.headers.get("content-type"), /^text\/plain/);
    assert.equal(one.text, "1");
    const two = await svc.request("POST", "/web-counter/increment", { headers: visitorHeaders() });
    assert.equal(two.text, "2");
    assert.equal((await svc.request("GET", "/web-counter/")).text, "2");
    assert.equal((await svc.request("GET", "/api/v1/visitor/getCounter")).text, "2");

    const visit = await svc.request("POST", `/visit/${enc("/about")}`, { headers: visitorHeaders() });
    assert.deepEqual(visit.json, { status: "success", message: "Visit recorded for page /about" });
    assert.deepEqual((await svc.request("GET", `/visits/${enc("/about")}`)).json, { count: 1, served_via: "durable_object" });
    assert.deepEqual((await svc.request("GET", "/visits/nowhere")).json, { count: 0, served_via: "durable_object" });

    const tenant = await svc.db.prepare("SELECT page_auto_create FROM tenants WHERE label = 'default'").first();
    assert.equal(tenant.page_auto_create, 1);
    assert.equal(errorCode(await svc.request("DELETE", "/api/v1/counter")), "METHOD_NOT_ALLOWED");
    assert.equal(errorCode(await svc.request("POST", "/visit/%zz")), "INVALID_PARAMETER");
  });
});
