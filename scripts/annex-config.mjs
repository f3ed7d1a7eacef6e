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

/** The annex's configuration for the edge's `wrangler.toml` (its raw form). */
export function annexConfig(edge) {
  const service = (edge.services ?? []).find((s) => s.binding === "ANNEX")?.service;
  if (!service) throw new Error("wrangler.toml: the [[services]] binding ANNEX (the annex Worker's name) is missing");
  const vars = edge.vars ?? {};
  const crons = [vars.RETENTION_CRON, vars.GITHUB_REFRESH_CRON].filter(Boolean);
  // Paths in a configuration file are relative to it: drop the edge's, which the annex
  // does not use (D1 migrations are applied through the edge's configuration).
  const d1 = (edge.d1_databases ?? []).map(({ migrations_dir: _, ...db }) => db);
  return {
    name: service,
    main: "index.js",
    compatibility_date: edge.compatibility_date,
    ...(edge.compatibility_flags ? { compatibility_flags: edge.compatibility_flags } : {}),
    // Reached only through the edge's service binding.
    workers_dev: false,
    preview_urls: false,
    durable_objects: {
      bindings: (edge.durable_objects?.bindings ?? []).map((b) => ({ ...b, script_name: edge.name })),
    },
    kv_namespaces: edge.kv_namespaces ?? [],
    d1_databases: d1,
    ...(edge.r2_buckets ? { r2_buckets: edge.r2_buckets } : {}),
    ratelimits: edge.ratelimits ?? [],
    vars,
    ...(edge.observability ? { observability: edge.observability } : {}),
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
