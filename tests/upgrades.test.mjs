// What keeps an upgrade safe, checked without a deployment: the Durable Object migrations
// in wrangler.toml only ever grow (a changed or removed tag would strand objects' data),
// and every D1 migration splits into single statements the way wrangler applies it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { experimental_readRawConfig, unstable_splitSqlQuery } from "wrangler";
import { root } from "./helpers/worker.mjs";

// The migrations released so far, as they were released. Append new ones; never edit these.
const RELEASED = [
  { tag: "v1", new_sqlite_classes: ["CounterObject", "RateLimiter"] },
  { tag: "v2", new_sqlite_classes: ["PageObject", "SaltKeeper"] },
  { tag: "v3", new_sqlite_classes: ["GitHubFetcher"] },
  { tag: "v4", deleted_classes: ["RateLimiter"] },
];

test("wrangler.toml's Durable Object migrations are append-only", () => {
  const { rawConfig } = experimental_readRawConfig({ config: join(root, "wrangler.toml") });
  assert.deepEqual(rawConfig.migrations.slice(0, RELEASED.length), RELEASED);
  const tags = rawConfig.migrations.map((m) => m.tag);
  assert.equal(new Set(tags).size, tags.length, "tags are unique");
});

test("every D1 migration splits into single statements as wrangler applies it", () => {
  const dir = join(root, "migrations");
  for (const name of readdirSync(dir).filter((f) => f.endsWith(".sql"))) {
    for (const statement of unstable_splitSqlQuery(readFileSync(join(dir, name), "utf8"))) {
      // Without string literals and a trigger's body, no `;` may be left: wrangler
      // prepares each piece alone, and D1 would run only the first of two.
      // (A file of one statement comes back whole: its comments and final `;` too.)
      const bare = statement
        .replace(/'(?:[^']|'')*'/g, "''")
        .replace(/--.*$/gm, "")
        .trim()
        .replace(/;$/, "")
        .replace(/\bBEGIN\b[\s\S]*\bEND$/i, "");
      assert.ok(!bare.includes(";"), `${name}: several statements in one piece:\n${statement.slice(0, 300)}`);
    }
  }
});
