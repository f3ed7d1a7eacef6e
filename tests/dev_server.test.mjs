// The README's first command, for real: `npm run dev`'s script builds, migrates a local
// D1 and serves through `wrangler dev` with the development admin key. One smoke test;
// everything else is tested through Miniflare directly.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually, root } from "./helpers/worker.mjs";
import { examples, run } from "./helpers/readme.mjs";

const freePort = () =>
  new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

let dev;
let base;
let output = "";
const state = mkdtempSync(join(tmpdir(), "edgecount-dev-"));

before(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // Its own process group, so stopping it also stops the workerd processes it starts.
  dev = spawn(process.execPath, ["scripts/dev.mjs", "--persist-to", state], {
    cwd: root,
    env: { ...process.env, PORT: String(port) },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  dev.stdout.on("data", (d) => (output += d));
  dev.stderr.on("data", (d) => (output += d));
  const up = await eventually(async () => {
    try {
      return (await fetch(`${base}/healthz`)).ok;
    } catch {
      return false;
    }
  }, 120_000, 250);
  assert.ok(up, `wrangler dev did not come up:\n${output}`);
});

after(() => {
  try {
    process.kill(-dev.pid, "SIGKILL");
  } catch {}
  rmSync(state, { recursive: true, force: true });
});

test("npm run dev serves the API with the development admin key", async () => {
  // .dev.vars is created from .dev.vars.example on first run; a developer may have
  // changed the key since.
  const adminKey = readFileSync(join(root, ".dev.vars"), "utf8").match(/^ADMIN_API_KEY=(.*)$/m)?.[1]?.trim();
  assert.ok(adminKey, ".dev.vars names an ADMIN_API_KEY");
  const key = { "X-API-Key": adminKey };
  const tenant = await fetch(`${base}/tenants`, { method: "POST", headers: key, body: JSON.stringify({ label: "dev-smoke" }) });
  assert.equal(tenant.status, 201, output);
  const { tenant_id } = await tenant.json();
  const counter = await fetch(`${base}/tenants/${tenant_id}`, { method: "POST", headers: key, body: "{}" });
  assert.equal(counter.status, 201);
  const { counter_id } = await counter.json();
  const inc = await fetch(`${base}/tenants/${tenant_id}/${counter_id}/inc?delta=2`, { method: "POST" });
  assert.equal(inc.status, 200);
  assert.equal((await inc.json()).value, 2);
  assert.equal(inc.headers.get("x-ratelimit-limit"), "10", "wrangler.toml's default limits apply");
  const unauthorized = await fetch(`${base}/tenants`, { method: "POST", body: JSON.stringify({ label: "x" }) });
  assert.equal(unauthorized.status, 401);
  // The annex Worker runs beside it: an export is its route.
  const exported = await fetch(`${base}/tenants/${tenant_id}/export`, { headers: key });
  assert.equal(exported.status, 200, output);
  const lines = (await exported.text()).trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(lines.find((l) => l.type === "counter")?.value, 2);
});

test("every curl example in the README prints what the README says it prints", async () => {
  const adminKey = readFileSync(join(root, ".dev.vars"), "utf8").match(/^ADMIN_API_KEY=(.*)$/m)?.[1]?.trim();
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const commands = examples(readme).flatMap((b) => b.commands).filter((c) => c.text.startsWith("curl"));
  assert.ok(commands.length >= 20, `${commands.length} examples found`);
  assert.ok(commands.filter((c) => c.expected.length).length >= 15, "most examples say what they print");
  const scratch = mkdtempSync(join(tmpdir(), "edgecount-readme-"));
  const problems = await run(readme, { base, adminKey, scratch });
  rmSync(scratch, { recursive: true, force: true });
  assert.deepEqual(problems, [], JSON.stringify(problems, null, 2));
});
