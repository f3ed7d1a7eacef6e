// Builds the Worker with worker-build, pointing it at locally installed tools instead of
// letting it download them (builds must work offline). Skips when build/ is newer than
// every source, because `wrangler dev` runs the build command more than once at start.
// `--force` always builds.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { writeAnnexConfig } from "./annex-config.mjs";
import { buildDashboard } from "./build-dashboard.mjs";

const root = resolve(import.meta.dirname, "..");
// Two Workers from one crate: the edge (objects and the hot routes) in build/, and the
// annex (`--features annex`: stats, export and import, the GitHub cache, scheduled jobs)
// in build/annex/. ARCHITECTURE.md, two Workers.
const WORKERS = [
  { out: "build", args: [] },
  { out: join("build", "annex"), args: ["--features", "annex"] },
];
const outputs = WORKERS.map((w) => join(root, w.out, "index.js"));

function newestMtime(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newestMtime(join(path, name))));
}

function isFresh() {
  if (!outputs.every((o) => existsSync(o))) return false;
  const sources = ["src", "Cargo.toml", "Cargo.lock"].map((p) => newestMtime(join(root, p)));
  return Math.min(...outputs.map((o) => statSync(o).mtimeMs)) > Math.max(...sources);
}

function tool(envName, candidates) {
  if (process.env[envName]) return process.env[envName];
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    console.error(`build: ${envName} not found (looked in ${candidates.join(", ")}); run: npm run setup`);
    process.exit(1);
  }
  return found;
}

export function build({ force = false } = {}) {
  // The dashboard's static files: esbuild takes milliseconds, so always.
  buildDashboard();
  // The annex's configuration follows wrangler.toml: also always.
  writeAnnexConfig();
  if (!force && isFresh()) return;
  const cargoBin = join(process.env.CARGO_HOME ?? join(homedir(), ".cargo"), "bin");
  const env = {
    ...process.env,
    WASM_BINDGEN_BIN: tool("WASM_BINDGEN_BIN", [join(cargoBin, "wasm-bindgen")]),
    ESBUILD_BIN: tool("ESBUILD_BIN", [join(root, "node_modules", ".bin", "esbuild")]),
    WASM_OPT_BIN: tool("WASM_OPT_BIN", [join(root, "node_modules", ".bin", "wasm-opt")]),
  };
  const workerBuild = tool("WORKER_BUILD_BIN", [join(cargoBin, "worker-build")]);
  for (const worker of WORKERS) {
    const run = spawnSync(workerBuild, ["--release", "--out-dir", worker.out, root, ...worker.args], { cwd: root, env, stdio: "inherit" });
    if (run.status !== 0) {
      console.error(`build: worker-build failed (${worker.out})`);
      process.exit(run.status ?? 1);
    }
    // Function names help profiling, not users: they were a fifth of the bundle.
    // EDGECOUNT_KEEP_NAMES=1 keeps them for a profiling build.
    if (!process.env.EDGECOUNT_KEEP_NAMES) {
      const wasm = join(root, worker.out, "index_bg.wasm");
      const features = ["bulk-memory", "nontrapping-float-to-int", "sign-ext", "mutable-globals", "reference-types", "multivalue"];
      const strip = spawnSync(env.WASM_OPT_BIN, ["-Oz", "--strip-debug", "--strip-producers", ...features.map((f) => `--enable-${f}`), wasm, "-o", wasm], { stdio: "inherit" });
      if (strip.status !== 0) {
        console.error("build: stripping names failed");
        process.exit(strip.status ?? 1);
      }
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  build({ force: process.argv.includes("--force") });
}
