// `npm run bench`: measures edgecount's request paths against the runtime's ceiling, the
// one-object-hop architecture floor and the JavaScript counter a user would otherwise
// write — in one run, on one machine, at one connection count — and prints a table.
// Every Worker runs in workerd through Miniflare with a direct socket (no entry-Worker or
// proxy hop), state persisted to disk as in `wrangler dev`. Load comes from wrk, bounded
// in connections and seconds, against 127.0.0.1 only. Results: bench/results.json.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { build } from "../scripts/build.mjs";
import { buildFixture, d1WritesCounter, edgecountOptions, ensureWrk, freePort, uploadSize, wrk } from "./lib.mjs";
import { migrate, root } from "../tests/helpers/worker.mjs";

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

async function serve(name, options, work) {
  const port = await freePort();
  const mf = new Miniflare({
    ...options,
    unsafeDirectSockets: [{ host: "127.0.0.1", port }],
    durableObjectsPersist: join(state, name, "do"),
    d1Persist: join(state, name, "d1"),
    kvPersist: join(state, name, "kv"),
    handleRuntimeStdio: (out, err) => {
      out.resume();
      err.resume();
    },
  });
  await mf.ready;
  try {
    return await work(`http://127.0.0.1:${port}`, mf);
  } finally {
    await mf.dispose();
  }
}

async function measure(label, url, opts = {}) {
  await wrk(url, { ...opts, seconds: 1, connections: CONNECTIONS }); // warm-up: JIT, objects, storage
  const run = await wrk(url, { ...opts, seconds: SECONDS, connections: CONNECTIONS });
  results.runs[label] = run;
  console.log(`  ${label.padEnd(22)} ${run.rps.toFixed(0).padStart(7)} req/s  p50 ${run.p50_ms.toFixed(2)} ms  p99 ${run.p99_ms.toFixed(2)} ms${run.errors ? `  (${run.errors} errors)` : ""}`);
  return run;
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

await serve(
  "reference",
  {
    modules: true,
    scriptPath: join(root, "bench", "fixtures", "js-counter.mjs"),
    compatibilityDate: "2026-04-20",
    durableObjects: { JS_COUNTER: { className: "JsCounter", useSQLite: true } },
  },
  (url) => measure("reference (JS DO)", `${url}/hot`, { method: "POST" }),
);

const edgecountVars = { ADMIN_API_KEY: ADMIN, FLUSH_INTERVAL_MS: String(FLUSH_INTERVAL_MS), RATE_LIMIT_WINDOW_SECONDS: "0" };
await serve("edgecount", edgecountOptions(edgecountVars), async (url, mf) => {
  const db = await mf.getD1Database("DB");
  await migrate(db);
  const writes = await d1WritesCounter(db);
  const call = async (method, path, body) => {
    const res = await fetch(url + path, { method, headers: { "X-API-Key": ADMIN }, body: body && JSON.stringify(body) });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const { tenant_id } = await call("POST", "/tenants", { label: "bench" });
  const hot = await call("POST", `/tenants/${tenant_id}`, { label: "hot", max_delta: 1 });
  const spread = [];
  for (let i = 0; i < SPREAD; i++) spread.push((await call("POST", `/tenants/${tenant_id}`, {})).counter_id);
  const hotPath = `/tenants/${tenant_id}/${hot.counter_id}`;

  const settle = () => new Promise((r) => setTimeout(r, FLUSH_INTERVAL_MS + 500));
  const before = (await call("GET", hotPath)).value;
  await settle();
  const writesBefore = await writes(hot.counter_id);
  const windowStart = Date.now();
  const hotRun = await measure("edgecount inc (hot)", `${url}${hotPath}/inc`, { method: "POST" });
  const increments = (await call("GET", hotPath)).value - before;
  await settle();
  const d1Writes = (await writes(hot.counter_id)) - writesBefore;
  // Every interval that overlapped the load, and the one that flushed its tail.
  const intervals = Math.ceil((Date.now() - windowStart) / FLUSH_INTERVAL_MS);
  const d1Value = (await db.prepare("SELECT value FROM counters WHERE id = ?").bind(hot.counter_id).first()).value;
  results.hot = {
    increments,
    acknowledged_at_least: hotRun.ok_requests,
    d1_writes: d1Writes,
    d1_writes_per_1000_increments: +((d1Writes * 1000) / Math.max(1, increments)).toFixed(3),
    flush_intervals: intervals,
    d1_writes_per_flush_interval: +(d1Writes / intervals).toFixed(2),
    d1_matches_object: d1Value === (await call("GET", hotPath)).value,
  };

  await measure("edgecount inc (1,000)", `${url}/tenants/${tenant_id}`, { method: "POST", paths: spread.map((c) => `/tenants/${tenant_id}/${c}/inc`) });
  await measure("edgecount GET", `${url}${hotPath}`);
});

// The same service without its per-request log line, to show what logging costs.
await serve("edgecount-quiet", edgecountOptions({ ...edgecountVars, REQUEST_LOG: "off" }), async (url, mf) => {
  await migrate(await mf.getD1Database("DB"));
  const call = async (method, path, body) =>
    (await fetch(url + path, { method, headers: { "X-API-Key": ADMIN }, body: body && JSON.stringify(body) })).json();
  const { tenant_id } = await call("POST", "/tenants", { label: "bench" });
  const hot = await call("POST", `/tenants/${tenant_id}`, { label: "hot", max_delta: 1 });
  const hotPath = `/tenants/${tenant_id}/${hot.counter_id}`;
  await measure("inc (hot), log off", `${url}${hotPath}/inc`, { method: "POST" });
  await measure("GET, log off", `${url}${hotPath}`);
});

results.bundle = uploadSize();
rmSync(state, { recursive: true, force: true });

const r = results.runs;
const ratio = (a, b) => +(r[a].rps / r[b].rps).toFixed(2);
results.ratios = {
  hot_vs_reference: ratio("edgecount inc (hot)", "reference (JS DO)"),
  hot_vs_floor: ratio("edgecount inc (hot)", "floor (Rust→DO no-op)"),
  get_vs_floor: ratio("edgecount GET", "floor (Rust→DO no-op)"),
  spread_vs_hot: ratio("edgecount inc (1,000)", "edgecount inc (hot)"),
  floor_vs_ceiling: ratio("floor (Rust→DO no-op)", "ceiling (JS no-op)"),
  floor_spread_vs_floor_hot: ratio("floor, 1,000 objects", "floor (Rust→DO no-op)"),
  spread_vs_floor_spread: ratio("edgecount inc (1,000)", "floor, 1,000 objects"),
  hot_log_off_vs_reference: ratio("inc (hot), log off", "reference (JS DO)"),
};
const targets = [
  ["hot inc ≥ 1.5 × JS reference", results.ratios.hot_vs_reference, 1.5],
  ["hot inc ≥ 0.6 × floor", results.ratios.hot_vs_floor, 0.6],
  ["GET ≥ 0.85 × floor", results.ratios.get_vs_floor, 0.85],
  ["1,000 counters ≥ hot", results.ratios.spread_vs_hot, 1.0],
  ["≤ 1 D1 write per flush interval", 1 / Math.max(results.hot.d1_writes_per_flush_interval, 1e-9), 1.0],
  ["gzip bundle ≤ 300 KiB", 300 / results.bundle.gzip_kib, 1.0],
];
results.targets = Object.fromEntries(targets.map(([name, value, goal]) => [name, value >= goal]));

console.log(`\nD1 during the hot run: ${results.hot.d1_writes} writes for ${results.hot.increments} increments over ${results.hot.flush_intervals} flush intervals of ${FLUSH_INTERVAL_MS} ms (${results.hot.d1_writes_per_1000_increments} per 1,000 increments; ${results.hot.d1_writes_per_flush_interval} per interval); D1 equals the object: ${results.hot.d1_matches_object}`);
console.log(`Bundle (wrangler deploy --dry-run): ${results.bundle.upload_kib} KiB, gzip ${results.bundle.gzip_kib} KiB`);
console.log("\n| ratio | value |\n|---|---|");
for (const [k, v] of Object.entries(results.ratios)) console.log(`| ${k} | ${v} |`);
console.log("\n| target | met |\n|---|---|");
for (const [k, v] of Object.entries(results.targets)) console.log(`| ${k} | ${v ? "yes" : "no"} |`);
writeFileSync(join(root, "bench", "results.json"), JSON.stringify(results, null, 2) + "\n");
console.log("\nwrote bench/results.json");
