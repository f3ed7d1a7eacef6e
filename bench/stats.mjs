// The stats request on a big site: 1,000,000 visits over 90 days across 1,000 pages
// (every page on every day; 50 referrer hosts, 78 countries, bots among them), rolled up
// by the migration's backfill — the same rules a flush applies. Times the stats request
// for 7, 30 and 90 days through the Worker and reports the D1 rows it read, beside the
// reference measured in the same run: the same totals and top lists asked of the raw
// visit log, as a service without rollups would.
//
// Alone: `node bench/stats.mjs` (after a build; BENCH_STATS_VISITS=50000 for a quick
// look at a smaller site). `npm run bench` runs it too.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { unstable_splitSqlQuery } from "wrangler";
import { migrate, root } from "../tests/helpers/worker.mjs";

const DAY = 86_400_000;
export const VISITS = Number(process.env.BENCH_STATS_VISITS ?? 1_000_000);
const PAGES = 1_000;
const DAYS = 90;
const REPEATS = 5;

/** Seeds and rolls up the site; answers the tenant id. */
async function seed(url, db, admin) {
  await migrate(db);
  const res = await fetch(`${url}/tenants`, { method: "POST", headers: { "X-API-Key": admin }, body: JSON.stringify({ label: "stats-bench" }) });
  const tenant = (await res.json()).tenant_id;
  const first = Math.floor(Date.now() / DAY) - (DAYS - 1);
  // Page p gets visits i = p + 1000k; its day is (11k + p) mod 90, so every page has
  // visits on every day of the range.
  await db
    .prepare(
      `WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ?2)
       INSERT INTO visits (tenant_id, page_id, seq, ts, referrer_host, country, agent, counted, is_unique)
       SELECT ?1, '/page/' || (i % ${PAGES}), i / ${PAGES} + 1,
              (?3 + ((i / ${PAGES}) * 11 + i % ${PAGES}) % ${DAYS}) * ${DAY} + (i * 7919) % ${DAY},
              CASE WHEN i % 5 = 0 THEN NULL ELSE 'ref' || (i % 50) || '.example' END,
              char(65 + i % 26, 65 + (i / 26) % 3 + 10),
              CASE i % 10 WHEN 0 THEN 'bot' WHEN 1 THEN 'other' ELSE 'browser' END,
              i % 10 != 0, i % 10 != 0 AND i % 3 = 0
       FROM s`,
    )
    .bind(tenant, VISITS, first)
    .run();
  await db
    .prepare(
      `WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ${PAGES})
       INSERT INTO pages (tenant_id, page_id, count, version, created_ms, updated_ms)
       SELECT ?1, '/page/' || i, ${VISITS / PAGES}, ${VISITS / PAGES}, ?2, ?2 FROM s`,
    )
    .bind(tenant, first * DAY)
    .run();
  const sql = readFileSync(join(root, "migrations", "0006_stats_rollups.sql"), "utf8");
  const backfill = unstable_splitSqlQuery(sql.slice(sql.indexOf("-- Backfill")));
  const started = Date.now();
  for (const statement of backfill) await db.prepare(statement).run();
  return { tenant, rollupSeconds: (Date.now() - started) / 1000 };
}

/** The reference: the same figures straight from the visit log. */
async function fromLog(db, tenant, days) {
  const to = (Math.floor(Date.now() / DAY) + 1) * DAY;
  const from = to - days * DAY;
  const started = performance.now();
  const statements = [
    "SELECT COUNT(*), SUM(counted), SUM(agent = 'bot'), SUM(is_unique) FROM visits WHERE tenant_id = ?1 AND ts >= ?2 AND ts < ?3",
    `SELECT ts / ${DAY} AS d, COUNT(*), SUM(counted) FROM visits WHERE tenant_id = ?1 AND ts >= ?2 AND ts < ?3 GROUP BY d`,
    ...["page_id", "referrer_host", "country", "agent"].map((c) => `SELECT ${c}, COUNT(*) AS n FROM visits WHERE tenant_id = ?1 AND ts >= ?2 AND ts < ?3 GROUP BY 1 ORDER BY n DESC LIMIT 10`),
  ];
  const answers = await db.batch(statements.map((s) => db.prepare(s).bind(tenant, from, to)));
  return { ms: performance.now() - started, rows_read: answers.reduce((n, a) => n + (a.meta.rows_read ?? 0), 0) };
}

async function timeStats(url, admin, tenant, days) {
  const to = (Math.floor(Date.now() / DAY) + 1) * DAY;
  const query = `from=${new Date(to - days * DAY).toISOString()}&to=${new Date(to).toISOString()}&granularity=day&limit=10`;
  const times = [];
  let rows = 0;
  let visits = 0;
  for (let i = 0; i <= REPEATS; i++) {
    const started = performance.now();
    const res = await fetch(`${url}/tenants/${tenant}/stats?${query}`, { headers: { "X-API-Key": admin } });
    const body = await res.json();
    if (!res.ok) throw new Error(`stats: ${res.status} ${JSON.stringify(body)}`);
    if (i > 0) times.push(performance.now() - started); // the first warms the isolate
    rows = Number(res.headers.get("x-d1-rows-read"));
    visits = body.totals.visits;
  }
  times.sort((a, b) => a - b);
  return { median_ms: +times[Math.floor(times.length / 2)].toFixed(1), rows_read: rows, visits };
}

/** Seeds, measures, prints; answers the results. */
export async function benchStats(url, mf, admin) {
  const db = await mf.getD1Database("DB");
  const { tenant, rollupSeconds } = await seed(url, db, admin);
  console.log(`  stats: ${VISITS.toLocaleString("en")} visits, ${PAGES} pages, ${DAYS} days seeded; backfill rolled them up in ${rollupSeconds.toFixed(1)} s`);
  const out = { visits: VISITS, pages: PAGES, days: DAYS, backfill_seconds: +rollupSeconds.toFixed(1), ranges: {} };
  for (const days of [7, 30, 90]) {
    const stats = await timeStats(url, admin, tenant, days);
    const log = await fromLog(db, tenant, days);
    out.ranges[days] = { ...stats, log_scan_ms: +log.ms.toFixed(1), log_scan_rows_read: log.rows_read };
    console.log(
      `  stats ${String(days).padStart(2)} days: ${stats.median_ms} ms, ${stats.rows_read.toLocaleString("en")} D1 rows read (${stats.visits.toLocaleString("en")} visits)` +
        ` · the log scanned instead: ${log.ms.toFixed(1)} ms, ${log.rows_read.toLocaleString("en")} rows read`,
    );
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { startWorker } = await import("../tests/helpers/worker.mjs");
  const svc = await startWorker({ vars: { ADMIN_API_KEY: "bench-admin-key" } });
  try {
    console.log(JSON.stringify(await benchStats(new URL(svc.url).origin, svc.mf, "bench-admin-key"), null, 1));
  } finally {
    await svc.close();
  }
}
