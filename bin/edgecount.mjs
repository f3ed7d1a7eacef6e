#!/usr/bin/env node
// edgecount's command-line tool for people moving counts in and out.
//
//   npx edgecount export    --url URL --key KEY --tenant T [--no-visits] [FILE[.gz]]
//   npx edgecount import    --url URL --key KEY [--tenant T] [--source S] [--no-check] FILE[.gz]
//   npx edgecount reconcile --url URL --key KEY
//
// A progress bar with rows and rate on a terminal, one plain line per step otherwise.
// `import` checks the whole file first (a dry run: a bad line changes nothing), then
// sends it in parts of PART_LINES data lines; it keeps its place in FILE.edgecount-import
// and, run again after an interruption, goes on from there. Exit status: 0 done, 1 the
// service refused something (a bad line, a mismatched ledger), 2 usage or connection.
import { createReadStream, createWriteStream, existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import { createGunzip, createGzip } from "node:zlib";
import cliProgress from "cli-progress";
import { reconcile } from "../scripts/reconcile.mjs";

/** Data lines per request: ten of the service's 1,000-line chunks. */
export const PART_LINES = 10_000;

const USAGE = `usage:
  edgecount export    --url URL --key KEY --tenant T [--no-visits] [FILE[.gz]]
  edgecount import    --url URL --key KEY [--tenant T] [--source S] [--no-check] FILE[.gz]
  edgecount reconcile --url URL --key KEY`;

class Refused extends Error {}

/** Progress on stderr: a bar on a terminal, a line per update elsewhere. */
function progress(label, total, { tty = process.stderr.isTTY } = {}) {
  const started = Date.now();
  const rate = (n) => Math.round(n / Math.max((Date.now() - started) / 1000, 0.001));
  if (tty) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {value}${total ? "/{total}" : ""} rows | {rate} rows/s`, hideCursor: true, stream: process.stderr },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total ?? 0, 0, { rate: 0 });
    return { update: (n) => bar.update(n, { rate: rate(n) }), stop: () => bar.stop() };
  }
  return {
    update: (n) => process.stderr.write(`${label}: ${n}${total ? `/${total}` : ""} rows, ${rate(n)} rows/s\n`),
    stop: () => {},
  };
}

function input(file) {
  const stream = createReadStream(file);
  return file.endsWith(".gz") ? stream.pipe(createGunzip()) : stream;
}

async function call(url, key, method, path, body, contentType) {
  let res;
  try {
    res = await fetch(new URL(path, url), {
      method,
      headers: { "X-API-Key": key, ...(contentType ? { "Content-Type": contentType } : {}) },
      body,
    });
  } catch (e) {
    throw new Error(`${method} ${path}: ${e.cause?.message ?? e.message}`);
  }
  const text = await res.text();
  if (res.status >= 400 && res.status < 500) {
    let message = text;
    try {
      message = JSON.parse(text).errors[0].message;
    } catch {}
    throw new Refused(`${res.status}: ${message}`);
  }
  if (res.status !== 200) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

export async function exportTenant({ url, key, tenant, visits = true, file, tty }) {
  const path = `/tenants/${tenant}/export${visits ? "?visits=1" : ""}`;
  let res;
  try {
    res = await fetch(new URL(path, url), { headers: { "X-API-Key": key } });
  } catch (e) {
    throw new Error(`GET ${path}: ${e.cause?.message ?? e.message}`);
  }
  if (res.status !== 200) throw new Refused(`${res.status}: ${await res.text()}`);
  const bar = progress("export", undefined, { tty });
  let rows = 0;
  let tail = "";
  let last = "";
  // Counts lines as they pass, and remembers the last: the end line says how many
  // records the service sent.
  const count = new Transform({
    transform(chunk, _enc, done) {
      const lines = (tail + chunk.toString("utf8")).split("\n");
      tail = lines.pop();
      rows += lines.length;
      if (lines.length) last = lines.at(-1);
      if (rows % 10_000 < lines.length) bar.update(rows);
      done(null, chunk);
    },
  });
  const out = file ? createWriteStream(file) : process.stdout;
  const stages = file?.endsWith(".gz") ? [count, createGzip(), out] : [count, out];
  await pipeline(Readable.fromWeb(res.body), ...stages);
  bar.update(rows);
  bar.stop();
  const end = last ? JSON.parse(last) : {};
  if (end.type !== "end" || end.records !== rows - 2) throw new Error(`the export was cut short after ${rows} lines`);
  return { rows };
}

/** The file's first line: what it is, and whether later parts repeat it. */
async function firstLine(file) {
  const lines = createInterface({ input: input(file), crlfDelay: Infinity });
  for await (const line of lines) {
    lines.close();
    return line.replace(/^\uFEFF/, "");
  }
  return "";
}

export async function importFile({ url, key, tenant, source, file, check = true, tty }) {
  if (!existsSync(file)) throw new Error(`${file}: no such file`);
  const first = await firstLine(file);
  const isExport = first.startsWith("{") && JSON.parse(first).format !== undefined;
  const hasHeader = isExport || !first.startsWith("{");
  tenant ??= isExport ? JSON.parse(first).tenant : undefined;
  if (!tenant) throw new Refused("--tenant is needed for this file (only an edgecount export names its tenant)");
  const place = `${file}.edgecount-import`;
  const identity = { url: String(url), tenant, bytes: statSync(file).size };
  let done = 0;
  if (existsSync(place)) {
    const saved = JSON.parse(readFileSync(place, "utf8"));
    if (saved.url === identity.url && saved.tenant === identity.tenant && saved.bytes === identity.bytes) done = saved.applied;
  }
  const query = (from, dryRun) => {
    const q = new URLSearchParams({ from: String(from) });
    if (dryRun) q.set("dry_run", "1");
    if (source) q.set("source", source);
    return `/tenants/${tenant}/import?${q}`;
  };
  const type = isExport ? "application/x-ndjson" : first.startsWith("{") ? "application/x-ndjson" : "text/csv";
  /** Sends the file in parts from data line `from`; calls back after each part. */
  const send = async (from, dryRun, after) => {
    const lines = createInterface({ input: input(file), crlfDelay: Infinity });
    let header = null;
    let n = 0;
    let part = [];
    const flush = async () => {
      if (!part.length) return;
      const start = n - part.length + 1;
      const body = (header === null ? part : [header, ...part]).join("\n") + "\n";
      const answer = await call(url, key, "POST", query(start, dryRun), body, type);
      part = [];
      await after(answer);
    };
    for await (const raw of lines) {
      if (hasHeader && header === null) {
        header = raw;
        continue;
      }
      if (raw.trim() === "") continue;
      n += 1;
      if (n < from) continue;
      part.push(raw);
      if (part.length === PART_LINES) await flush();
    }
    await flush();
    return n;
  };
  const totals = { added: 0, unchanged: 0, skipped: 0 };
  if (check && done === 0) {
    const bar = progress("check", undefined, { tty });
    await send(1, true, (a) => bar.update(a.data_lines));
    bar.stop();
  }
  const bar = progress(done ? `import (from line ${done + 1})` : "import", undefined, { tty });
  let complete = !isExport;
  let format;
  const lines = await send(done + 1, false, (a) => {
    done = a.data_lines;
    format = a.format;
    complete ||= a.complete;
    for (const k of Object.keys(totals)) totals[k] += a[k];
    writeFileSync(place, JSON.stringify({ ...identity, applied: done }));
    bar.update(done);
  });
  bar.stop();
  rmSync(place, { force: true });
  if (isExport && !complete && lines > 0) throw new Refused("the file has no end line: it was cut short (what it had is imported)");
  return { format, lines, ...totals };
}

async function main(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: "string" },
      key: { type: "string" },
      tenant: { type: "string" },
      source: { type: "string" },
      "no-visits": { type: "boolean" },
      "no-check": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  const [command, file] = positionals;
  if (values.help || !values.url || !values.key || !["export", "import", "reconcile"].includes(command)) {
    console.error(USAGE);
    return 2;
  }
  const { url, key } = values;
  try {
    if (command === "export") {
      if (!values.tenant) throw new Refused("--tenant is needed");
      const { rows } = await exportTenant({ url, key, tenant: values.tenant, visits: !values["no-visits"], file });
      console.error(`exported ${rows} lines${file ? ` to ${file}` : ""}`);
    } else if (command === "import") {
      if (!file) throw new Refused("import needs a FILE");
      const r = await importFile({ url, key, tenant: values.tenant, source: values.source, file, check: !values["no-check"] });
      console.error(`imported ${r.lines} data lines (${r.format}): ${r.added} added, ${r.unchanged} already there, ${r.skipped} skipped`);
    } else {
      const totals = await reconcile({ url, key, log: (line) => console.error(line) });
      return totals.mismatched.length === 0 ? 0 : 1;
    }
    return 0;
  } catch (e) {
    console.error(`edgecount ${command}: ${e.message}`);
    return e instanceof Refused ? 1 : 2;
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith("/edgecount")) {
  process.exit(await main(process.argv.slice(2)));
}
