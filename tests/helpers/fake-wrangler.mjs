#!/usr/bin/env node
// A stand-in for the `wrangler` CLI, for tests of scripts that drive it (npm run
// setup:cloudflare). Put a directory on PATH holding a `wrangler` shim that execs this file,
// and point FAKE_WRANGLER_STATE at a directory of its own.
//
// It mirrors wrangler 4.86.0 (node_modules/wrangler/wrangler-dist/cli.js), run the way a
// script runs it: stdin and stdout not terminals, so wrangler is "non-interactive"
// (isNonInteractiveOrCI) and chalk prints no colours. What goes to stdout and what to
// stderr, the texts and the exit codes were read from that source and then compared, byte
// for byte apart from ids, dates and timings, with the real 4.86.0 run against a local
// stand-in for the Cloudflare API. Where each format comes from in wrangler's source:
//
//   every command  banner: printWranglerBanner ("\n ⛅️ wrangler 4.86.0\n" + "─" x 19, stdout),
//                  printed unless the command's behaviour.printBanner says otherwise
//                  (createHandler in register-yargs-command) or WRANGLER_HIDE_BANNER=true.
//                  Logger: log/info -> console.log (stdout); warn/error -> console.warn/error
//                  (stderr) formatted by esbuild's formatMessagesSync with color: true
//                  ("✘ [ERROR] …" / "▲ [WARNING] …", later lines of the message as notes);
//                  logger.table -> cli-table3. Errors: handleError (logger.log("") then
//                  logger.error), exit code 1 (main(...).catch), then the signal-exit hook
//                  in appendToDebugLogFile prints `🪵  Logs were written to "…"` (stderr).
//                  Unknown arguments: the yargs .strict() parser in createCLIParser ->
//                  CommandLineArgsError ("Unknown argument: x"); wrangler then prints the
//                  command's help on stdout, which this fake leaves out.
//   whoami         whoami(), printUserEmail, printAccountList, printTokenPermissions
//                  (DefaultScopes); not logged in: "You are not authenticated. Please run
//                  `wrangler login`." with exit 0; --json: logger.json / createFatalError.
//   needing auth   requireAuth: not logged in and non-interactive -> UserError "In a
//                  non-interactive environment, it's necessary to set a CLOUDFLARE_API_TOKEN
//                  …"; account choice: getAccountId / getAccountChoices.
//   d1 list        d1ListCommand (--json: JSON.stringify(dbs, null, 2), no banner;
//                  otherwise logger.table) and listDatabases.
//   d1 create      d1CreateCommand, createD1Database (7502 -> "A database with that name
//                  already exists"), createdResourceConfig + formatConfigSnippet (smol-toml
//                  stringify for wrangler.toml), friendlyBindingNames, getValidBindingName.
//   d1 migrations apply
//                  d1MigrationsApplyCommand, getMigrationsPath, getMigrationNames,
//                  initMigrationsTable / listAppliedMigrations (run with json: true, which
//                  leaves the log level at "error" if they throw), executeRemotely, logResult,
//                  confirm (dialogs: "? …" + "🤖 Using fallback value in non-interactive
//                  context: yes"), printResourceLocation, getDatabaseInfoFromConfig; the
//                  statement count follows splitSqlIntoStatements (d1/splitter).
//   kv namespace list
//                  kvNamespaceListCommand (printBanner: false; JSON.stringify(list, null, "  ")).
//   kv namespace create
//                  kvNamespaceCreateCommand: title = `${env ? env + "-" : ""}${namespace}` +
//                  ("_preview" with --preview); error 10014 -> 'A KV namespace with the
//                  title "…" already exists.' Ids are 32 hex digits.
//   r2 bucket list tableFromR2BucketsListResponse + formatLabelledValues, r2BucketListCommand.
//   r2 bucket create
//                  r2BucketCreateCommand, isValidR2BucketName / bucketFormatMessage; an
//                  existing bucket is the API's error 10004 rendered by throwFetchError.
//   secret list    secretListCommand (--format json by default, no banner; "pretty":
//                  "Secret Name: …"); a missing Worker -> 'Worker "…" not found.' (10007,
//                  isWorkerNotFoundError).
//   secret put     secretPutCommand: the value is read from stdin when stdin is not a TTY
//                  (readFromStdin, then trimTrailingWhitespace). A Worker that does not exist
//                  yet is created as a draft (createDraftWorker: confirm() answers its
//                  fallback "yes" when non-interactive, "🌀 Creating new Worker …"), then
//                  the secret is uploaded.
//   deploy         only the API's refusals that decide the order of a two-Worker deploy
//                  (see deploy() below); nothing is built or bundled.
//   --version / -v prints "4.86.0".
//
// The Cloudflare API side is the state in $FAKE_WRANGLER_STATE/state.json (created on
// first use; a test may seed it): accounts, user email, token scopes, loggedIn, D1 databases
// and the migrations applied to each, KV namespaces, R2 buckets, Workers and their secrets
// (values kept, it is a test). Texts of API errors were taken from real responses:
// "The database <id> could not be found [code: 7404]", "The bucket you tried to create
// already exists, and you own it. [code: 10004]".
// Every invocation appends {argv, stdin} to $FAKE_WRANGLER_STATE/calls.jsonl (stdin is read,
// and recorded, only for `secret put`; otherwise null).
// FAKE_WRANGLER_LOGGED_OUT=1 (or "loggedIn": false in the state) acts as if `wrangler login`
// had never run. Anything else this fake does not know exits 1 with a message on stderr.
// Not modelled: interactive prompts, colours, CLOUDFLARE_API_TOKEN auth, local D1,
// command help texts, writing bindings into wrangler.json(c) beyond a plain JSON rewrite.

import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import util from "node:util";

const VERSION = "4.86.0";

// ---------------------------------------------------------------- output (Logger)

const LEVELS = { none: -1, error: 0, warn: 1, info: 2, log: 3, debug: 4 };
const initialLogLevel = LEVELS[(process.env.WRANGLER_LOG ?? "").toLowerCase()] !== undefined
  ? process.env.WRANGLER_LOG.toLowerCase()
  : "log";
let logLevel = initialLogLevel;
let sawErrorLog = false;

const out = (s) => process.stdout.write(s);
const err = (s) => process.stderr.write(s);
const allowed = (level) => LEVELS[logLevel] >= LEVELS[level];

function underlineUrls(text) {
  // esbuild underlines https URLs in notes, without trailing punctuation.
  return text.replace(/https:\/\/\S+/g, (url) => {
    const m = url.match(/^(.*?)([.,;:!?)\]}]*)$/);
    return `\x1b[4m${m[1]}\x1b[0m${m[2]}`;
  });
}

// esbuild.formatMessagesSync([{ text, notes }], { color: true, kind }) as used by
// Logger.formatMessage: the first line is the text, every later line a note.
function formatMessage(kind, message) {
  const [first, ...rest] = String(message).split("\n");
  const head = kind === "error"
    ? "\x1b[31m✘ \x1b[41;31m[\x1b[41;97mERROR\x1b[41;31m]\x1b[0m "
    : "\x1b[33m▲ \x1b[43;33m[\x1b[43;30mWARNING\x1b[43;33m]\x1b[0m ";
  let s = `${head}\x1b[1m${first}\x1b[0m\n\n`;
  if (rest.length > 0) {
    s += rest.map((line) => `  ${underlineUrls(line)}\n`).join("") + "\n";
  }
  return s;
}

const logger = {
  log: (...args) => { if (allowed("log")) out(util.format(...args) + "\n"); },
  warn: (message) => { if (allowed("warn")) err(formatMessage("warning", message) + "\n"); },
  error: (message) => {
    sawErrorLog = true;
    if (allowed("error")) err(formatMessage("error", message) + "\n");
  },
};

function stringWidth(s) {
  // string-width 4 as cli-table3 0.6.3 uses it: emoji 2 columns, a variation selector 1.
  let w = 0;
  for (const ch of s.replace(/\x1b\[[0-9;]*m/g, "")) {
    const cp = ch.codePointAt(0);
    if (cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f)) continue;
    if (cp >= 0x300 && cp <= 0x36f) continue;
    if (/\p{Extended_Pictographic}/u.test(ch) && cp > 0xff) w += 2;
    else if ((cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) ||
      (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xfe30 && cp <= 0xfe4f) ||
      (cp >= 0xff00 && cp <= 0xff60) || (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x20000 && cp <= 0x3fffd)) w += 2;
    else w += 1;
  }
  return w;
}

// Logger.table: cli-table3 with its default box characters, a rule between all rows.
function table(rows, head = rows.length ? Object.keys(rows[0]) : []) {
  const data = rows.map((row) => head.map((k) => String(row[k] ?? "")));
  if (head.length === 0) return logger.log("");
  const widths = head.map((h, i) => Math.max(stringWidth(h), ...data.map((r) => stringWidth(r[i]))) + 2);
  const rule = (l, m, r) => l + widths.map((w) => "─".repeat(w)).join(m) + r;
  const line = (cells) => "│" + cells.map((c, i) => ` ${c}${" ".repeat(widths[i] - 2 - stringWidth(c))} `).join("│") + "│";
  const lines = [rule("┌", "┬", "┐"), line(head)];
  for (const r of data) lines.push(rule("├", "┼", "┤"), line(r));
  lines.push(rule("└", "┴", "┘"));
  logger.log(lines.join("\n"));
}

function banner() {
  if ((process.env.WRANGLER_HIDE_BANNER ?? "").toLowerCase() === "true") return;
  const text = ` \u26C5\uFE0F wrangler ${VERSION}`;
  logger.log("\n" + text + "\n" + "─".repeat(text.length));
}

// dialogs.ts confirm() when isNonInteractiveOrCI()
function confirmNonInteractive(text, fallbackValue = true) {
  logger.log(`? ${text}`);
  logger.log(`🤖 Using fallback value in non-interactive context: ${fallbackValue ? "yes" : "no"}`);
  return fallbackValue;
}

function debugLogPath() {
  const fromEnv = process.env.WRANGLER_LOG_PATH;
  const legacy = path.join(os.homedir(), ".wrangler");
  const globalDir = fs.existsSync(legacy) && fs.statSync(legacy).isDirectory()
    ? legacy
    : path.join(process.env.XDG_CONFIG_HOME || path.join(os.homedir(), ".config"), ".wrangler");
  const dir = fromEnv || path.join(globalDir, "logs");
  const date = new Date().toISOString().replaceAll(":", "-").replace(".", "_").replace("T", "_").replace("Z", "");
  return path.resolve(dir.endsWith(".log") ? dir : path.join(dir, `wrangler-${date}.log`));
}

class UserError extends Error {}
class CommandLineArgsError extends UserError {}
class APIError extends Error {
  constructor(resource, errors) {
    super(`A request to the Cloudflare API (${resource}) failed.`);
    this.errors = errors;
    this.code = errors[0]?.code;
  }
  render() {
    const notes = this.errors.map((e) => (e.code ? `${e.message} [code: ${e.code}]` : e.message));
    notes.push("", "If you think this is a bug, please open an issue at: https://github.com/cloudflare/workers-sdk/issues/new/choose");
    return [this.message, ...notes].join("\n");
  }
}
class NotSupported extends Error {}

// ---------------------------------------------------------------- state

const stateDir = process.env.FAKE_WRANGLER_STATE;
if (!stateDir) {
  err("fake-wrangler: set FAKE_WRANGLER_STATE to a directory for its state\n");
  process.exit(1);
}
fs.mkdirSync(stateDir, { recursive: true });
const statePath = path.join(stateDir, "state.json");

const DEFAULT_SCOPES = [
  "account:read", "user:read", "workers:write", "workers_kv:write", "workers_routes:write",
  "workers_scripts:write", "workers_tail:read", "d1:write", "pages:write", "zone:read",
  "ssl_certs:write", "ai:write", "ai-search:write", "ai-search:run", "queues:write",
  "pipelines:write", "secrets_store:write", "artifacts:write", "flagship:write",
  "containers:write", "cloudchamber:write", "connectivity:admin", "email_routing:write",
  "email_sending:write", "browser:write", "offline_access",
];

function loadState() {
  const s = fs.existsSync(statePath) ? JSON.parse(fs.readFileSync(statePath, "utf8")) : {};
  s.loggedIn ??= true;
  s.email ??= "user@example.com";
  s.accounts ??= [{ id: "4f8a3b2c1d0e9f8a7b6c5d4e3f2a1b0c", name: "User's Account" }];
  s.scopes ??= DEFAULT_SCOPES;
  s.d1 ??= [];
  s.d1Migrations ??= {};
  s.kv ??= [];
  s.r2 ??= [];
  s.workers ??= {};
  return s;
}
function saveState(s) {
  const tmp = `${statePath}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(s, null, 2) + "\n");
  fs.renameSync(tmp, statePath);
}
const state = loadState();
if (!fs.existsSync(statePath)) saveState(state);
const loggedIn = () => state.loggedIn && !["1", "true"].includes(process.env.FAKE_WRANGLER_LOGGED_OUT ?? "");

// ---------------------------------------------------------------- config files

function parseToml(src) {
  let i = 0;
  const root = {};
  let current = root;
  const peek = () => src[i];
  const skipWs = () => { while (i < src.length && (src[i] === " " || src[i] === "\t")) i++; };
  const skipWsNlComments = () => {
    for (;;) {
      while (i < src.length && /[ \t\r\n]/.test(src[i])) i++;
      if (src[i] === "#") { while (i < src.length && src[i] !== "\n") i++; continue; }
      return;
    }
  };
  const fail = (msg) => { throw new UserError(`fake-wrangler: cannot parse TOML (${msg}) at offset ${i}`); };
  function basicString() {
    let s = "";
    if (src.startsWith('"""', i)) {
      i += 3;
      if (src[i] === "\n") i++; else if (src.startsWith("\r\n", i)) i += 2;
      while (!src.startsWith('"""', i)) { if (i >= src.length) fail("open string"); s += src[i] === "\\" ? escape() : src[i++]; }
      i += 3;
      return s;
    }
    i++;
    while (src[i] !== '"') { if (i >= src.length || src[i] === "\n") fail("open string"); s += src[i] === "\\" ? escape() : src[i++]; }
    i++;
    return s;
  }
  function escape() {
    const c = src[i + 1];
    i += 2;
    const map = { b: "\b", t: "\t", n: "\n", f: "\f", r: "\r", '"': '"', "\\": "\\" };
    if (c in map) return map[c];
    if (c === "u" || c === "U") {
      const n = c === "u" ? 4 : 8;
      const cp = parseInt(src.slice(i, i + n), 16);
      i += n;
      return String.fromCodePoint(cp);
    }
    if (c === "\n" || c === "\r" || c === " ") { while (/[ \t\r\n]/.test(src[i])) i++; return ""; }
    return fail("bad escape");
  }
  function literalString() {
    if (src.startsWith("'''", i)) {
      i += 3;
      if (src[i] === "\n") i++;
      const end = src.indexOf("'''", i);
      const s = src.slice(i, end);
      i = end + 3;
      return s;
    }
    const end = src.indexOf("'", i + 1);
    const s = src.slice(i + 1, end);
    i = end + 1;
    return s;
  }
  function key() {
    const parts = [];
    for (;;) {
      skipWs();
      if (peek() === '"') parts.push(basicString());
      else if (peek() === "'") parts.push(literalString());
      else {
        const m = src.slice(i).match(/^[A-Za-z0-9_-]+/);
        if (!m) fail("key expected");
        parts.push(m[0]);
        i += m[0].length;
      }
      skipWs();
      if (peek() === ".") { i++; continue; }
      return parts;
    }
  }
  function value() {
    skipWs();
    const c = peek();
    if (c === '"') return basicString();
    if (c === "'") return literalString();
    if (c === "[") {
      i++;
      const arr = [];
      for (;;) {
        skipWsNlComments();
        if (peek() === "]") { i++; return arr; }
        arr.push(value());
        skipWsNlComments();
        if (peek() === ",") { i++; continue; }
        if (peek() === "]") { i++; return arr; }
        fail("array");
      }
    }
    if (c === "{") {
      i++;
      const obj = {};
      skipWs();
      if (peek() === "}") { i++; return obj; }
      for (;;) {
        const k = key();
        if (peek() !== "=") fail("= expected");
        i++;
        setPath(obj, k, value());
        skipWs();
        if (peek() === ",") { i++; continue; }
        if (peek() === "}") { i++; return obj; }
        fail("inline table");
      }
    }
    const m = src.slice(i).match(/^[^\s,\]}#]+/);
    if (!m) fail("value expected");
    i += m[0].length;
    const t = m[0];
    if (t === "true") return true;
    if (t === "false") return false;
    if (/^[+-]?(\d[\d_]*|0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+)$/.test(t)) return Number(t.replaceAll("_", ""));
    if (/^[+-]?(inf|nan|\d[\d_]*(\.\d[\d_]*)?([eE][+-]?\d+)?)$/.test(t)) return Number(t.replaceAll("_", ""));
    // dates and times: keep the text (possibly "1979-05-27 07:32:00" split at the space)
    if (/^\d{4}-\d{2}-\d{2}$/.test(t) && /^ \d{2}:/.test(src.slice(i))) {
      const more = src.slice(i).match(/^ [^\s,\]}#]+/)[0];
      i += more.length;
      return t + more;
    }
    return t;
  }
  function setPath(obj, parts, v) {
    let o = obj;
    for (const p of parts.slice(0, -1)) o = o[p] ??= {};
    o[parts.at(-1)] = v;
  }
  function table(parts, isArray) {
    let o = root;
    parts.forEach((p, idx) => {
      const last = idx === parts.length - 1;
      if (last && isArray) {
        (o[p] ??= []).push({});
        o = o[p].at(-1);
      } else {
        o[p] ??= {};
        o = Array.isArray(o[p]) ? o[p].at(-1) : o[p];
      }
    });
    return o;
  }
  for (;;) {
    skipWsNlComments();
    if (i >= src.length) return root;
    if (src.startsWith("[[", i)) {
      i += 2;
      const k = key();
      if (!src.startsWith("]]", i)) fail("]] expected");
      i += 2;
      current = table(k, true);
    } else if (peek() === "[") {
      i++;
      const k = key();
      if (peek() !== "]") fail("] expected");
      i++;
      current = table(k, false);
    } else {
      const k = key();
      if (peek() !== "=") fail("= expected");
      i++;
      setPath(current, k, value());
    }
    skipWs();
    if (peek() === "#") while (i < src.length && src[i] !== "\n") i++;
    if (i < src.length && src[i] !== "\n" && src[i] !== "\r") fail("end of line expected");
  }
}

function parseJsonc(src) {
  let s = "";
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') j += src[j] === "\\" ? 2 : 1;
      s += src.slice(i, j + 1);
      i = j;
    } else if (c === "/" && src[i + 1] === "/") {
      while (i < src.length && src[i] !== "\n") i++;
      s += "\n";
    } else if (c === "/" && src[i + 1] === "*") {
      const end = src.indexOf("*/", i + 2);
      i = end < 0 ? src.length : end + 1;
    } else s += c;
  }
  return JSON.parse(s.replace(/,(\s*[}\]])/g, "$1"));
}

function findUp(name, dir) {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const p = path.join(d, name);
    if (fs.existsSync(p) && fs.statSync(p).isFile()) return p;
    if (path.dirname(d) === d) return undefined;
  }
}

function configFormat(p) {
  if (p?.endsWith("toml")) return "toml";
  if (p?.endsWith("jsonc")) return "jsonc";
  if (p?.endsWith("json")) return "json";
  return "none";
}
function configFileName(p) {
  return { toml: "wrangler.toml", json: "wrangler.json", jsonc: "wrangler.jsonc" }[configFormat(p)] ?? "Wrangler configuration";
}

// findWranglerConfig: wrangler.json, then wrangler.jsonc, then wrangler.toml, each looked
// for from the working directory upwards; --config names one directly.
function readConfig(args) {
  const configPath = args.config
    ? path.resolve(args.config)
    : findUp("wrangler.json", process.cwd()) ?? findUp("wrangler.jsonc", process.cwd()) ?? findUp("wrangler.toml", process.cwd());
  let raw = {};
  if (configPath) {
    if (!fs.existsSync(configPath)) throw new UserError(`fake-wrangler: no such configuration file: ${args.config}`);
    const text = fs.readFileSync(configPath, "utf8");
    raw = configFormat(configPath) === "toml" ? parseToml(text) : parseJsonc(text);
  }
  const envName = args.env;
  const envRaw = envName ? raw.env?.[envName] ?? {} : raw;
  return {
    configPath,
    raw,
    name: envName ? envRaw.name ?? (raw.name ? `${raw.name}-${envName}` : undefined) : raw.name,
    account_id: envRaw.account_id ?? raw.account_id,
    d1_databases: envName ? envRaw.d1_databases ?? [] : raw.d1_databases ?? [],
  };
}

// ---------------------------------------------------------------- Cloudflare API (state)

function requireAuth(config) {
  if (!loggedIn()) {
    throw new UserError(
      "In a non-interactive environment, it's necessary to set a CLOUDFLARE_API_TOKEN environment variable for wrangler to work. Please go to https://developers.cloudflare.com/fundamentals/api/get-started/create-token/ for instructions on how to create an api token, and assign its value to CLOUDFLARE_API_TOKEN.",
    );
  }
  if (config?.account_id) return config.account_id;
  if (process.env.CLOUDFLARE_ACCOUNT_ID) return process.env.CLOUDFLARE_ACCOUNT_ID;
  const accounts = state.accounts;
  if (accounts.length === 0) {
    throw new UserError(
      `Failed to automatically retrieve account IDs for the logged in user.\nIn a non-interactive environment, it is mandatory to specify an account ID, either by assigning its value to CLOUDFLARE_ACCOUNT_ID, or as \`account_id\` in your Wrangler configuration file.`,
    );
  }
  if (accounts.length === 1) return accounts[0].id;
  throw new UserError(
    `More than one account available but unable to select one in non-interactive mode.\nPlease set the appropriate \`account_id\` in your Wrangler configuration file or assign it to the \`CLOUDFLARE_ACCOUNT_ID\` environment variable.\nAvailable accounts are (\`<name>\`: \`<account_id>\`):\n${accounts.map((a) => `  \`${a.name}\`: \`${a.id}\``).join("\n")}`,
  );
}

const hex32 = () => crypto.randomBytes(16).toString("hex");

// Port of splitSqlIntoStatements (src/d1/splitter.ts).
function splitSql(sql) {
  const statements = [];
  const chars = [...sql];
  const stack = [];
  let str = "";
  let i = 0;
  const consumeUntil = (marker) => {
    let s = "";
    while (i < chars.length) { s += chars[i++]; if (s.endsWith(marker)) break; }
    return s;
  };
  while (i < chars.length) {
    const ch = chars[i++];
    if (stack[0]?.(str + ch)) stack.shift();
    let peeked = false;
    switch (ch) {
      case "'": case '"': case "`": str += ch + consumeUntil(ch); break;
      case "-":
        if (chars[i] === "-") { i++; consumeUntil("\n"); str += "\n"; } else { str += ch; peeked = true; }
        break;
      case "/":
        if (chars[i] === "*") { i++; consumeUntil("*/"); } else { str += ch; peeked = true; }
        break;
      case ";":
        if (stack.length === 0) { statements.push(str); str = ""; } else str += ch;
        break;
      default: str += ch;
    }
    if (peeked) continue;
    if (/\s(BEGIN|CASE)\s$/i.test(str)) stack.unshift((s) => /\sEND[;\s]$/.test(s));
  }
  statements.push(str);
  return statements.map((s) => s.trim()).filter((s) => s.length > 0);
}

// ---------------------------------------------------------------- argument parsing

const GLOBAL_OPTIONS = {
  config: { type: "string", alias: ["c"] },
  cwd: { type: "string" },
  env: { type: "string", alias: ["e"] },
  "env-file": { type: "array" },
  version: { type: "boolean", alias: ["v"] },
  help: { type: "boolean", alias: ["h"] },
  "experimental-provision": { type: "boolean", alias: ["x-provision"] },
  "experimental-auto-create": { type: "boolean", alias: ["x-auto-create"] },
};
const RESOURCE_CREATION = {
  "use-remote": { type: "boolean" },
  "update-config": { type: "boolean" },
  binding: { type: "string" },
};
const D1_LOCATIONS = ["weur", "eeur", "apac", "oc", "wnam", "enam"];

const COMMANDS = {
  whoami: { options: { account: { type: "string" }, json: { type: "boolean" } }, run: whoami },
  "d1 list": { options: { json: { type: "boolean" } }, run: d1List },
  "d1 create": {
    positionals: ["name"],
    options: {
      location: { type: "string", choices: [...D1_LOCATIONS, ...(process.env.WRANGLER_D1_EXTRA_LOCATION_CHOICES?.split(",") ?? [])] },
      jurisdiction: { type: "string", choices: ["eu", "fedramp"] },
      ...RESOURCE_CREATION,
    },
    run: d1Create,
  },
  "d1 migrations apply": {
    positionals: ["database"],
    options: { local: { type: "boolean" }, remote: { type: "boolean" }, preview: { type: "boolean" }, "persist-to": { type: "string" } },
    run: d1MigrationsApply,
  },
  "kv namespace list": { options: {}, run: kvNamespaceList },
  "kv namespace create": {
    positionals: ["namespace"],
    options: { preview: { type: "boolean" }, ...RESOURCE_CREATION },
    run: kvNamespaceCreate,
  },
  "r2 bucket list": { options: { jurisdiction: { type: "string", alias: ["J"] } }, run: r2BucketList },
  "r2 bucket create": {
    positionals: ["name"],
    options: {
      location: { type: "string", choices: ["weur", "eeur", "apac", "wnam", "enam", "oc"] },
      "storage-class": { type: "string", alias: ["s"] },
      jurisdiction: { type: "string", alias: ["J"] },
      ...RESOURCE_CREATION,
    },
    run: r2BucketCreate,
  },
  "secret list": {
    options: { name: { type: "string" }, format: { type: "string", choices: ["json", "pretty"] }, "legacy-env": { type: "boolean" } },
    run: secretList,
  },
  "secret put": { positionals: ["key"], options: { name: { type: "string" }, "legacy-env": { type: "boolean" } }, run: secretPut },
  deploy: { options: { name: { type: "string" } }, run: deploy },
};
// Commands and namespaces real wrangler 4.86.0 has at the top level (for "Unknown argument").
const TOP_LEVEL = new Set(("ai ai-search auth browser build cert check cloudchamber complete containers d1 " +
  "delete deploy deployments dev dispatch-namespace docs email hello-world hyperdrive init kv login " +
  "logout metrics mtls-certificate pages pipelines preview queues r2 rollback secret secrets-store " +
  "setup tail telemetry triggers tunnel types vectorize versions vpc whoami workflows").split(" "));

const kebab = (s) => s.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());

function resolveOption(name, options) {
  const all = { ...GLOBAL_OPTIONS, ...options };
  const k = kebab(name);
  if (all[k]) return [k, all[k]];
  for (const [key, spec] of Object.entries(all)) if (spec.alias?.includes(name) || spec.alias?.includes(k)) return [key, spec];
  return [undefined, undefined];
}

// A small yargs: options of the command and the global flags, `--x=v`, `--x v`, `-x v`,
// `--no-x`, camelCase spellings; anything else is "Unknown argument" as with .strict().
function parseFor(commandWords, spec, argv) {
  const options = spec.options ?? {};
  const args = { _: [] };
  const unknown = [];
  const positionals = [];
  let pastCommand = 0;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") { positionals.push(...argv.slice(i + 1)); break; }
    if (a.startsWith("-") && a.length > 1 && !/^-\d/.test(a)) {
      let name;
      let value;
      if (a.startsWith("--")) {
        const eq = a.indexOf("=");
        name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
        value = eq >= 0 ? a.slice(eq + 1) : undefined;
      } else {
        name = a.slice(1, 2);
        value = a.length > 2 ? a.slice(2).replace(/^=/, "") : undefined;
        if (a.length > 2 && !resolveOption(name, options)[0]) name = a.slice(1);
      }
      let [key, opt] = resolveOption(name, options);
      let negated = false;
      if (!key && name.startsWith("no-")) {
        [key, opt] = resolveOption(name.slice(3), options);
        negated = !!key;
      }
      if (!key) {
        unknown.push(name);
        if (value === undefined && argv[i + 1] !== undefined && !argv[i + 1].startsWith("-")) {
          // yargs would take a following word as this flag's value
          i++;
        }
        continue;
      }
      if (opt.type === "boolean") {
        if (value === undefined && (argv[i + 1] === "true" || argv[i + 1] === "false")) value = argv[++i];
        args[key] = negated ? false : value === undefined ? true : value !== "false";
      } else {
        if (value === undefined) {
          if (argv[i + 1] === undefined || (argv[i + 1].startsWith("-") && argv[i + 1].length > 1)) {
            throw new CommandLineArgsError(`Not enough arguments following: ${name}`);
          }
          value = argv[++i];
        }
        if (opt.type === "array") (args[key] ??= []).push(value);
        else if (key in args) args[key] = [].concat(args[key], value);
        else args[key] = value;
      }
      continue;
    }
    if (pastCommand < commandWords.length) { pastCommand++; continue; }
    positionals.push(a);
  }
  const want = spec.positionals ?? [];
  want.forEach((p, idx) => { if (positionals[idx] !== undefined) args[p] = positionals[idx]; });
  const extra = positionals.slice(want.length);
  unknown.push(...extra);
  if (unknown.length > 0) {
    throw new CommandLineArgsError(`Unknown argument${unknown.length > 1 ? "s" : ""}: ${unknown.join(", ")}`);
  }
  const missing = want.filter((p) => args[p] === undefined);
  if (missing.length > 0) {
    throw new CommandLineArgsError(`Not enough non-option arguments: got ${want.length - missing.length}, need at least ${want.length}`);
  }
  for (const [key, value] of Object.entries(args)) {
    if (Array.isArray(value) && key !== "_" && key !== "env-file") {
      throw new CommandLineArgsError(`The argument "--${key}" expects a single value, but received multiple: ${JSON.stringify(value)}.`);
    }
  }
  const bad = [];
  for (const [key, opt] of Object.entries({ ...GLOBAL_OPTIONS, ...options })) {
    if (opt.choices && args[key] !== undefined && !opt.choices.includes(args[key])) {
      bad.push(`  Argument: ${key}, Given: ${JSON.stringify(args[key])}, Choices: ${opt.choices.map((c) => JSON.stringify(c)).join(", ")}`);
    }
  }
  if (bad.length > 0) throw new CommandLineArgsError(`Invalid values:\n${bad.join("\n")}`);
  // camelCase copies, as yargs gives handlers
  for (const key of Object.keys(args)) {
    const camel = key.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (camel !== key) args[camel] = args[key];
  }
  return args;
}

// ---------------------------------------------------------------- commands

function whoami(args, config) {
  if (args.json) {
    if (!loggedIn()) {
      logger.log("");
      logger.log(JSON.stringify({ loggedIn: false }));
      return 1;
    }
    out(JSON.stringify({
      loggedIn: true,
      authType: "OAuth Token",
      email: state.email,
      accounts: state.accounts,
      tokenPermissions: state.scopes,
    }, null, 4) + "\n");
    return 0;
  }
  logger.log("Getting User settings...");
  if (!loggedIn()) {
    logger.log("You are not authenticated. Please run `wrangler login`.");
    return 0;
  }
  logger.log(`👋 You are logged in with an OAuth Token, associated with the email ${state.email}.`);
  table(state.accounts.map((a) => ({ "Account Name": a.name, "Account ID": a.id })), ["Account Name", "Account ID"]);
  logger.log("🔓 Token Permissions:");
  logger.log("Scope (Access)");
  const expected = new Set(DEFAULT_SCOPES.filter((s) => s !== "offline_access"));
  for (const scope of state.scopes) {
    const [name, access] = scope.split(":");
    expected.delete(`${name}:${access}`);
    logger.log(`- ${name} ${access ? `(${access})` : ""}`);
  }
  if (expected.size > 0) {
    logger.log("");
    logger.log(formatMessage("warning", [
      "Wrangler is missing some expected Oauth scopes. To fix this, run `wrangler login` to refresh your token. The missing scopes are:",
      ...[...expected].map((s) => `- ${s}`),
    ].join("\n")));
  }
  if (args.account) throw new NotSupported("whoami --account (membership roles)");
  return 0;
}

const d1View = ({ uuid, name, created_at, version, num_tables, file_size, jurisdiction }) => ({
  uuid, name, created_at, version, num_tables, file_size, ...(jurisdiction ? { jurisdiction } : {}),
});

function d1List(args, config) {
  requireAuth(config);
  const dbs = state.d1.map(d1View);
  if (args.json) logger.log(JSON.stringify(dbs, null, 2));
  else table(dbs.map((db) => Object.fromEntries(Object.entries(db).map(([k, v]) => [k, String(v ?? "")]))));
  return 0;
}

function getValidBindingName(name, fallback) {
  let b = name.replace(/[\s-]/g, "_").replace(/[^a-zA-Z0-9_]/g, "").replace(/_+/g, "_");
  if (/^[0-9]/.test(b)) b = "_" + b;
  if (!b.length || /^_+$/.test(b)) return fallback;
  return b;
}

function tomlSnippet(resource, entry) {
  const esc = (v) => JSON.stringify(v);
  const body = Object.entries(entry).map(([k, v]) => `${k} = ${typeof v === "string" ? esc(v) : String(v)}`).join("\n");
  return `[[${resource}]]\n${body}\n`;
}

// createdResourceConfig (src/utils/add-created-resource-config.ts)
function createdResourceConfig(resource, snippet, config, env, args) {
  const friendly = { d1_databases: "D1 Database", kv_namespaces: "KV Namespace", r2_buckets: "R2 Bucket" }[resource];
  const envString = env ? ` in the "${env}" environment` : "";
  logger.log(`To access your new ${friendly} in your Worker, add the following snippet to your configuration file${envString}:`);
  const entry = { ...snippet(args.binding), ...(args.useRemote === true ? { remote: true } : {}) };
  const format = configFormat(config.configPath);
  logger.log(format === "toml" ? tomlSnippet(resource, entry) : JSON.stringify({ [resource]: [entry] }, null, 2));
  if (config.configPath && (format === "json" || format === "jsonc")) {
    const write = args.binding ?? args.updateConfig ?? confirmNonInteractive("Would you like Wrangler to add it on your behalf?", false);
    if (write) {
      let bindingName = args.binding;
      if (bindingName === undefined) {
        bindingName = snippet().binding;
        logger.log("? What binding name would you like to use?");
        logger.log(`🤖 Using default value in non-interactive context: ${bindingName}`);
      }
      const useRemote = args.useRemote ?? false;
      // experimental_patchConfig keeps comments and layout; this rewrite does not.
      const raw = parseJsonc(fs.readFileSync(config.configPath, "utf8"));
      const target = env ? ((raw.env ??= {})[env] ??= {}) : raw;
      (target[resource] ??= []).push({ ...snippet(bindingName), ...(useRemote ? { remote: true } : {}) });
      fs.writeFileSync(config.configPath, JSON.stringify(raw, null, "\t") + "\n");
    }
  }
}

function d1Create(args, config) {
  const accountId = requireAuth(config);
  if (state.d1.some((d) => d.name === args.name)) {
    throw new UserError("A database with that name already exists");
  }
  const db = {
    uuid: crypto.randomUUID(),
    name: args.name,
    created_at: new Date().toISOString(),
    version: "production",
    num_tables: 0,
    file_size: 12288,
    ...(args.jurisdiction ? { jurisdiction: args.jurisdiction } : {}),
    created_in_region: (args.location ?? state.defaultRegion ?? "weur").toUpperCase(),
    account_id: accountId,
  };
  state.d1.push(db);
  saveState(state);
  logger.log(`✅ Successfully created DB '${db.name}'${db.created_in_region ? ` in region ${db.created_in_region}` : args.location ? ` using primary location hint ${args.location}` : ""}`);
  logger.log("Created your new D1 database.\n");
  createdResourceConfig("d1_databases", (binding) => ({
    binding: getValidBindingName(binding ?? db.name, "DB"),
    database_name: db.name,
    database_id: db.uuid,
  }), config, args.env, args);
  return 0;
}

function d1MigrationsApply(args, config) {
  if (!config.configPath) {
    throw new UserError("No configuration file found. Create a wrangler.jsonc file to define your D1 database.");
  }
  const entry = config.d1_databases.find((d) => args.database === d.database_name || args.database === d.binding);
  if (entry && !entry.database_id) {
    throw new UserError(`Found a database with name or binding ${args.database} but it is missing a database_id, which is needed for operations on remote resources. Please create the remote D1 database by deploying your project or running 'wrangler d1 create ${args.database}'.`);
  }
  if (!entry) {
    throw new UserError(`Couldn't find a D1 DB with the name or binding '${args.database}' in your ${configFileName(config.configPath)} file.`);
  }
  const folder = entry.migrations_dir || "./migrations";
  const dir = path.resolve(path.dirname(config.configPath), folder);
  if (!fs.existsSync(dir)) {
    logger.warn(`No migrations folder found.${folder === "./migrations" ? ` Set \`migrations_dir\` in your ${configFileName(config.configPath)} file to choose a different path.` : ""}`);
    throw new UserError(`No migrations present at ${dir}.`);
  }
  const table_ = entry.migrations_table || "d1_migrations";
  const uuid = entry.database_id;
  // initMigrationsTable and listAppliedMigrations run with json: true: log level "error",
  // and an error thrown there leaves it so.
  if (allowed("error")) logLevel = "error";
  const accountId = requireAuth(config);
  const db = state.d1.find((d) => d.uuid === uuid);
  if (!db) {
    throw new APIError(`/accounts/${accountId}/d1/database/${uuid}/query`, [{ code: 7404, message: `The database ${uuid} could not be found` }]);
  }
  const tables = (state.d1Migrations[uuid] ??= {});
  const applied = (tables[table_] ??= []);
  saveState(state);
  logLevel = initialLogLevel;

  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".sql")).sort();
  const pending = files.filter((f) => !applied.includes(f)).map((name) => ({ name, status: "🕒️" }))
    .sort((a, b) => {
      const x = parseInt(a.name.split("_")[0]);
      const y = parseInt(b.name.split("_")[0]);
      return x < y ? -1 : x > y ? 1 : 0;
    });
  if (pending.length === 0) {
    logger.log("✅ No migrations to apply!");
    return 0;
  }
  logger.log("Migrations to be applied:");
  table(pending.map((m) => ({ name: m.name })));
  confirmNonInteractive(`About to apply ${pending.length} migration(s)\nYour database may not be available to serve requests during the migration, continue?`);
  for (const migration of pending) {
    const sql = fs.readFileSync(path.join(dir, migration.name), "utf8") +
      `\n\t\t\t\t\t\t\t\tINSERT INTO ${table_} (name)\n\t\t\t\t\t\t\t\tvalues ('${migration.name}');\n\t\t\t\t\t\t`;
    const statements = splitSql(sql);
    logger.log(`🌀 Executing on remote database ${args.database} (${uuid}):`);
    logger.log("🌀 To execute on your local development database, remove the --remote flag from your wrangler command.");
    const duration = statements.reduce((sum) => sum + 0.1 + Math.random() * 0.4, 0);
    logger.log(`🚣 Executed ${statements.length === 1 ? "1 command" : `${statements.length} commands`} in ${duration.toFixed(2)}ms`);
    applied.push(migration.name);
    db.num_tables += statements.filter((s) => /^CREATE\s+TABLE\s/i.test(s)).length;
    saveState(state);
    migration.status = "✅";
    table(pending.map((m) => ({ name: m.name, status: m.status })));
  }
  return 0;
}

function kvNamespaceList(args, config) {
  requireAuth(config);
  const list = [...state.kv].sort((a, b) => (a.title < b.title ? -1 : a.title > b.title ? 1 : 0))
    .map(({ id, title, supports_url_encoding }) => ({ id, title, supports_url_encoding }));
  logger.log(JSON.stringify(list, null, "  "));
  return 0;
}

function kvNamespaceCreate(args, config) {
  const environment = args.env ? `${args.env}-` : "";
  const preview = args.preview ? "_preview" : "";
  const title = `${environment}${args.namespace}${preview}`;
  requireAuth(config);
  logger.log("Resource location:", "remote", "\n");
  logger.log(`🌀 Creating namespace with title "${title}"`);
  if (state.kv.some((n) => n.title === title)) {
    throw new UserError(`A KV namespace with the title "${title}" already exists.\n\nYou can list existing namespaces with their IDs by running:\n  wrangler kv namespace list\n\nOr choose a different namespace name.`);
  }
  const ns = { id: hex32(), title, supports_url_encoding: true };
  state.kv.push(ns);
  saveState(state);
  logger.log("✨ Success!");
  const idKey = `${args.preview ? "preview_" : ""}id`;
  createdResourceConfig("kv_namespaces", (name) => ({
    binding: getValidBindingName(name ?? args.namespace, "KV"),
    [idKey]: ns.id,
  }), config, args.env, { ...args, updateConfig: args.preview ? false : args.updateConfig });
  return 0;
}

function r2BucketList(args) {
  requireAuth(undefined);
  logger.log("Listing buckets...");
  const buckets = state.r2.filter((b) => (b.jurisdiction ?? undefined) === args.jurisdiction)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  logger.log(buckets.map((b) => {
    const view = { name: b.name, creation_date: b.creation_date };
    const width = Math.max(...Object.keys(view).map((k) => k.length + 1));
    return Object.entries(view).map(([k, v]) => `${k}:${" ".repeat(width + 2 - k.length - 1)}${v}`).join("\n");
  }).join("\n\n"));
  return 0;
}

function r2BucketCreate(args, config) {
  const accountId = requireAuth(config);
  const { name, location, storageClass, jurisdiction } = args;
  if (!/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(name)) {
    throw new UserError(`The bucket name "${name}" is invalid. Bucket names must begin and end with an alphanumeric character, only contain lowercase letters, numbers, and hyphens, and be between 3 and 63 characters long.`);
  }
  if (jurisdiction && location) throw new UserError("Provide either a jurisdiction or location hint - not both.");
  const fullName = jurisdiction !== undefined ? `${name} (${jurisdiction})` : name;
  logger.log(`Creating bucket '${fullName}'...`);
  if (state.r2.some((b) => b.name === name && (b.jurisdiction ?? undefined) === jurisdiction)) {
    throw new APIError(`/accounts/${accountId}/r2/buckets`, [{ code: 10004, message: "The bucket you tried to create already exists, and you own it." }]);
  }
  state.r2.push({ name, creation_date: new Date().toISOString(), ...(jurisdiction ? { jurisdiction } : {}), ...(location ? { location } : {}), storage_class: storageClass ?? "Standard" });
  saveState(state);
  logger.log(`✅ Created bucket '${fullName}' with${location ? ` location hint ${location} and` : ""} default storage class of ${storageClass ? storageClass : "Standard"}.`);
  createdResourceConfig("r2_buckets", (binding) => ({
    bucket_name: args.name,
    binding: getValidBindingName(binding ?? args.name, "r2"),
  }), config, args.env, args);
  return 0;
}

function scriptNameFor(args, config) {
  const name = args.name && args.env ? `${args.name}-${args.env}` : args.name ?? config.name;
  if (!name) {
    throw new UserError(`Required Worker name missing. Please specify the Worker name in your ${configFileName(config.configPath)} file, or pass it as an argument with \`--name <worker-name>\``);
  }
  return name;
}

function secretList(args, config) {
  const scriptName = scriptNameFor(args, config);
  requireAuth(config);
  const worker = state.workers[scriptName];
  if (!worker) {
    throw new UserError(`Worker "${scriptName}"${args.env ? ` (env: ${args.env})` : ""} not found.\n\nIf this is a new Worker, run \`wrangler deploy\` first to create it.\nOtherwise, check that the Worker name is correct and you're logged into the right account.`);
  }
  const secrets = Object.keys(worker.secrets ?? {}).map((name) => ({ name, type: "secret_text" }));
  if (args.format === "pretty") {
    for (const s of secrets) logger.log(`Secret Name: ${s.name}\n`);
  } else {
    logger.log(JSON.stringify(secrets, null, "  "));
  }
  return 0;
}

function secretPut(args, config, stdinText) {
  if (config.raw && Object.keys(config.raw.env ?? {}).length > 0 && args.env === undefined) {
    logger.warn("Multiple environments are defined in the Wrangler configuration file, but no target environment was specified for the secret put command.\nTo avoid unintentional changes to the wrong environment, it is recommended to explicitly specify the target environment using the `-e|--env` flag.\nIf your intention is to use the top-level environment of your configuration simply pass an empty string to the flag to target such environment. For example `--env=\"\"`.");
  }
  const scriptName = scriptNameFor(args, config);
  requireAuth(config);
  if (stdinText === null) throw new NotSupported("secret put with a terminal on stdin (interactive prompt)");
  const value = stdinText.trimEnd();
  logger.log(`🌀 Creating the secret for the Worker "${scriptName}" `);
  if (!state.workers[scriptName]) {
    confirmNonInteractive(`There doesn't seem to be a Worker called "${scriptName}". Do you want to create a new Worker with that name and add secrets to it?`);
    logger.log(`🌀 Creating new Worker "${scriptName}"...`);
    state.workers[scriptName] = { draft: true, created_on: new Date().toISOString(), secrets: {} };
  }
  (state.workers[scriptName].secrets ??= {})[args.key] = { type: "secret_text", value };
  saveState(state);
  logger.log(`✨ Success! Uploaded secret ${args.key}`);
  return 0;
}

// deploy: only what decides whether an upload is accepted, and what it leaves behind.
// The API refuses a service binding to a Worker the account lacks (a draft made by
// `secret put` counts) and a Durable Object binding to a class another script does not
// define; the texts are those the API answers (quoted in workers-sdk issues #2968 and
// firtoz/cf-multiworker-starter-kit#23, and CF-Server-Monitor#55 for code 10061). The
// custom build, bundling, the upload's own output and triggers are not modelled.
function deploy(args, config) {
  const name = args.name ?? config.name;
  const accountId = requireAuth(config);
  const raw = config.raw ?? {};
  const resource = `/accounts/${accountId}/workers/scripts/${name}/versions`;
  for (const service of raw.services ?? []) {
    if (!state.workers[service.service]) {
      throw new APIError(resource, [{ code: 10143, message: `Service binding '${service.binding}' references Worker '${service.service}' which was not found.` }]);
    }
  }
  for (const binding of raw.durable_objects?.bindings ?? []) {
    const script = binding.script_name;
    if (script && script !== name && !(state.workers[script]?.classes ?? []).includes(binding.class_name)) {
      throw new APIError(resource, [{ code: 10061, message: `Cannot create binding for class '${binding.class_name}' in script '${script}' that does not exist.` }]);
    }
  }
  const classes = new Set(state.workers[name]?.classes ?? []);
  for (const m of raw.migrations ?? []) {
    for (const c of [...(m.new_classes ?? []), ...(m.new_sqlite_classes ?? [])]) classes.add(c);
    for (const c of m.deleted_classes ?? []) classes.delete(c);
  }
  const before = state.workers[name] ?? { secrets: {} };
  state.workers[name] = { ...before, draft: false, deployed_on: new Date().toISOString(), classes: [...classes] };
  saveState(state);
  logger.log(`Uploaded ${name}`);
  return 0;
}

// printBanner per command (createHandler, behaviour.printBanner)
const PRINTS_BANNER = {
  whoami: (a) => !a.json,
  "d1 list": (a) => !a.json,
  "d1 create": () => true,
  "d1 migrations apply": () => true,
  "kv namespace list": () => false,
  "kv namespace create": () => true,
  "r2 bucket list": () => true,
  "r2 bucket create": () => true,
  "secret list": (a) => a.format === "pretty",
  "secret put": () => true,
  deploy: () => true,
};

// ---------------------------------------------------------------- main

function readStdin() {
  if (process.stdin.isTTY) return null;
  try {
    return fs.readFileSync(0, "utf8");
  } catch (e) {
    if (e.code === "EAGAIN" || e.code === "EOF") return "";
    throw e;
  }
}

function main() {
  const argv = process.argv.slice(2);
  const words = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--") break;
    if (/^(--config|-c|--cwd|--env|-e|--env-file)$/.test(argv[i])) { i++; continue; }
    if (!argv[i].startsWith("-")) words.push(argv[i]);
  }
  const isSecretPut = words[0] === "secret" && words[1] === "put";
  const stdinText = isSecretPut ? readStdin() : null;
  fs.appendFileSync(path.join(stateDir, "calls.jsonl"), JSON.stringify({ argv, stdin: stdinText }) + "\n");

  const finish = (code) => {
    if (code !== 0 && sawErrorLog && allowed("warn")) {
      err(`🪵  Logs were written to "${debugLogPath()}"\n`);
    }
    process.exitCode = code;
  };

  if (argv.length > 0 && words.length === 0 && argv.every((a) => a === "-v" || a === "--version")) {
    out(`${VERSION}\n`);
    return finish(0);
  }

  const key = Object.keys(COMMANDS)
    .filter((k) => k.split(" ").every((w, i) => words[i] === w))
    .sort((a, b) => b.length - a.length)[0];

  if (!key) {
    if (words.length > 0 && !TOP_LEVEL.has(words[0])) {
      logger.log("");
      logger.error(`Unknown argument: ${words[0]}`);
      return finish(1);
    }
    err(`fake-wrangler: \`wrangler ${argv.join(" ")}\` is not modelled by this fake (it mirrors wrangler ${VERSION} for whoami, d1 list/create/migrations apply, kv namespace list/create, r2 bucket list/create, secret list/put, and deploy's binding checks)\n`);
    return finish(1);
  }

  const spec = COMMANDS[key];
  let args;
  try {
    args = parseFor(key.split(" "), spec, argv);
    if (args.format === undefined && key === "secret list") args.format = "json";
    if (args.cwd) process.chdir(args.cwd);
    if (args.help) throw new NotSupported("--help texts");
    if (key === "d1 migrations apply" && (args.local || !args.remote || args.preview)) {
      throw new NotSupported("d1 migrations apply without --remote, or with --preview (local or preview D1)");
    }
  } catch (e) {
    if (e instanceof CommandLineArgsError) {
      logger.log("");
      logger.error(e.message);
      // (wrangler prints the command's help on stdout here)
      return finish(1);
    }
    if (e instanceof NotSupported) {
      err(`fake-wrangler: not modelled: ${e.message}\n`);
      return finish(1);
    }
    throw e;
  }

  try {
    if (PRINTS_BANNER[key](args)) banner();
    if (key === "d1 migrations apply") logger.log("Resource location:", "remote", "\n");
    const config = key === "r2 bucket list" ? {} : readConfig(args);
    const code = spec.run(args, config, stdinText);
    return finish(code);
  } catch (e) {
    if (e instanceof NotSupported) {
      err(`fake-wrangler: not modelled: ${e.message}\n`);
      return finish(1);
    }
    logger.log("");
    if (e instanceof APIError) logger.error(e.render());
    else if (e instanceof UserError) logger.error(e.message);
    else {
      logger.error(e instanceof Error ? e.message : String(e));
    }
    return finish(1);
  }
}

main();
