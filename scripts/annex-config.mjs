// The annex Worker's wrangler configuration, written to build/annex/wrangler.json from
// wrangler.toml, so there is one place to edit: the same D1 database, KV namespace,
// R2 bucket, brakes, variables and observability as the edge Worker, the edge's Durable
// Objects bound by script name, no public address, and the scheduled jobs' crons
// (RETENTION_CRON and GITHUB_REFRESH_CRON). ARCHITECTURE.md, two Workers.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { experimental_readRawConfig } from "wrangler";

const root = resolve(import.meta.dirname, "..");
export const ANNEX_CONFIG = join(root, "build", "annex", "wrangler.json");

// The edge's own: its name, entry point, build, static assets, addresses, the classes'
// migrations and the binding to the annex. Everything else is shared as it is.
const EDGE_ONLY = new Set(["name", "main", "build", "assets", "migrations", "services", "triggers", "routes", "route", "workers_dev", "preview_urls", "env"]);
// config.rs's defaults, for a wrangler.toml that leaves the vars out.
const DEFAULT_CRONS = { RETENTION_CRON: "17 3 * * *", GITHUB_REFRESH_CRON: "*/5 * * * *" };

/** The annex's configuration for the edge's `wrangler.toml` (its raw form). */
export function annexConfig(edge) {
  const service = (edge.services ?? []).find((s) => s.binding === "ANNEX")?.service;
  if (!service) throw new Error("wrangler.toml: the [[services]] binding ANNEX (the annex Worker's name) is missing");
  const crons = Object.entries(DEFAULT_CRONS).map(([name, fallback]) => edge.vars?.[name] ?? fallback);
  // Any cron but RETENTION_CRON refreshes GitHub: the same one twice would never do it.
  if (crons[0] === crons[1]) throw new Error(`wrangler.toml: RETENTION_CRON and GITHUB_REFRESH_CRON are the same (${crons[0]}); the GitHub refresh would never run`);
  const shared = Object.fromEntries(Object.entries(edge).filter(([key]) => !EDGE_ONLY.has(key)));
  return {
    ...shared,
    name: service,
    main: "index.js",
    // Reached only through the edge's service binding.
    workers_dev: false,
    preview_urls: false,
    durable_objects: {
      bindings: (edge.durable_objects?.bindings ?? []).map((b) => ({ ...b, script_name: edge.name })),
    },
    // Paths in a configuration file are relative to it: drop the edge's, which the annex
    // does not use (D1 migrations are applied through the edge's configuration).
    d1_databases: (edge.d1_databases ?? []).map(({ migrations_dir: _, ...db }) => db),
    triggers: { crons },
  };
}

/** Writes build/annex/wrangler.json from wrangler.toml. */
export function writeAnnexConfig() {
  const { rawConfig } = experimental_readRawConfig({ config: join(root, "wrangler.toml") });
  mkdirSync(join(root, "build", "annex"), { recursive: true });
  writeFileSync(ANNEX_CONFIG, JSON.stringify(annexConfig(rawConfig), null, 2) + "\n");
  return ANNEX_CONFIG;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(writeAnnexConfig());
}
