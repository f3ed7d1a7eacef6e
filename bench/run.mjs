// `npm run bench`: measures edgecount's request paths against the runtime's ceiling, the
// one-object-hop architecture floor and the JavaScript counter a user would otherwise
// write — in one run, on one machine, at one connection count — and prints a table.
// edgecount runs as deployed (wrangler.toml's defaults: budgets and the read brake on,
// with limits raised out of reach, logging as shipped) and again with limits off, so the
// cost of limits is a ratio measured in the same run. Retention is timed on 2,000,000
// expired rows, and the stats request on a site of 1,000,000 visits.
// Every Worker runs in workerd through Miniflare with a direct socket (no entry-Worker or
// proxy hop), state persisted to disk as in `wrangler dev`. Load comes from wrk, bounded
// in connections and seconds, against 127.0.0.1 only. Results: bench/results.json.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { build } from "../scripts/build.mjs";
import { buildFixture, d1WritesCounter, edgecountOptions, ensureWrk, freePort, LIMIT_KIB, uploadSizes, wrk } from "./lib.mjs";
import { ANNEX, migrate, root } from "../tests/helpers/worker.mjs";
import { benchStats } from "./stats.mjs";
import { benchTransfer, VISITS as TRANSFER_VISITS } from "./transfer.mjs";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const SPREAD = 1000;
const ADMIN = "bench-admin-key";
const FLUSH_INTERVAL_MS = 2000;

ensureWrk();
build();
const floorScript = buildFixture(join(root, "bench", "fixtures", "floor"));

const state = mkdtempSync(join(tmpdir(), "edgecount-bench-"));
const results = { date: new Date().toISOString(), machine: `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}`, seconds: SECONDS, connections: CONNECTIONS, runs: {} };

/** Starts a Worker (or edgecount's two: the first one answers) in workerd with a direct
 * socket; answers {url, mf, stop}. */
async function start(name, options) {
  const port = await freePort();
  const [first, ...others] = Array.isArray(options) ? options : [options];
  const mf = new Miniflare({
    workers: [{ ...first, unsafeDirectSockets: [{ host: "127.0.0.1", port }] }, ...others],
    durableObjectsPersist: join(state, name, "do"),
    d1Persist: join(state, name, "d1"),
    kvPersist: join(state, name, "kv"),
    handleRuntimeStdio: (out, err) => {
      out.resume();
      err.resume();
    },
  });
  await mf.ready;
  return { url: `http://127.0.0.1:${port}`, mf, stop: () => mf.dispose() };
}

async function serve(name, options, work) {
  const { url, mf, stop } = await start(name, options);
  try {
    return await work(url, mf);
  } finally {
    await stop();
  }
}

async function measure(label, url, opts = {}) {
  await wrk(url, { ...opts, seconds: 1, connections: CONNECTIONS }); // warm-up: JIT, objects, storage
  const run = await wrk(url, { ...opts, seconds: SECONDS, connections: CONNECTIONS });
  results.runs[label] = run;
  console.log(`  ${label.padEnd(26)} ${run.rps.toFixed(0).padStart(7)} req/s  p50 ${run.p50_ms.toFixed(2)} ms  p99 ${run.p99_ms.toFixed(2)} ms${run.errors ? `  (${run.errors} errors)` : ""}`);
  return run;
}

/** Two runs of the same path, in the order given; the row keeps their mean rate. */
function average(label, first, second) {
  const mean = (k) => (first[k] + second[k]) / 2;
  results.runs[label] = { rps: mean("rps"), p50_ms: mean("p50_ms"), p99_ms: mean("p99_ms"), requests: first.requests + second.requests, ok_requests: first.ok_requests + second.ok_requests, errors: first.errors + second.errors };
}

console.log(`\nedgecount benchmark: ${SECONDS} s per run, ${CONNECTIONS} connections, direct sockets\n`);

await serve("ceiling", { modules: true, scriptPath: join(root, "bench", "fixtures", "ceiling.mjs"), compatibilityDate: "2026-04-20" }, (url) => measure("ceiling (JS no-op)", `${url}/`));

await serve(
  "floor",
  {
    modules: true,
    scriptPath: floorScript,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: "2026-04-20",
    durableObjects: { FLOOR: { className: "Floor", useSQLite: true } },
  },
  async (url) => {
    await measure("floor (Rust→DO no-op)", `${url}/hot`);
    const paths = Array.from({ length: SPREAD }, (_, i) => `/object-${i}`);
    await measure("floor, 1,000 objects", `${url}/`, { paths });
  },
);

// The reference runs before and after edgecount's paths; its row is the mean.
const reference = await start("reference", {
  modules: true,
  scriptPath: join(root, "bench", "fixtures", "js-counter.mjs"),
  compatibilityDate: "2026-04-20",
  durableObjects: { JS_COUNTER: { className: "JsCounter", useSQLite: true } },
});
const referenceBefore = await measure("reference (JS DO) 1", `${reference.url}/hot`, { method: "POST" });

const UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
// As deployed: budgets and the read brake on, raised so that wrk (one client address)
// never reaches them; logging as wrangler.toml ships it.
const base = { ADMIN_API_KEY: ADMIN, FLUSH_INTERVAL_MS: String(FLUSH_INTERVAL_MS) };
const unreachable = { RATE_LIMIT_POST: "1000000000", RATE_LIMIT_PROXY: "1000000000" };
const deployed = () =>
  edgecountOptions({ ...base, ...unreachable }).map((options) => {
    const raised = Object.fromEntries(
      Object.entries(options.ratelimits).map(([name, brake]) => [name, { ...brake, simple: { ...brake.simple, limit: 1_000_000_000 } }]),
    );
    return { ...options, ratelimits: raised };
  });
// Limits off: no budgets, no brake bindings.
const unlimited = () => edgecountOptions({ ...base, RATE_LIMIT_WINDOW_SECONDS: "0" }).map((options) => ({ ...options, ratelimits: {} }));

/** Migrates, then creates a tenant (pages created on visit), a hot counter and `spread` more. */
async function setUp(url, mf, spread = 0) {
  const db = await mf.getD1Database("DB");
  await migrate(db);
  const call = async (method, path, body) => {
    const res = await fetch(url + path, { method, headers: { "X-API-Key": ADMIN }, body: body && JSON.stringify(body) });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const { tenant_id } = await call("POST", "/tenants", { label: "bench", page_auto_create: true });
  const hot = await call("POST", `/tenants/${tenant_id}`, { label: "hot", max_delta: 1 });
  const counters = [];
  for (let i = 0; i < spread; i++) counters.push((await call("POST", `/tenants/${tenant_id}`, {})).counter_id);
  return { url, db, call, tenant: tenant_id, hotPath: `/tenants/${tenant_id}/${hot.counter_id}`, hotId: hot.counter_id, counters };
}

/**
 * What the ledger costs on disk: the two largest counter object databases (the hot
 * counter and the keyed one), their SQLite files with WAL, per operation they hold.
 */
function ledgerCost(dir, operations) {
  const files = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".sqlite")) files.push({ p, bytes: statSync(p).size + (existsSync(`${p}-wal`) ? statSync(`${p}-wal`).size : 0) });
    }
  };
  walk(dir);
  files.sort((a, b) => b.bytes - a.bytes);
  const total = operations.unkeyed + operations.keyed;
  const bytes = (files[0]?.bytes ?? 0) + (files[1]?.bytes ?? 0);
  const perOp = bytes / total;
  return { operations: total, bytes, bytes_per_operation: Math.round(perOp), ten_million_operations_gb: +((perOp * 1e7) / 1e9).toFixed(2) };
}

// As deployed and with limits off, in two runtimes side by side. Each path runs on both
// twice, in the order deployed, off, off, deployed, so that drift over the run touches
// both alike; a row is the mean of its two runs.
{
  const a = await start("edgecount", deployed());
  const b = await start("edgecount-unlimited", unlimited());
  try {
    const d = await setUp(a.url, a.mf);
    const o = await setUp(b.url, b.mf);
    const writes = await d1WritesCounter(d.db);
    const settle = () => new Promise((r) => setTimeout(r, FLUSH_INTERVAL_MS + 500));
    const before = (await d.call("GET", d.hotPath)).value;
    await settle();
    const writesBefore = await writes(d.hotId);
    const windowStart = Date.now();
    const hotRun = await measure("deployed inc (hot) 1", `${d.url}${d.hotPath}/inc`, { method: "POST" });
    const increments = (await d.call("GET", d.hotPath)).value - before;
    await settle();
    const d1Writes = (await writes(d.hotId)) - writesBefore;
    // Every interval that overlapped the load, and the one that flushed its tail.
    const intervals = Math.ceil((Date.now() - windowStart) / FLUSH_INTERVAL_MS);
    const d1Value = (await d.db.prepare("SELECT value FROM counters WHERE id = ?").bind(d.hotId).first()).value;
    results.hot = {
      increments,
      acknowledged_at_least: hotRun.ok_requests,
      d1_writes: d1Writes,
      d1_writes_per_1000_increments: +((d1Writes * 1000) / Math.max(1, increments)).toFixed(3),
      flush_intervals: intervals,
      d1_writes_per_flush_interval: +(d1Writes / intervals).toFixed(2),
      d1_matches_object: d1Value === (await d.call("GET", d.hotPath)).value,
    };
    const path = {
      "inc (hot)": (x) => [`${x.url}${x.hotPath}/inc`, { method: "POST" }],
      GET: (x) => [`${x.url}${x.hotPath}`],
      visit: (x) => [`${x.url}/tenants/${x.tenant}/pages/%2Fposts%2Fhello/visit`, { method: "POST", headers: { "User-Agent": UA } }],
      badge: (x) => [`${x.url}/tenants/${x.tenant}/pages/%2Freadme/badge.svg?inc=1`, { headers: { "User-Agent": UA } }],
    };
    for (const [name, target] of Object.entries(path)) {
      const d1 = name === "inc (hot)" ? hotRun : await measure(`deployed ${name} 1`, ...target(d));
      const o1 = await measure(`limits off ${name} 1`, ...target(o));
      const o2 = await measure(`limits off ${name} 2`, ...target(o));
      const d2 = await measure(`deployed ${name} 2`, ...target(d));
      average(`deployed ${name}`, d1, d2);
      average(`limits off ${name}`, o1, o2);
    }
    results.visits_logged = (await d.db.prepare("SELECT COUNT(*) AS n FROM visits").first()).n;

    // V2: every increment with its own Idempotency-Key (looked up in the ledger, then
    // stored as the operation's id), on a counter of its own, beside unkeyed ones.
    const keyed = await d.call("POST", `/tenants/${d.tenant}`, { label: "keyed", max_delta: 1 });
    const keyedPath = `/v2/tenants/${d.tenant}/counters/${keyed.counter_id}/inc`;
    const v2 = { method: "POST", headers: { "X-API-Key": ADMIN }, idempotencyKeys: true };
    const k1 = await measure("deployed V2 keyed inc 1", `${d.url}${keyedPath}`, v2);
    const h3 = await measure("deployed inc (hot) 3", `${d.url}${d.hotPath}/inc`, { method: "POST" });
    const k2 = await measure("deployed V2 keyed inc 2", `${d.url}${keyedPath}`, v2);
    average("deployed V2 keyed inc", k1, k2);
    results.runs["deployed inc (hot), beside V2"] = h3;
    results.ledger = ledgerCost(join(state, "edgecount", "do"), {
      unkeyed: (await d.call("GET", d.hotPath)).value + 1,
      keyed: (await d.call("GET", `/tenants/${d.tenant}/${keyed.counter_id}`)).value + 1,
    });
  } finally {
    await a.stop();
    await b.stop();
  }
}

average("reference (JS DO)", referenceBefore, await measure("reference (JS DO) 2", `${reference.url}/hot`, { method: "POST" }));
await reference.stop();

await serve("edgecount-spread", deployed(), async (url, mf) => {
  const { tenant, counters } = await setUp(url, mf, SPREAD);
  await measure("deployed inc (1,000)", `${url}/`, { method: "POST", paths: counters.map((c) => `/tenants/${tenant}/${c}/inc`) });
});

// Every request with its own log line (REQUEST_LOG=all), to show what a line costs.
const logged = deployed();
logged.bindings = { ...logged.bindings, REQUEST_LOG: "all" };
await serve("edgecount-logged", logged, async (url, mf) => {
  const { hotPath } = await setUp(url, mf);
  await measure("inc (hot), a line each", `${url}${hotPath}/inc`, { method: "POST" });
});

// Retention of a busy deployment: 2,000,000 expired rows over 200 pages, one run.
await serve("edgecount-retention", edgecountOptions(base), async (url, mf) => {
  const db = await mf.getD1Database("DB");
  await migrate(db);
  const day = Math.floor(Date.now() / 86_400_000) - 500;
  const ROWS = 2_000_000;
  await db
    .prepare(
      `WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ?1)
       INSERT INTO visits (tenant_id, page_id, seq, ts, referrer_host, country, agent, counted, is_unique)
       SELECT 'bench', 'page-' || (i % 200), i / 200 + 1, (?2 + (i / 200) % 30) * 86400000 + i % 86400000, 'news.example', 'DE', 'browser', 1, i % 2 FROM s`,
    )
    .bind(ROWS, day)
    .run();
  const started = Date.now();
  await (await mf.getWorker(ANNEX)).scheduled({ cron: "17 3 * * *" });
  const seconds = (Date.now() - started) / 1000;
  const left = (await db.prepare("SELECT COUNT(*) AS n FROM visits").first()).n;
  const totals = await db.prepare("SELECT SUM(visits) AS visits, SUM(uniques) AS uniques FROM visit_days").first();
  results.retention = { rows: ROWS, seconds: +seconds.toFixed(1), rows_per_second: Math.round(ROWS / seconds), left, totals_exact: totals.visits === ROWS && totals.uniques === ROWS / 2 };
  console.log(`  retention: ${ROWS.toLocaleString("en")} expired rows rolled up in ${seconds.toFixed(1)} s (${left} left; totals exact: ${results.retention.totals_exact})`);
});

// The stats request on a big site: 1,000,000 visits over 90 days across 1,000 pages,
// beside the same figures asked of the raw visit log (bench/stats.mjs).
await serve("edgecount-stats", edgecountOptions(base), async (url, mf) => {
  results.stats = await benchStats(url, mf, ADMIN);
});

// Export and import of 1,000,000 visit rows through the Worker and the CLI, beside D1
// alone (bench/transfer.mjs).
results.transfer = await benchTransfer();

results.bundle = uploadSizes();
rmSync(state, { recursive: true, force: true });

const r = results.runs;
const ratio = (a, b) => +(r[a].rps / r[b].rps).toFixed(2);
results.ratios = {
  deployed_hot_vs_reference: ratio("deployed inc (hot)", "reference (JS DO)"),
  deployed_visit_vs_reference: ratio("deployed visit", "reference (JS DO)"),
  deployed_badge_vs_reference: ratio("deployed badge", "reference (JS DO)"),
  deployed_hot_vs_limits_off: ratio("deployed inc (hot)", "limits off inc (hot)"),
  deployed_get_vs_limits_off: ratio("deployed GET", "limits off GET"),
  deployed_visit_vs_limits_off: ratio("deployed visit", "limits off visit"),
  deployed_badge_vs_limits_off: ratio("deployed badge", "limits off badge"),
  deployed_hot_vs_floor: ratio("deployed inc (hot)", "floor (Rust→DO no-op)"),
  deployed_get_vs_floor: ratio("deployed GET", "floor (Rust→DO no-op)"),
  a_line_each_vs_deployed_hot: ratio("inc (hot), a line each", "deployed inc (hot)"),
  v2_keyed_vs_unkeyed_hot: ratio("deployed V2 keyed inc", "deployed inc (hot), beside V2"),
  spread_vs_hot: ratio("deployed inc (1,000)", "deployed inc (hot)"),
  floor_vs_ceiling: ratio("floor (Rust→DO no-op)", "ceiling (JS no-op)"),
  floor_spread_vs_floor_hot: ratio("floor, 1,000 objects", "floor (Rust→DO no-op)"),
};
const within10 = (v) => v >= 0.9;
const targets = [
  ["deployed hot inc ≥ 1.5 × JS reference", results.ratios.deployed_hot_vs_reference >= 1.5],
  ["deployed visit ≥ 1.0 × JS reference", results.ratios.deployed_visit_vs_reference >= 1.0],
  ["deployed hot inc within 10 % of limits off", within10(results.ratios.deployed_hot_vs_limits_off)],
  ["deployed visit within 10 % of limits off", within10(results.ratios.deployed_visit_vs_limits_off)],
  ["≤ 1 D1 write per flush interval", results.hot.d1_writes_per_flush_interval <= 1],
  ["retention ≥ 2,000,000 rows in one run", results.retention.left === 0 && results.retention.totals_exact],
  [`edge Worker gzip bundle ≤ ${LIMIT_KIB} KiB (CI's limit)`, results.bundle.edge.gzip_kib <= LIMIT_KIB],
  [`annex Worker gzip bundle ≤ ${LIMIT_KIB} KiB (CI's limit)`, results.bundle.annex.gzip_kib <= LIMIT_KIB],
  ["V2 keyed inc within 20 % of unkeyed", results.ratios.v2_keyed_vs_unkeyed_hot >= 0.8],
  ["stats for 90 days under 250 ms locally", results.stats.ranges[90].median_ms < 250],
  ["stats for 90 days under 20,000 D1 rows read", results.stats.ranges[90].rows_read < 20_000],
  ["export ≥ 50,000 rows/s (1,000,000 visits)", results.transfer[TRANSFER_VISITS].export_rows_per_second >= 50_000],
  ["import ≥ 20,000 rows/s (1,000,000 visits)", results.transfer[TRANSFER_VISITS].import_rows_per_second >= 20_000],
  // Node's heap high-water moves with garbage collection by about ±10 % between runs.
  ["CLI memory flat (1,000,000 vs 100,000 visits, within 25 %)", results.transfer[TRANSFER_VISITS].import_cli_peak_mib <= 1.25 * results.transfer[TRANSFER_VISITS / 10].import_cli_peak_mib],
];
results.targets = Object.fromEntries(targets);

console.log(`\nD1 during the hot run: ${results.hot.d1_writes} writes for ${results.hot.increments} increments over ${results.hot.flush_intervals} flush intervals of ${FLUSH_INTERVAL_MS} ms (${results.hot.d1_writes_per_1000_increments} per 1,000 increments; ${results.hot.d1_writes_per_flush_interval} per interval); D1 equals the object: ${results.hot.d1_matches_object}`);
for (const [worker, size] of Object.entries(results.bundle)) console.log(`Bundle, ${worker} Worker (wrangler deploy --dry-run): ${size.upload_kib} KiB, gzip ${size.gzip_kib} KiB`);
console.log(`Ledger: ${results.ledger.bytes} bytes on disk for ${results.ledger.operations} operations (${results.ledger.bytes_per_operation} bytes each; 10 million operations ≈ ${results.ledger.ten_million_operations_gb} GB in one object)`);
console.log("\n| ratio | value |\n|---|---|");
for (const [k, v] of Object.entries(results.ratios)) console.log(`| ${k} | ${v} |`);
console.log("\n| target | met |\n|---|---|");
for (const [k, v] of Object.entries(results.targets)) console.log(`| ${k} | ${v ? "yes" : "no"} |`);
writeFileSync(join(root, "bench", "results.json"), JSON.stringify(results, null, 2) + "\n");
console.log("\nwrote bench/results.json");
