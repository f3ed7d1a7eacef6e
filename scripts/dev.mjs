// `npm run dev`: builds, applies the D1 migrations to the local database, and serves the
// Workers on http://127.0.0.1:8787 with local Durable Objects, D1 and KV under
// .wrangler/state. Creates .dev.vars from .dev.vars.example on first run.
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { ANNEX_CONFIG } from "./annex-config.mjs";
import { build } from "./build.mjs";

const root = resolve(import.meta.dirname, "..");
const wrangler = join(root, "node_modules", ".bin", "wrangler");
const port = process.env.PORT ?? "8787";
// `--persist-to DIR` keeps local state somewhere other than .wrangler/state.
const at = process.argv.indexOf("--persist-to");
const persist = at > 0 && process.argv[at + 1] ? ["--persist-to", process.argv[at + 1]] : [];

if (!existsSync(join(root, ".dev.vars"))) {
  copyFileSync(join(root, ".dev.vars.example"), join(root, ".dev.vars"));
  console.log("dev: created .dev.vars from .dev.vars.example (admin key: dev-admin-key)");
}

build();
// The annex reads its secrets from a .dev.vars beside its configuration: the same ones.
copyFileSync(join(root, ".dev.vars"), join(dirname(ANNEX_CONFIG), ".dev.vars"));

const run = (args) => {
  const result = spawnSync(wrangler, args, { cwd: root, stdio: "inherit" });
  if (result.status !== 0) process.exit(result.status ?? 1);
};
run(["d1", "migrations", "apply", "DB", "--local", ...persist]);
// Both Workers in one process: the edge answers on the port and hands the annex its
// routes (stats, export and import, the GitHub cache) through the ANNEX binding.
run(["dev", "--config", "wrangler.toml", "--config", ANNEX_CONFIG, "--ip", "127.0.0.1", "--port", port, ...persist]);
