// Helpers for the benchmark: wrk runs and their parsing, fixture builds, sizes.
import { execFile, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { root } from "../tests/helpers/worker.mjs";
export { edgecountOptions } from "../tests/helpers/worker.mjs";
export { LIMIT_KIB, uploadSizes } from "../scripts/bundle-size.mjs";

export function ensureWrk() {
  if (spawnSync("wrk", ["--version"]).error === undefined) return;
  console.log("bench: installing wrk (Debian package)");
  const sudo = process.getuid?.() === 0 ? [] : ["sudo"];
  const install = (args) => spawnSync(sudo[0] ?? args[0], sudo.length ? args : args.slice(1), { stdio: "inherit" });
  install(["apt-get", "update", "-qq"]);
  if (install(["apt-get", "install", "-y", "-qq", "wrk"]).status !== 0) {
    throw new Error("bench: wrk is required (apt-get install wrk)");
  }
}

export const freePort = () =>
  new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

/** Builds a Rust fixture with the same toolchain and settings as edgecount. */
export function buildFixture(dir) {
  const cargoBin = join(process.env.CARGO_HOME ?? join(homedir(), ".cargo"), "bin");
  const env = {
    ...process.env,
    WASM_BINDGEN_BIN: join(cargoBin, "wasm-bindgen"),
    ESBUILD_BIN: join(root, "node_modules", ".bin", "esbuild"),
    WASM_OPT_BIN: join(root, "node_modules", ".bin", "wasm-opt"),
  };
  const run = spawnSync(join(cargoBin, "worker-build"), ["--release"], { cwd: dir, env, stdio: ["ignore", "ignore", "inherit"] });
  if (run.status !== 0) throw new Error(`bench: building ${dir} failed`);
  return join(dir, "build", "index.js");
}

/** Installs a trigger that counts every write of a counter's value into D1. */
export async function d1WritesCounter(db) {
  await db.exec("CREATE TABLE IF NOT EXISTS bench_flushes (counter_id TEXT)");
  await db.exec("CREATE TRIGGER IF NOT EXISTS bench_count_flushes AFTER UPDATE OF value ON counters BEGIN INSERT INTO bench_flushes VALUES (NEW.id); END");
  return async (counterId) =>
    (await db.prepare("SELECT COUNT(*) AS n FROM bench_flushes WHERE counter_id = ?").bind(counterId).first()).n;
}

function toMs(text) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) return NaN;
  const scale = { us: 0.001, ms: 1, s: 1000, m: 60000 }[m[2]];
  return Number(m[1]) * scale;
}

/**
 * Runs wrk once (bounded by seconds and connections) and parses its report. Runs
 * asynchronously: Node must keep draining workerd's stdout meanwhile, or the Worker's
 * log writes back up and stall it.
 */
export async function wrk(url, { seconds, connections, method = "GET", paths, headers = {}, idempotencyKeys = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "edgecount-wrk-"));
  const script = join(dir, "script.lua");
  const lines = [`wrk.method = "${method}"`];
  for (const [name, value] of Object.entries(headers)) lines.push(`wrk.headers[${JSON.stringify(name)}] = ${JSON.stringify(value)}`);
  if (paths) {
    lines.push(`local paths = {${paths.map((p) => JSON.stringify(p)).join(",")}}`);
    lines.push("request = function() return wrk.format(nil, paths[math.random(#paths)]) end");
  } else if (idempotencyKeys) {
    // A new Idempotency-Key (a UUID) per request; the prefix is new for every run.
    const prefix = randomBytes(4).toString("hex");
    lines.push("local n = 0");
    lines.push(`request = function() n = n + 1; wrk.headers["Idempotency-Key"] = string.format("${prefix}-0000-4000-8000-%012x", n); return wrk.format() end`);
  }
  writeFileSync(script, lines.join("\n") + "\n");
  try {
    const { stdout: out } = await promisify(execFile)(
      "wrk",
      ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency", "-s", script, url],
      { encoding: "utf8", timeout: (seconds + 30) * 1000 },
    );
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
    const total = Number(/(\d+) requests in/.exec(out)?.[1]);
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
    const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
    const socketErrors = socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
    return {
      rps,
      p50_ms: toMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? ""),
      p99_ms: toMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? ""),
      requests: total,
      ok_requests: total - non2xx,
      errors: non2xx + socketErrors,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The Worker's upload and gzip size as `wrangler deploy --dry-run` reports them. */
