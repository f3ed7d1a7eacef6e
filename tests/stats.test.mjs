// The stats API through the real runtime: a tenant seeded through real visits on three
// days (the Worker's test clock shifted back, a restart per day, state kept) across pages,
// referrers, countries, bots and visitors who read several pages; its stats compared
// with direct queries over the raw visit rows; D1 rows read kept flat as visits grow;
// site-wide visitors exact at thousands and sampled past the limit; scopes; bad input.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { unstable_splitSqlQuery } from "wrangler";
import { AGENTS, admin, clientIp, errorCode, eventually, root, startWorker } from "./helpers/worker.mjs";

const DAY = 86_400_000;
const PAGES = ["/", "/posts/a", "/posts/b", "/about"];
const REFERRERS = [undefined, "https://news.example.com/story", "https://www.google.com/", "https://t.co/x"];
const COUNTRIES = [undefined, "DE", "FR", "US"];
const enc = encodeURIComponent;
const state = mkdtempSync(join(tmpdir(), "edgecount-stats-"));
let svc;
let tenant;
/** Site-wide visitors the seed made per day (distinct browsers with a counted visit). */
const expectedVisitors = new Map();

function agentOf(i) {
  if (i % 10 === 3) return AGENTS.googlebot;
  if (i % 10 === 7) return AGENTS.curl;
  return `${i % 2 ? AGENTS.firefox : AGENTS.chrome} v${i}`;
}

async function visit(service, t, page, i, extra = {}) {
  const headers = { "User-Agent": agentOf(i) };
  const referrer = REFERRERS[(i + page.length) % REFERRERS.length];
  if (referrer) headers.Referer = referrer;
  const country = COUNTRIES[i % COUNTRIES.length];
  const res = await service.request("POST", `/tenants/${t}/pages/${enc(page)}/visit`, {
    headers,
    ip: clientIp(i),
    cf: country ? { country } : {},
    ...extra,
  });
  assert.equal(res.status, 200, res.text);
  return res.json;
}

/** Waits until D1 holds `visits` rows of the tenant and every page's rows are rolled up. */
async function flushed(service, t, visits) {
  const ok = await eventually(async () => {
    const { results } = await service.db
      .prepare("SELECT p.version AS version, p.rolled_seq AS rolled, (SELECT COUNT(*) FROM visits v WHERE v.tenant_id = p.tenant_id) AS rows FROM pages p WHERE p.tenant_id = ?")
      .bind(t)
      .all();
    return results.length > 0 && results[0].rows === visits && results.every((r) => r.rolled === r.version);
  }, 30_000);
  assert.ok(ok, `all ${visits} visits reached D1 and the rollups`);
}

/** A day's visits: 40 visitors, each reading one to three pages. */
async function seedDay(service, t, day, visitors = 40) {
  const browsers = new Set();
  const jobs = [];
  for (let i = day * 1000; i < day * 1000 + visitors; i++) {
    const pages = PAGES.slice(i % 4, (i % 4) + 1 + (i % 3));
    for (const page of pages) jobs.push(() => visit(service, t, page, i));
    if (i % 10 !== 3 && i % 10 !== 7) browsers.add(i);
  }
  for (let k = 0; k < jobs.length; k += 20) await Promise.all(jobs.slice(k, k + 20).map((j) => j()));
  return { visitors: browsers.size, visits: jobs.length };
}

before(async () => {
  const now = Date.now();
  let sent = 0;
  for (const back of [2, 1, 0]) {
    const worker = await startWorker({ persistTo: state, vars: { FLUSH_INTERVAL_MS: "100", EDGECOUNT_CLOCK_SKEW_MS: String(-back * DAY) } });
    if (back === 2) {
      const res = await worker.request("POST", "/tenants", { headers: admin, json: { label: `stats-${crypto.randomUUID()}`, page_auto_create: true } });
      assert.equal(res.status, 201, res.text);
      tenant = res.json.tenant_id;
    }
    const seeded = await seedDay(worker, tenant, back);
    expectedVisitors.set(Math.floor((now - back * DAY) / DAY), seeded.visitors);
    sent += seeded.visits;
    await flushed(worker, tenant, sent);
    if (back > 0) await worker.close();
    else svc = worker;
  }
});
after(async () => {
  await svc?.close();
  rmSync(state, { recursive: true, force: true });
});

const iso = (ms) => new Date(ms).toISOString();
const today = () => Math.floor(Date.now() / DAY);

async function stats(query, headers = admin) {
  const res = await svc.request("GET", `/tenants/${tenant}/stats?${query}`, { headers });
  assert.equal(res.status, 200, res.text);
  return res;
}

/** The same figures, straight from the visit log. */
async function fromLog(from, to, page) {
  const where = `tenant_id = ?1 AND ts >= ?2 AND ts < ?3${page ? " AND page_id = ?4" : ""}`;
  const args = page ? [tenant, from, to, page] : [tenant, from, to];
  const q = (sql) => svc.db.prepare(sql).bind(...args).all().then((r) => r.results);
  const [totals] = await q(`SELECT COUNT(*) AS visits, COALESCE(SUM(counted), 0) AS counted, COALESCE(SUM(agent = 'bot'), 0) AS bots, COALESCE(SUM(is_unique), 0) AS uniques FROM visits WHERE ${where}`);
  const days = await q(`SELECT ts / ${DAY} AS day, COUNT(*) AS visits, SUM(counted) AS counted, SUM(agent = 'bot') AS bots, SUM(is_unique) AS uniques FROM visits WHERE ${where} GROUP BY day`);
  const top = async (column, only = "") =>
    Object.fromEntries((await q(`SELECT ${column} AS value, COUNT(*) AS visits FROM visits WHERE ${where}${only} GROUP BY value`)).map((r) => [r.value, r.visits]));
  return {
    totals,
    days: new Map(days.map((d) => [d.day, d])),
    // Referrers of counted visits: a bot's Referer is whatever it says.
    top: { pages: await top("page_id"), referrers: await top("referrer_host", " AND counted = 1"), countries: await top("country"), agents: await top("agent") },
  };
}

const asMap = (list) => Object.fromEntries(list.map((e) => [e.value, e.visits]));

describe("stats from rollups", () => {
  test("equal what the visit log says: totals, every day, top lists, site-wide visitors", async () => {
    const from = (today() - 2) * DAY;
    const to = (today() + 1) * DAY;
    const { json: s } = await stats(`from=${iso(from)}&to=${iso(to)}&limit=100`);
    const log = await fromLog(from, to);
    assert.ok(log.totals.visits > 150 && log.totals.bots > 0 && log.totals.counted < log.totals.visits, JSON.stringify(log.totals));
    const { visitors, visitors_estimated, ...totals } = s.totals;
    assert.deepEqual(totals, log.totals);
    assert.equal(visitors_estimated, false);
    assert.equal(s.series.length, 3);
    for (const bucket of s.series) {
      const day = Date.parse(bucket.start) / DAY;
      const d = log.days.get(day);
      assert.deepEqual([bucket.visits, bucket.counted, bucket.bots, bucket.uniques], [d.visits, d.counted, d.bots, d.uniques], bucket.start);
      // A visitor reading three pages is one.
      assert.equal(bucket.visitors, expectedVisitors.get(day), `site-wide visitors of ${bucket.start}`);
      assert.ok(bucket.visitors < bucket.uniques, "fewer than the per-page first visits");
    }
    assert.equal(visitors, [...expectedVisitors.values()].reduce((a, b) => a + b));
    assert.deepEqual(asMap(s.top.pages), log.top.pages);
    assert.deepEqual(asMap(s.top.referrers), log.top.referrers);
    assert.deepEqual(asMap(s.top.countries), log.top.countries);
    assert.deepEqual(asMap(s.top.agents), log.top.agents);
    for (const list of Object.values(s.top)) {
      const counts = list.map((e) => e.visits);
      assert.deepEqual(counts, [...counts].sort((a, b) => b - a), "largest first");
    }
  });

  test("page= narrows everything to one page; limit cuts the lists", async () => {
    const from = (today() - 2) * DAY;
    const to = (today() + 1) * DAY;
    const page = "/posts/a";
    const { json: s } = await stats(`from=${iso(from)}&to=${iso(to)}&page=${enc(page)}&limit=2`);
    const log = await fromLog(from, to, page);
    assert.equal(s.page_id, page);
    const { visitors, visitors_estimated, ...totals } = s.totals;
    assert.deepEqual(totals, log.totals);
    assert.equal(visitors, log.totals.uniques, "one page's visitors are its first visits");
    assert.deepEqual(s.top.pages, [{ value: page, visits: log.totals.visits, counted: log.totals.counted }]);
    assert.equal(s.top.referrers.length, 2);
    const sorted = Object.entries(log.top.referrers).sort((a, b) => b[1] - a[1]);
    assert.equal(s.top.referrers[0].visits, sorted[0][1]);
    for (const bucket of s.series) {
      const d = log.days.get(Date.parse(bucket.start) / DAY);
      assert.equal(bucket.visits, d?.visits ?? 0);
    }
  });

  test("hours of today, and the previous period's totals", async () => {
    const from = today() * DAY;
    const { json: s } = await stats(`from=${iso(from)}&granularity=hour`);
    const log = await fromLog(from, Date.now() + 3_600_000);
    assert.equal(s.granularity, "hour");
    assert.equal(s.series.reduce((n, b) => n + b.visits, 0), log.totals.visits);
    assert.ok(s.series.every((b) => b.visitors === null), "visitors are per day");
    const yesterday = await fromLog(from - DAY, from);
    const { json: day } = await stats(`from=${iso(from)}&to=${iso(from + DAY)}`);
    assert.equal(day.previous.from, iso(from - DAY));
    assert.equal(day.previous.visits, yesterday.totals.visits);
    assert.equal(day.previous.uniques, yesterday.totals.uniques);
    assert.equal(day.previous.visitors, expectedVisitors.get(today() - 1));
    assert.equal(day.totals.visits, log.totals.visits);
  });

  test("an empty tenant answers zeros, every bucket present", async () => {
    const t = (await svc.createTenant()).tenant_id;
    const res = await svc.request("GET", `/tenants/${t}/stats`, { headers: admin });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.series.length, 31);
    assert.ok(res.json.series.every((b) => b.visits === 0));
    assert.deepEqual(res.json.top, { pages: [], referrers: [], countries: [], agents: [] });
    assert.equal(res.json.totals.visits, 0);
    assert.equal(res.json.totals.visitors, 0, "no visits: no visitors");
    assert.equal(res.json.previous.visitors, 0, "the previous period has the key too");
    assert.ok(res.json.series.every((b) => b.visitors === 0));
  });

  test("deleting a page takes its visits out of the site's stats", async () => {
    const t = (await svc.request("POST", "/tenants", { headers: admin, json: { label: `del-${crypto.randomUUID()}`, page_auto_create: true } })).json.tenant_id;
    for (let i = 0; i < 12; i++) await visit(svc, t, i % 2 ? "/keep" : "/gone", i);
    await flushed(svc, t, 12);
    assert.equal((await svc.request("DELETE", `/tenants/${t}/pages/${enc("/gone")}`, { headers: admin })).status, 204);
    const s = (await svc.request("GET", `/tenants/${t}/stats?limit=100`, { headers: admin })).json;
    const raw = await svc.db.prepare("SELECT COUNT(*) AS n, SUM(counted) AS c FROM visits WHERE tenant_id = ?").bind(t).first();
    assert.equal(s.totals.visits, raw.n);
    assert.equal(s.totals.counted, raw.c);
    assert.deepEqual(s.top.pages.map((p) => p.value), ["/keep"]);
    assert.equal(s.top.agents.reduce((n, a) => n + a.visits, 0), raw.n);
    assert.equal(s.top.referrers.reduce((n, a) => n + a.visits, 0), raw.c, "referrers of counted visits");
  });
});

describe("what a stats request costs", () => {
  test("D1 rows read stay flat as visits grow tenfold", async () => {
    const t = (await svc.request("POST", "/tenants", { headers: admin, json: { label: `flat-${crypto.randomUUID()}`, page_auto_create: true } })).json.tenant_id;
    const seed = async (from, to) => {
      for (let i = from; i < to; i += 25) {
        await Promise.all(Array.from({ length: Math.min(25, to - i) }, (_, k) => visit(svc, t, PAGES[(i + k) % 4], 50_000 + ((i + k) % 400) + 400 * Math.floor((i + k) / 1600))));
      }
      await flushed(svc, t, to);
    };
    const cost = async () => {
      const res = await svc.request("GET", `/tenants/${t}/stats?from=${iso((today() - 89) * DAY)}&to=${iso((today() + 1) * DAY)}`, { headers: admin });
      assert.equal(res.status, 200, res.text);
      return { rows: Number(res.headers.get("x-d1-rows-read")), visits: res.json.totals.visits };
    };
    await seed(0, 160);
    const small = await cost();
    await seed(160, 1600);
    const large = await cost();
    assert.equal(small.visits, 160);
    assert.equal(large.visits, 1600);
    assert.ok(small.rows > 0, "D1 reports rows read");
    assert.ok(large.rows <= small.rows * 1.1, `rows read ${small.rows} → ${large.rows} for ×10 visits`);
  });
});

describe("what a visit costs the rollups", () => {
  test("a page's first visit of a day adds 4 series rows, 39 top-list rows and 1 visitor hash", async () => {
    const t = (await svc.request("POST", "/tenants", { headers: admin, json: { label: `one-${crypto.randomUUID()}`, page_auto_create: true } })).json.tenant_id;
    await svc.request("POST", `/tenants/${t}/pages/p/visit`, { headers: { "User-Agent": AGENTS.firefox, Referer: "https://a.example/" }, ip: clientIp(7), cf: { country: "DE" } });
    await flushed(svc, t, 1);
    const count = async (table) => (await svc.db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE tenant_id = ?`).bind(t).first()).n;
    // Series: the page's and the tenant's hour and day. Top lists: the tenant's page,
    // referrer, country and agent at 9 levels, the page's own referrer, country, agent.
    assert.deepEqual([await count("stats_series"), await count("stats_top"), await count("stats_visitors")], [4, 4 * 9 + 3, 1]);
  });
});

describe("site-wide visitors", () => {
  test("exact for 2,000 visitors reading two pages each", async () => {
    const t = (await svc.request("POST", "/tenants", { headers: admin, json: { label: `many-${crypto.randomUUID()}`, page_auto_create: true } })).json.tenant_id;
    const jobs = [];
    for (let i = 0; i < 2000; i++) for (const page of ["/x", i % 2 ? "/y" : "/z"]) jobs.push([page, i]);
    for (let k = 0; k < jobs.length; k += 50) {
      await Promise.all(jobs.slice(k, k + 50).map(([page, i]) => svc.request("POST", `/tenants/${t}/pages/${enc(page)}/visit`, { headers: { "User-Agent": AGENTS.firefox }, ip: clientIp(100_000 + i) })));
    }
    await flushed(svc, t, 4000);
    const s = (await svc.request("GET", `/tenants/${t}/stats?from=${iso(today() * DAY)}`, { headers: admin })).json;
    assert.equal(s.totals.uniques, 4000, "visitor-days per page");
    assert.equal(s.totals.visitors, 2000, "each visitor once");
    assert.equal(s.totals.visitors_estimated, false);
  });

  test("past STATS_EXACT_VISITORS a day is sampled and estimated, and keeps that many hashes at most", async () => {
    const small = await startWorker({ vars: { FLUSH_INTERVAL_MS: "100", STATS_EXACT_VISITORS: "100" } });
    try {
      const t = (await small.request("POST", "/tenants", { headers: admin, json: { label: "sampled", page_auto_create: true } })).json.tenant_id;
      for (let k = 0; k < 1200; k += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => small.request("POST", `/tenants/${t}/pages/${(k + j) % 3}/visit`, { headers: { "User-Agent": AGENTS.chrome }, ip: clientIp(k + j) })));
      }
      await flushed(small, t, 1200);
      const s = (await small.request("GET", `/tenants/${t}/stats?from=${iso(today() * DAY)}`, { headers: admin })).json;
      assert.equal(s.totals.visitors_estimated, true);
      // About 100 kept hashes: a standard error near 10 %; half is five of them.
      assert.ok(Math.abs(s.totals.visitors - 1200) / 1200 < 0.5, `estimate ${s.totals.visitors} for 1200`);
      const one = (await small.request("GET", `/tenants/${t}/stats?from=${iso(today() * DAY)}&page=0`, { headers: admin })).json;
      assert.equal(one.totals.visitors_estimated, false, "a page's own visitors are exact");
      assert.equal(one.totals.visitors, 400);
      const kept = await small.db.prepare("SELECT COUNT(*) AS n FROM stats_visitors WHERE tenant_id = ?").bind(t).first();
      assert.ok(kept.n <= 100 + 1200 / 3, `kept ${kept.n}`);
    } finally {
      await small.close();
    }
  });

  test("hashes of past days are gone; no address or agent is stored", async () => {
    const { results } = await svc.db.prepare("SELECT DISTINCT day FROM stats_visitors WHERE tenant_id = ?").bind(tenant).all();
    assert.ok(results.every((r) => r.day >= today() - 1), JSON.stringify(results));
    // A row is the tenant, the day and a number: nothing else about the visitor.
    const row = await svc.db.prepare("SELECT * FROM stats_visitors WHERE tenant_id = ? LIMIT 1").bind(tenant).first();
    assert.deepEqual(Object.keys(row).sort(), ["day", "hash", "tenant_id"]);
    assert.ok(Number.isSafeInteger(row.hash) && row.hash >= 0 && row.hash < 2 ** 52);
  });
});

describe("who may read stats", () => {
  const key = (scopes, t = tenant) => svc.keyWith(t, scopes);

  test("tenant:read reads stats and nothing else; counter:read is refused; no key is 401", async () => {
    const share = await key(["tenant:read"]);
    assert.equal((await svc.request("GET", `/tenants/${tenant}/stats`, { headers: share })).status, 200);
    assert.equal((await svc.request("GET", `/tenants/${tenant}/stats`, { headers: { Authorization: share["X-API-Key"].replace(/^/, "Bearer ") } })).status, 200);
    const counter = await svc.createCounter(tenant);
    for (const [method, path, json] of [
      ["GET", `/tenants/${tenant}/counters`],
      ["POST", `/tenants/${tenant}`, {}],
      ["GET", `/v2/tenants/${tenant}/counters/${counter.counter_id}`],
      ["GET", `/v2/tenants/${tenant}/counters/${counter.counter_id}/operations`],
      ["POST", `/v2/tenants/${tenant}/counters/${counter.counter_id}/inc`, {}],
      ["GET", `/v2/tenants/${tenant}/credentials`],
      ["DELETE", `/tenants/${tenant}/pages/${enc("/about")}`],
    ]) {
      const res = await svc.request(method, path, { headers: share, json });
      assert.equal(res.status, 403, `${method} ${path}: ${res.text}`);
    }
    const other = await svc.createTenant();
    assert.equal((await svc.request("GET", `/tenants/${other.tenant_id}/stats`, { headers: share })).status, 403);
    const reader = await key(["counter:read"]);
    const refused = await svc.request("GET", `/tenants/${tenant}/stats`, { headers: reader });
    assert.equal(refused.status, 403);
    assert.equal(errorCode(refused), "FORBIDDEN");
    assert.equal((await svc.request("GET", `/tenants/${tenant}/stats`)).status, 401);
    assert.equal((await svc.request("GET", `/tenants/${tenant}/stats`, { headers: { "X-API-Key": "ck_nope.nope" } })).status, 401);
  });

  test("bad input is a JSON 400 or 404", async () => {
    for (const query of ["limit=0", "limit=101", "limit=x", "granularity=week", "from=2020-01-01&to=2023-01-01", "from=nope", "page=", "from=2026-01-02&to=2026-01-01", "limit=1&limit=2"]) {
      const res = await svc.request("GET", `/tenants/${tenant}/stats?${query}`, { headers: admin });
      assert.equal(res.status, 400, `${query}: ${res.text}`);
      assert.equal(errorCode(res), "INVALID_PARAMETER", query);
    }
    const missing = await svc.request("GET", `/tenants/01900000-0000-7000-8000-000000000000/stats`, { headers: admin });
    assert.equal(missing.status, 404);
    assert.equal(errorCode(missing), "TENANT_NOT_FOUND");
    assert.equal((await svc.request("POST", `/tenants/${tenant}/stats`, { headers: admin })).status, 405);
  });
});

describe("upgrading", () => {
  test("the migration rolls up the visit log that was there before it", async () => {
    const fresh = await startWorker({ vars: { FLUSH_INTERVAL_MS: "100" } });
    try {
      const t = (await fresh.request("POST", "/tenants", { headers: admin, json: { label: "old", page_auto_create: true } })).json.tenant_id;
      // A log written before rollups existed: rows in D1, a page row, a day retention moved.
      const base = (today() - 3) * DAY;
      await fresh.db.prepare("INSERT INTO pages (tenant_id, page_id, count, version, created_ms, updated_ms) VALUES (?1, '/old', 5, 5, ?2, ?2), (?1, '/new', 1, 1, ?2, ?2)").bind(t, base).run();
      const rows = [
        ["/old", 1, base + 1000, "a.example", "DE", "browser", 1, 1],
        ["/old", 2, base + 2000, null, "DE", "bot", 0, 0],
        ["/old", 3, base + DAY, "b.example", null, "browser", 1, 1],
        ["/old", 4, base + DAY + 3_600_000, "a.example", "FR", "browser", 1, 0],
        ["/old", 5, base + 2 * DAY, null, null, "other", 1, 1],
        ["/new", 1, base + 2 * DAY, "a.example", "US", "browser", 1, 1],
      ];
      for (const r of rows) {
        await fresh.db.prepare("INSERT INTO visits (tenant_id, page_id, seq, ts, referrer_host, country, agent, counted, is_unique) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)").bind(t, ...r).run();
      }
      await fresh.db.prepare("INSERT INTO visit_days (tenant_id, page_id, day, visits, uniques) VALUES (?, '/old', ?, 7, 4)").bind(t, today() - 5).run();
      const sql = readFileSync(join(root, "migrations", "0006_stats_rollups.sql"), "utf8");
      const backfill = unstable_splitSqlQuery(sql.slice(sql.indexOf("-- Backfill")));
      await fresh.db.batch(backfill.map((s) => fresh.db.prepare(s)));
      const s = (await fresh.request("GET", `/tenants/${t}/stats?from=${iso((today() - 6) * DAY)}&to=${iso(today() * DAY)}&limit=100`, { headers: admin })).json;
      assert.deepEqual({ ...s.totals, visitors: undefined }, { visits: 13, counted: 12, bots: 1, uniques: 8, visitors: undefined, visitors_estimated: false });
      assert.equal(s.totals.visitors, null, "site-wide visitors of past days are not known");
      assert.deepEqual(asMap(s.top.referrers), { "a.example": 3, "b.example": 1, null: 1 }, "of counted visits");
      assert.deepEqual(asMap(s.top.pages), { "/old": 5, "/new": 1 });
      const rolled = await fresh.db.prepare("SELECT page_id, rolled_seq FROM pages WHERE tenant_id = ? ORDER BY page_id").bind(t).all();
      assert.deepEqual(rolled.results, [{ page_id: "/new", rolled_seq: 1 }, { page_id: "/old", rolled_seq: 5 }]);
      // The next visit rolls up only itself.
      await visit(fresh, t, "/old", 1);
      await flushed(fresh, t, 7);
      const after = (await fresh.request("GET", `/tenants/${t}/stats?from=${iso((today() - 6) * DAY)}&limit=100`, { headers: admin })).json;
      assert.equal(after.totals.visits, 14);
    } finally {
      await fresh.close();
    }
  });
});
