// Export and import of a tenant with 1,000,000 visit rows (1,000 pages), through the
// Worker and the command-line tool as a person runs them: `npx edgecount export` to a
// file, `npx edgecount import --no-check` of that file into a second deployment. Prints
// rows/s and the peak memory (resident set) of the CLI process and of the workerd process
// that runs the Worker (the isolate, its objects and local D1 together), beside the
// references measured in the same run: the same rows read page by page straight from
// local D1, and written straight into it in the import's 500-row chunks — what D1 alone
// costs, without the Worker. It runs at 100,000 rows too: flat memory means the two
// sizes peak alike.
//
// Alone: `node bench/transfer.mjs` (after a build; BENCH_TRANSFER_VISITS=200000 for a
// quicker look). `npm run bench` runs it too.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { root, startWorker, workerdChildren } from "../tests/helpers/worker.mjs";

export const VISITS = Number(process.env.BENCH_TRANSFER_VISITS ?? 1_000_000);
const PAGES = 1_000;
const ADMIN = "bench-admin-key";
const CLI = join(root, "bin", "edgecount.mjs");

/** Resident-set high-water mark of a process, in MiB (0 once it is gone). */
function peakMiB(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Runs the CLI, sampling its peak memory; answers seconds and MiB. */
function runCli(args) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "ignore", "pipe"] });
    let peak = 0;
    let err = "";
    const sample = setInterval(() => (peak = Math.max(peak, peakMiB(child.pid))), 50);
    child.stderr.on("data", (d) => {
      err += d;
      peak = Math.max(peak, peakMiB(child.pid));
    });
    child.on("close", (code) => {
      clearInterval(sample);
      if (code !== 0) reject(new Error(`edgecount ${args[0]}: exit ${code}: ${err.slice(-500)}`));
      else resolve({ seconds: (performance.now() - started) / 1000, peak_mib: +peak.toFixed(1) });
    });
  });
}

async function seed(svc, visits) {
  const res = await fetch(new URL("/tenants", svc.url), { method: "POST", headers: { "X-API-Key": ADMIN }, body: JSON.stringify({ label: `transfer-${visits}` }) });
  const tenant = (await res.json()).tenant_id;
  const start = Date.now() - 30 * 86_400_000;
  await svc.db
    .prepare(
      `WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ?2)
       INSERT INTO visits (tenant_id, page_id, seq, ts, referrer_host, country, agent, counted, is_unique)
       SELECT ?1, '/page/' || (i % ${PAGES}), i / ${PAGES} + 1, ?3 + i * 2,
              CASE WHEN i % 5 = 0 THEN NULL ELSE 'ref' || (i % 50) || '.example' END,
              char(65 + i % 26, 65 + (i / 26) % 3 + 10),
              CASE i % 10 WHEN 0 THEN 'bot' ELSE 'browser' END, i % 10 != 0, i % 3 = 0
       FROM s`,
    )
    .bind(tenant, visits, start)
    .run();
  await svc.db
    .prepare(
      `WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ${PAGES})
       INSERT INTO pages (tenant_id, page_id, count, version, rolled_seq, created_ms, updated_ms)
       SELECT ?1, '/page/' || i, ?2, ?2, ?2, ?3, ?3 FROM s`,
    )
    .bind(tenant, Math.ceil(visits / PAGES), start)
    .run();
  return tenant;
}

/** The references: the rows read from D1 page by page, and written back in chunks. */
async function reference(db, tenant, target) {
  let started = performance.now();
  let cursor = ["", -1];
  const rows = [];
  for (;;) {
    const { results } = await db
      .prepare(
        `SELECT json_object('type', 'visit', 'page', page_id, 'seq', seq, 'ts', ts, 'referrer_host', referrer_host,
           'country', country, 'agent', agent, 'counted', counted, 'unique', is_unique) AS line, page_id, seq
         FROM visits WHERE tenant_id = ?1 AND (page_id, seq) > (?2, ?3) ORDER BY page_id, seq LIMIT 1000`,
      )
      .bind(tenant, ...cursor)
      .all();
    if (!results.length) break;
    for (const r of results) rows.push(r.line);
    const last = results.at(-1);
    cursor = [last.page_id, last.seq];
  }
  const read = (performance.now() - started) / 1000;
  started = performance.now();
  for (let i = 0; i < rows.length; i += 500) {
    await db
      .prepare(
        `INSERT INTO visits (tenant_id, page_id, seq, ts, referrer_host, country, agent, counted, is_unique)
         SELECT ?1, value ->> 'page', value ->> 'seq', value ->> 'ts', value ->> 'referrer_host', value ->> 'country',
           value ->> 'agent', value ->> 'counted', value ->> 'unique' FROM json_each(?2) WHERE true ON CONFLICT DO NOTHING`,
      )
      .bind(target, `[${rows.slice(i, i + 500).join(",")}]`)
      .run();
  }
  const written = (performance.now() - started) / 1000;
  return { read_rows_per_second: Math.round(rows.length / read), write_rows_per_second: Math.round(rows.length / written) };
}

async function once(visits, dir) {
  const from = await startWorker({ vars: { ADMIN_API_KEY: ADMIN } });
  const fromPid = workerdChildren().at(-1);
  const to = await startWorker({ vars: { ADMIN_API_KEY: ADMIN } });
  const toPid = workerdChildren().at(-1);
  try {
    const tenant = await seed(from, visits);
    const file = join(dir, `tenant-${visits}.ndjson`);
    const lines = visits + PAGES + 3; // header, tenant, pages, visits, end
    const fromBase = peakMiB(fromPid);
    const exported = await runCli(["export", "--url", from.url.toString(), "--key", ADMIN, "--tenant", tenant, file]);
    const fromPeak = peakMiB(fromPid);
    const toBase = peakMiB(toPid);
    const imported = await runCli(["import", "--url", to.url.toString(), "--key", ADMIN, "--no-check", file]);
    const toPeak = peakMiB(toPid);
    const copied = (await to.db.prepare("SELECT COUNT(*) AS n FROM visits WHERE tenant_id = ?").bind(tenant).first()).n;
    if (copied !== visits) throw new Error(`imported ${copied} of ${visits} visit rows`);
    const ref = await reference(from.db, tenant, crypto.randomUUID());
    return {
      visits,
      lines,
      export_rows_per_second: Math.round(lines / exported.seconds),
      import_rows_per_second: Math.round(lines / imported.seconds),
      export_cli_peak_mib: exported.peak_mib,
      import_cli_peak_mib: imported.peak_mib,
      workerd_export_peak_mib: +fromPeak.toFixed(1),
      workerd_export_growth_mib: +(fromPeak - fromBase).toFixed(1),
      workerd_import_peak_mib: +toPeak.toFixed(1),
      workerd_import_growth_mib: +(toPeak - toBase).toFixed(1),
      d1_read_rows_per_second: ref.read_rows_per_second,
      d1_write_rows_per_second: ref.write_rows_per_second,
    };
  } finally {
    await from.close();
    await to.close();
  }
}

/** Both sizes; prints and answers the figures. */
export async function benchTransfer() {
  const dir = mkdtempSync(join(tmpdir(), "edgecount-transfer-"));
  try {
    const out = {};
    for (const visits of [Math.round(VISITS / 10), VISITS]) {
      const r = await once(visits, dir);
      out[visits] = r;
      console.log(
        `  transfer ${visits.toLocaleString("en")} visits: export ${r.export_rows_per_second.toLocaleString("en")} rows/s, import ${r.import_rows_per_second.toLocaleString("en")} rows/s` +
          ` · D1 alone: read ${r.d1_read_rows_per_second.toLocaleString("en")}, write ${r.d1_write_rows_per_second.toLocaleString("en")} rows/s` +
          ` · peak MiB: CLI ${r.export_cli_peak_mib} / ${r.import_cli_peak_mib}, workerd ${r.workerd_export_peak_mib} (+${r.workerd_export_growth_mib}) / ${r.workerd_import_peak_mib} (+${r.workerd_import_growth_mib})`,
      );
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchTransfer(), null, 1));
}
