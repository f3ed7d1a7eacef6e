#!/usr/bin/env node
// `npm run setup:cloudflare` (after `npx wrangler login`): everything a first deployment
// needs on the account, each step only when it is missing, so a second run changes
// nothing.
//   1. the D1 database and the KV namespace wrangler.toml names (and, with --backups,
//      the R2 bucket for daily backups), created when missing — ids already in
//      wrangler.toml are kept when the account has them;
//   2. their ids written into wrangler.toml in place (comments and other edits kept);
//   3. D1 migrations applied to the remote database;
//   4. ADMIN_API_KEY: a random key stored with `wrangler secret put` in both Workers (the
//      edge and the annex; wrangler.toml's ANNEX service names it), printed once. A
//      secret put to a Worker not yet deployed creates it empty: that is what lets the
//      first deploy bind the two to each other. A secret the edge has and the annex
//      lacks (an installation from before the annex) is named, with the command that
//      adds it: its value cannot be read back.
// Then it prints the next step (`npm run deploy`). It drives the `wrangler` on PATH,
// which `npm run` makes the project's own.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const configPath = join(root, "wrangler.toml");
const args = process.argv.slice(2);
const USAGE = "usage: npm run setup:cloudflare [-- --backups]";

const D1_NAME = "edgecount";
const KV_BINDING = "GITHUB_CACHE";
const BUCKET = "edgecount-backups";
const ANNEX = "edgecount-annex";
const PLACEHOLDER_DB = "00000000-0000-0000-0000-000000000000";
const PLACEHOLDER_KV = "00000000000000000000000000000000";

function say(line) {
  console.log(line);
}

function fail(message) {
  console.error(`setup: ${message}`);
  process.exit(1);
}

/** Runs wrangler; its output, or a failure naming the command. */
function wrangler(argv, { input, allowFailure = false } = {}) {
  const run = spawnSync("wrangler", argv, {
    cwd: root,
    encoding: "utf8",
    input,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  if (run.error) fail(`could not run wrangler (${run.error.code ?? run.error.message}); run this through npm run setup:cloudflare`);
  if (run.status !== 0 && !allowFailure) {
    const detail = `${run.stderr}\n${run.stdout}`.trim().split("\n").slice(-6).join("\n");
    fail(`\`wrangler ${argv.join(" ")}\` failed:\n${detail}`);
  }
  return { ok: run.status === 0, out: run.stdout, err: run.stderr };
}

/** The JSON value in wrangler's output (it may print a banner before it). */
function jsonIn(text, what) {
  const start = text.search(/^[[{]/m);
  try {
    return JSON.parse(text.slice(start));
  } catch {
    fail(`wrangler's ${what} was not the JSON expected:\n${text.slice(0, 500)}`);
  }
}

function matchIn(text, pattern, what) {
  const m = pattern.exec(text);
  if (!m) fail(`could not find the ${what} in wrangler's output:\n${text.slice(0, 800)}`);
  return m[1];
}

/** The `[[table]]` block whose lines include `key = "value"`: [start, end) offsets. */
function block(toml, table, key, value) {
  const header = new RegExp(`^\\[\\[${table}\\]\\][^\\n]*$`, "gm");
  for (let m; (m = header.exec(toml)); ) {
    const start = m.index;
    // The block ends where the next table header starts a line.
    const next = toml.slice(m.index + m[0].length).search(/^\[/m);
    const end = next < 0 ? toml.length : m.index + m[0].length + next;
    if (new RegExp(`^\\s*${key}\\s*=\\s*"${value}"`, "m").test(toml.slice(start, end))) return [start, end];
  }
  return null;
}

/** The value of `field = "…"` inside the block, if set. */
function fieldOf(toml, table, key, value, field) {
  const found = block(toml, table, key, value);
  if (!found) return undefined;
  return new RegExp(`^\\s*${field}\\s*=\\s*"([^"]*)"`, "m").exec(toml.slice(...found))?.[1];
}

/** `toml` with `field = "…"` set to `id` inside the block; unchanged when it already is. */
function setField(toml, table, key, value, field, id) {
  const found = block(toml, table, key, value);
  if (!found) fail(`wrangler.toml has no [[${table}]] with ${key} = "${value}"; add it back (see the README) and run again`);
  const [start, end] = found;
  const body = toml.slice(start, end);
  const line = new RegExp(`^(\\s*${field}\\s*=\\s*)"[^"]*"`, "m");
  const updated = line.test(body) ? body.replace(line, `$1"${id}"`) : body.replace(/\n?$/, `\n${field} = "${id}"\n`);
  return toml.slice(0, start) + updated + toml.slice(end);
}

/** The commented-out backups binding, switched on. */
function enableBackups(toml) {
  if (block(toml, "r2_buckets", "binding", "BACKUPS")) return toml;
  const commented = /^# \[\[r2_buckets\]\]\n# binding = "BACKUPS"\n# bucket_name = "[^"]*"$/m;
  const enabled = `[[r2_buckets]]\nbinding = "BACKUPS"\nbucket_name = "${BUCKET}"`;
  return commented.test(toml) ? toml.replace(commented, enabled) : `${toml.trimEnd()}\n\n${enabled}\n`;
}

function main() {
  const unknown = args.filter((a) => a !== "--backups");
  if (unknown.length) {
    console.error(`setup: unknown argument ${unknown[0]}\n${USAGE}`);
    process.exit(2);
  }
  const backups = args.includes("--backups");

  const who = wrangler(["whoami"], { allowFailure: true });
  if (!who.ok || /not authenticated|You are not logged in/i.test(who.out + who.err)) {
    fail("wrangler is not logged in: run `npx wrangler login` (or set CLOUDFLARE_API_TOKEN), then run this again");
  }

  // 1. Resources, each created only when missing. An id already in wrangler.toml (put
  // there by hand, or by an earlier run) is kept if the account has it.
  const configured = readFileSync(configPath, "utf8");
  const d1Name = fieldOf(configured, "d1_databases", "binding", "DB", "database_name") ?? D1_NAME;
  const givenDatabase = fieldOf(configured, "d1_databases", "binding", "DB", "database_id");
  const givenNamespace = fieldOf(configured, "kv_namespaces", "binding", KV_BINDING, "id");
  const databases = jsonIn(wrangler(["d1", "list", "--json"]).out, "database list");
  let databaseId;
  if (givenDatabase && givenDatabase !== PLACEHOLDER_DB) {
    if (!databases.some((d) => d.uuid === givenDatabase)) {
      fail(`wrangler.toml's database_id ${givenDatabase} is not a D1 database of this account; put back ${PLACEHOLDER_DB} to have one found or created`);
    }
    databaseId = givenDatabase;
    say(`D1 database ${d1Name}: exists (${databaseId}, as wrangler.toml names it)`);
  } else if ((databaseId = databases.find((d) => d.name === d1Name)?.uuid)) {
    say(`D1 database ${d1Name}: exists (${databaseId})`);
  } else {
    const created = wrangler(["d1", "create", d1Name]).out;
    databaseId = matchIn(created, /"?database_id"?\s*[:=]\s*"([0-9a-f-]{36})"/, "new database's id");
    say(`D1 database ${d1Name}: created (${databaseId})`);
  }

  const namespaces = jsonIn(wrangler(["kv", "namespace", "list"]).out, "namespace list");
  let namespaceId;
  if (givenNamespace && givenNamespace !== PLACEHOLDER_KV) {
    if (!namespaces.some((n) => n.id === givenNamespace)) {
      fail(`wrangler.toml's ${KV_BINDING} id ${givenNamespace} is not a KV namespace of this account; put back ${PLACEHOLDER_KV} to have one found or created`);
    }
    namespaceId = givenNamespace;
    say(`KV namespace ${KV_BINDING}: exists (${namespaceId}, as wrangler.toml names it)`);
  } else if ((namespaceId = namespaces.find((n) => n.title === KV_BINDING)?.id)) {
    say(`KV namespace ${KV_BINDING}: exists (${namespaceId})`);
  } else {
    const created = wrangler(["kv", "namespace", "create", KV_BINDING]).out;
    namespaceId = matchIn(created, /"?id"?\s*[:=]\s*"([0-9a-f]{32})"/, "new namespace's id");
    say(`KV namespace ${KV_BINDING}: created (${namespaceId})`);
  }

  if (backups) {
    const buckets = wrangler(["r2", "bucket", "list"]).out;
    if (new RegExp(`^name:\\s+${BUCKET}\\s*$`, "m").test(buckets)) {
      say(`R2 bucket ${BUCKET}: exists`);
    } else {
      wrangler(["r2", "bucket", "create", BUCKET]);
      say(`R2 bucket ${BUCKET}: created`);
    }
  }

  // 2. Their ids in wrangler.toml, written only when something changed.
  const before = readFileSync(configPath, "utf8");
  let toml = setField(before, "d1_databases", "binding", "DB", "database_id", databaseId);
  toml = setField(toml, "kv_namespaces", "binding", KV_BINDING, "id", namespaceId);
  if (backups) toml = enableBackups(toml);
  if (toml !== before) {
    writeFileSync(configPath, toml);
    say("wrangler.toml: ids written");
  } else {
    say("wrangler.toml: up to date");
  }
  // 3. Migrations: wrangler applies only those the remote database lacks.
  wrangler(["d1", "migrations", "apply", d1Name, "--remote"]);
  say(`D1 migrations: applied to ${d1Name} (remote)`);

  // 4. The administrator key, in both Workers: made and shown once; an existing one is
  // kept. Before the first deploy there is no Worker, so no secrets; any other failure
  // stops here, since guessing "none" would replace a key in use.
  const annex = fieldOf(configured, "services", "binding", "ANNEX", "service") ?? ANNEX;
  const secretsOf = (worker) => {
    const named = worker === annex ? ["--name", annex] : [];
    const listed = wrangler(["secret", "list", ...named], { allowFailure: true });
    if (!listed.ok && !/Worker "[^"]*" not found/.test(listed.err + listed.out)) {
      fail(`\`wrangler secret list\` failed:\n${(listed.err + listed.out).trim().split("\n").slice(-6).join("\n")}`);
    }
    return listed.ok ? jsonIn(listed.out, "secret list").map((s) => s.name) : [];
  };
  const edgeSecrets = secretsOf("edge");
  const annexSecrets = secretsOf(annex);
  let key = null;
  if (edgeSecrets.includes("ADMIN_API_KEY")) {
    say("ADMIN_API_KEY: already set (kept; not shown)");
  } else {
    key = randomBytes(32).toString("base64url");
    wrangler(["secret", "put", "ADMIN_API_KEY"], { input: key });
    wrangler(["secret", "put", "ADMIN_API_KEY", "--name", annex], { input: key });
    say(`ADMIN_API_KEY: stored as a secret of both Workers (the edge and ${annex})`);
  }
  const missing = edgeSecrets.filter((name) => !annexSecrets.includes(name));
  if (missing.length) {
    say("");
    say(`The annex Worker ${annex} lacks secrets the edge has: ${missing.join(", ")}.`);
    say("Put the same values there (they cannot be read back), then deploy:");
    for (const name of missing) say(`  npx wrangler secret put ${name} --name ${annex}`);
  }

  say("");
  if (key) {
    say("Your administrator key (shown once; keep it in a password manager):");
    say(`  ${key}`);
    say("");
  }
  say("Next: npm run deploy");
}

main();
