// The command-line tool (`npx edgecount`, bin/edgecount.mjs) against running Workers,
// run as a person runs it: a separate process, not a terminal (so progress is plain
// lines). Export to a file (and .gz), import it into another deployment, an import killed
// half-way and run again, GoatCounter's CSV straight from disk, a bad file, a wrong key,
// reconcile.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ADMIN_KEY, AGENTS, admin, root, startWorker } from "./helpers/worker.mjs";

const CLI = join(root, "bin", "edgecount.mjs");
const dir = mkdtempSync(join(tmpdir(), "edgecount-cli-"));
let a;
let b;
let tenant;

/** Runs the CLI; resolves with its exit status and output. `onStderr` may kill it. */
function cli(args, { onStderr } = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => {
      stderr += d;
      onStderr?.(stderr, child);
    });
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const at = (svc) => ["--url", svc.url.toString(), "--key", ADMIN_KEY];

before(async () => {
  a = await startWorker({ vars: { FLUSH_INTERVAL_MS: "100" } });
  b = await startWorker({ vars: { FLUSH_INTERVAL_MS: "100" } });
  tenant = (await a.createTenant()).tenant_id;
  const counter = (await a.createCounter(tenant, { label: "stars" })).counter_id;
  for (let i = 0; i < 5; i++) await a.request("POST", `/tenants/${tenant}/${counter}/inc`, { headers: { "User-Agent": AGENTS.pythonRequests } });
});
after(async () => {
  await a?.close();
  await b?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("npx edgecount", () => {
  test("export to a file and import it elsewhere, with plain progress lines off a terminal", async () => {
    for (const name of ["out.ndjson", "out.ndjson.gz"]) {
      const file = join(dir, name);
      const exported = await cli(["export", ...at(a), "--tenant", tenant, file]);
      assert.equal(exported.code, 0, exported.stderr);
      assert.match(exported.stderr, /^export: \d+ rows, \d+ rows\/s$/m);
      assert.ok(!exported.stderr.includes("\u001b["), "no terminal escapes when not a terminal");
    }
    const imported = await cli(["import", ...at(b), join(dir, "out.ndjson.gz")]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stderr, /^check: \d+ rows/m);
    assert.match(imported.stderr, /^import: \d+ rows/m);
    // Another export of the same tenant is not merged into the one the first made.
    const other = await cli(["import", ...at(b), join(dir, "out.ndjson")]);
    assert.equal(other.code, 1, other.stderr);
    assert.match(other.stderr, /line 1: tenant .* already exists here/);
    const text = readFileSync(join(dir, "out.ndjson"), "utf8");
    const again = await b.request("GET", `/tenants/${tenant}/export?visits=1`, { headers: admin });
    assert.deepEqual(again.text.split("\n").slice(1), text.split("\n").slice(1));
    const check = await cli(["reconcile", ...at(b)]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stderr, /every ledger sums to its value/);
  });

  test("on a terminal, a progress bar with rows and rate", { skip: !existsSync("/usr/bin/script") && "no script(1) for a terminal" }, async () => {
    // script(1) gives the tool a pseudo-terminal, as a person's shell does.
    const file = join(dir, "tty.ndjson");
    const command = [process.execPath, CLI, "export", ...at(a), "--tenant", tenant, file].map((w) => `'${w}'`).join(" ");
    const ran = await new Promise((resolve) => {
      const child = spawn("script", ["-qec", command, "/dev/null"], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      child.on("close", (code) => resolve({ code, out }));
    });
    assert.equal(ran.code, 0, ran.out);
    assert.match(ran.out, /export \[[█░]+\] \d+ rows \| \d+ rows\/s/, ran.out);
  });

  test("an import killed half-way goes on from where it was when run again", async () => {
    const t = crypto.randomUUID();
    const n = 25_000;
    const lines = [
      JSON.stringify({ format: "edgecount-export", version: 1, tenant: t, exported_at: "2026-01-01T00:00:00.000Z", visits: true }),
      JSON.stringify({ type: "tenant", id: t, label: `cli-${t}`, created_ms: 1, updated_ms: 1, page_auto_create: false, count_bots: false, respect_dnt: false, allowed_origins: null }),
      JSON.stringify({ type: "page", page: "/", count: n, seq: n, rolled_seq: 0, created_ms: 1, updated_ms: 1 }),
    ];
    const start = Date.now() - 86_400_000;
    for (let i = 1; i <= n; i++) lines.push(JSON.stringify({ type: "visit", page: "/", seq: i, ts: start + i, referrer_host: null, country: null, agent: "browser", counted: 1, unique: 0 }));
    lines.push(JSON.stringify({ type: "end", records: lines.length - 1 }));
    const file = join(dir, "big.ndjson");
    writeFileSync(file, lines.join("\n") + "\n");
    const killed = await cli(["import", ...at(b), "--no-check", file], {
      onStderr: (err, child) => {
        if (/import: 10000 rows/.test(err)) child.kill("SIGKILL");
      },
    });
    assert.equal(killed.signal, "SIGKILL", killed.stderr);
    assert.ok(existsSync(`${file}.edgecount-import`), "its place is kept beside the file");
    const resumed = await cli(["import", ...at(b), file]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /import \(from line 1000[01]\)/);
    assert.ok(!existsSync(`${file}.edgecount-import`));
    const rows = await b.db.prepare("SELECT COUNT(*) AS n, COUNT(DISTINCT seq) AS seqs FROM visits WHERE tenant_id = ?").bind(t).first();
    assert.deepEqual([rows.n, rows.seqs], [n, n]);
  });

  test("GoatCounter's CSV straight from disk; a bad file changes nothing; a wrong key or no service fails", async () => {
    const t = (await b.createTenant()).tenant_id;
    const csv = join(root, "tests", "fixtures", "imports", "goatcounter-export-example-20250116T000000Z-0.csv");
    const ok = await cli(["import", ...at(b), "--tenant", t, csv]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /\(goatcounter\)/);
    const bad = join(dir, "bad.csv");
    const good = readFileSync(csv, "utf8").trim().split("\n");
    writeFileSync(bad, [...good, good[1].replace(/2025-01-\d\dT[\d:]+Z/, "not a date")].join("\n"));
    const t2 = (await b.createTenant()).tenant_id;
    const refused = await cli(["import", ...at(b), "--tenant", t2, bad]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, new RegExp(`line ${good.length + 1}: Date must be`));
    const pages = await b.db.prepare("SELECT COUNT(*) AS n FROM pages WHERE tenant_id = ?").bind(t2).first();
    assert.equal(pages.n, 0, "the check found the bad line before anything was sent");
    const wrongKey = await cli(["export", "--url", b.url.toString(), "--key", "nope", "--tenant", t, join(dir, "x.ndjson")]);
    assert.equal(wrongKey.code, 1, wrongKey.stderr);
    const noService = await cli(["export", "--url", "http://127.0.0.1:9", "--key", "k", "--tenant", t]);
    assert.equal(noService.code, 2, noService.stderr);
    const usage = await cli(["frobnicate"]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /usage:/);
  });
});
