#!/usr/bin/env node
// Fuzzes the built Worker against its own OpenAPI document with Schemathesis: every
// phase (examples, coverage, fuzzing, stateful), every operation reached with ids that
// exist. It starts the Worker in workerd (tests/helpers/worker.mjs: real local Durable
// Objects, D1 and KV, the static assets in front, wrangler.toml's budgets and brakes as
// shipped) and a fake GitHub for the GitHub cache's routes, creates a tenant, counters,
// pages and keys, and runs `schemathesis run` with .ci/schemathesis/schemathesis.toml.
// Exits non-zero on any failure or warning. It runs one fixed seed, so CI runs the same
// cases every time; extra arguments go to `schemathesis run` (`--seed N` for another).
// Needs a built Worker (build/) and Python 3: the pinned Schemathesis
// (.ci/schemathesis/requirements.txt) is installed into a virtual environment under
// node_modules/.cache when missing.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ADMIN_KEY, admin, clientIp, startWorker } from "../tests/helpers/worker.mjs";
import { ORG, startFakeGitHub } from "../tests/fixtures/fake-github.mjs";

const root = resolve(import.meta.dirname, "..");
process.chdir(root);
const CONFIG = ".ci/schemathesis/schemathesis.toml";
const REQUIREMENTS = ".ci/schemathesis/requirements.txt";
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const SEED = "20261124";

const SYSTEM_PYTHON = spawnSync("python3", ["--version"]).status === 0 ? "python3" : "python";
// A virtual environment of its own, so nothing is installed into the system's Python
// (which PEP 668 distributions refuse anyway); node_modules is already ignored by git.
const VENV = resolve(root, "node_modules", ".cache", "edgecount-schemathesis");
const PYTHON = join(VENV, "bin", "python");
/** Schemathesis's command line, run by the environment's Python whatever PATH holds. */
const CLI = ["-c", "import sys; from schemathesis.cli import schemathesis; sys.argv[0] = 'schemathesis'; schemathesis()"];

/** Installs the pinned Schemathesis into the environment when it has another version or none. */
function ensureSchemathesis() {
  const pinned = readFileSync(REQUIREMENTS, "utf8").match(/^schemathesis==(\S+)$/m)[1];
  const installed = () =>
    existsSync(PYTHON)
      ? spawnSync(PYTHON, ["-c", "import importlib.metadata as m; print(m.version('schemathesis'))"], { encoding: "utf8" }).stdout?.trim()
      : undefined;
  if (installed() === pinned) return;
  if (!existsSync(PYTHON)) {
    const venv = spawnSync(SYSTEM_PYTHON, ["-m", "venv", VENV], { stdio: "inherit" });
    if (venv.status !== 0) throw new Error(`${SYSTEM_PYTHON} -m venv failed: Python 3 with venv is needed`);
  }
  const pip = spawnSync(PYTHON, ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", REQUIREMENTS], { stdio: "inherit" });
  if (pip.status !== 0 || installed() !== pinned) {
    throw new Error(`schemathesis ${pinned} is needed: ${PYTHON} -m pip install -r ${REQUIREMENTS}`);
  }
}

let fixtureClients = 0;
/** An administrator's request for the fixtures, each from a client of its own. */
async function call(svc, method, path, json) {
  const res = await svc.request(method, path, { headers: admin, json, ip: clientIp(++fixtureClients) });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${res.text}`);
  return res.json;
}

/** What the fuzz run needs to exist, as the variables the config reads. */
async function fixtures(svc) {
  const tenant = await call(svc, "POST", "/tenants", { label: "schemathesis", page_auto_create: true });
  const t = tenant.tenant_id;
  const counter = await call(svc, "POST", `/tenants/${t}`, { label: "fuzzed" });
  // Room for any delta the document allows (the hooks set its value to the lowest first).
  const incremented = await call(svc, "POST", `/tenants/${t}`, { label: "incremented", max_delta: MAX_SAFE });
  await call(svc, "POST", `/tenants/${t}/counters/${counter.counter_id}/inc`);
  const page = "fuzzed-page";
  await call(svc, "POST", `/tenants/${t}/pages/${page}/visit`);
  const key = await call(svc, "POST", `/v2/tenants/${t}/credentials`, {});
  const adminKey = await call(svc, "POST", "/v2/admin/credentials", {});
  const cursor = async (path) => {
    const next = (await call(svc, "GET", path)).next_cursor;
    if (!next) throw new Error(`${path}: no next_cursor`);
    return next;
  };
  return {
    EDGECOUNT_URL: svc.url.toString(),
    EDGECOUNT_ADMIN_KEY: ADMIN_KEY,
    EDGECOUNT_TENANT_ID: t,
    EDGECOUNT_COUNTER_ID: counter.counter_id,
    EDGECOUNT_INC_COUNTER_ID: incremented.counter_id,
    EDGECOUNT_PAGE_ID: page,
    EDGECOUNT_DELETED_PAGE_ID: "deleted-page",
    EDGECOUNT_CREDENTIAL_ID: key.credential_id,
    EDGECOUNT_ADMIN_CREDENTIAL_ID: adminKey.credential_id,
    EDGECOUNT_COUNTERS_CURSOR: await cursor(`/tenants/${t}/counters?limit=1`),
    EDGECOUNT_OPERATIONS_CURSOR: await cursor(`/v2/tenants/${t}/counters/${counter.counter_id}/operations?limit=1`),
    EDGECOUNT_RECONCILE_CURSOR: await cursor("/v2/admin/reconcile?limit=1"),
    EDGECOUNT_GITHUB_ORG: ORG,
  };
}

ensureSchemathesis();
const gh = await startFakeGitHub();
const svc = await startWorker({ vars: { GITHUB_ORGS: ORG, GITHUB_API_URL: gh.url }, assets: true });
let status = 1;
try {
  const env = { ...process.env, ...(await fixtures(svc)) };
  const args = ["--config-file", CONFIG, "run", "public/openapi.json", "--url", svc.url.toString(),
    "--phases", "examples,coverage,fuzzing,stateful", ...process.argv.slice(2)];
  // One seed unless told otherwise, so a CI run is the same run every time; a new seed
  // (`-- --seed N`) explores further.
  if (!args.includes("--seed")) args.push("--seed", SEED);
  console.log(`$ schemathesis ${args.join(" ")}`);
  const started = Date.now();
  const child = spawn(PYTHON, [...CLI, ...args], { env, stdio: "inherit" });
  status = await new Promise((done) => {
    child.on("error", (e) => (console.error(`${PYTHON}: ${e.message}`), done(1)));
    child.on("exit", (code, signal) => done(code ?? (signal ? 1 : 0)));
  });
  console.log(`schemathesis exited ${status} after ${((Date.now() - started) / 1000).toFixed(0)} s`);
} finally {
  await svc.close();
  await gh.close();
}
process.exit(status);
