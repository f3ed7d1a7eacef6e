// Runs the README's shell examples the way a reader does: every `curl` line of every
// `sh` block that talks to the service ($B), in order, from a fresh connection with
// curl's own user agent, and compares what comes back with the `# ...` line below it.
//
// Conventions the README follows so that this can run it:
// - `NAME=value` sets a variable; `NAME=<field>` takes `field` of the last JSON answer
//   (the reader copies it from the screen); `sleep N` waits.
// - `# ...` lines right under a `curl` line are what it prints; `...` stands for any text
//   (ids, times). A `#` after a command on the same line, or a `#` line after a blank
//   line, is a remark, not output.
// - `npx edgecount …` runs the command-line tool; each `# ...` line under it must match a
//   line it printed. `--data-binary @FILE` sends a file of the repository.
// - A block preceded by `<!-- not run: reason -->` is skipped (it needs what a test
//   machine lacks, such as a GitHub organisation).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { request } from "node:http";

/** Where the README's reader stands: the repository (for `@file` and the CLI). */
const repo = resolve(import.meta.dirname, "..", "..");

/** The README's runnable blocks: [{line, commands}], each command {text, expected[]}. */
export function examples(markdown) {
  const blocks = [];
  const lines = markdown.split("\n");
  let skip = false;
  for (let i = 0; i < lines.length; i++) {
    if (/^<!-- not run:/.test(lines[i])) skip = true;
    if (lines[i] !== "```sh") continue;
    const start = i + 1;
    const body = [];
    for (i++; i < lines.length && lines[i] !== "```"; i++) body.push(lines[i]);
    if (skip) {
      skip = false;
      continue;
    }
    if (!body.some((l) => l.includes("$B"))) continue;
    const commands = [];
    // `#` lines right under a command (no blank line between) are its output; others
    // are remarks.
    let underCommand = false;
    for (const line of body) {
      const trimmed = line.trim();
      if (!trimmed) {
        underCommand = false;
      } else if (trimmed.startsWith("#")) {
        if (underCommand) commands.at(-1).expected.push(trimmed.replace(/^#\s?/, ""));
      } else {
        commands.push({ text: stripRemark(trimmed), expected: [], line: start });
        underCommand = true;
      }
    }
    blocks.push({ line: start, commands });
  }
  return blocks;
}

/** A command without its trailing `# remark` (outside quotes). */
function stripRemark(text) {
  let quote = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === "#" && /\s/.test(text[i - 1] ?? " ")) {
      return text.slice(0, i).trim();
    }
  }
  return text;
}

/** Splits a shell command into words, honouring quotes and expanding $VARIABLES. */
function words(text, vars) {
  const out = [];
  let word = null;
  let quote = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote !== "'" && c === "$") {
      if (text.startsWith("$(uuidgen)", i)) {
        word = (word ?? "") + crypto.randomUUID();
        i += "$(uuidgen)".length - 1;
        continue;
      }
      const name = /^\$\{?([A-Z_]+)\}?/.exec(text.slice(i));
      if (name) {
        if (!(name[1] in vars)) throw new Error(`README uses $${name[1]} before setting it`);
        word = (word ?? "") + vars[name[1]];
        i += name[0].length - 1;
        continue;
      }
    }
    if (quote) {
      if (c === quote) quote = null;
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      word ??= "";
    } else if (/\s/.test(c)) {
      if (word !== null) out.push(word);
      word = null;
    } else {
      word = (word ?? "") + c;
    }
  }
  if (word !== null) out.push(word);
  return out;
}

/** One curl invocation, as curl sends it: its user agent, a fresh connection. */
function curl(args) {
  let method;
  const headers = { "User-Agent": "curl/8.5.0", Accept: "*/*" };
  let data;
  let url;
  let showHeaders = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-X") method = args[++i];
    else if (a === "-H") {
      const [name, ...value] = args[++i].split(":");
      headers[name.trim()] = value.join(":").trim();
    } else if (a === "-d" || a === "--data-binary") {
      data = args[++i];
      if (a === "--data-binary" && data.startsWith("@")) data = readFileSync(join(repo, data.slice(1)));
    }
    else if (a === "-D") showHeaders = args[++i] === "-";
    else if (a === "-s" || a === "-I") continue;
    else url = a;
  }
  method ??= data === undefined ? "GET" : "POST";
  if (data !== undefined && !headers["Content-Type"]) headers["Content-Type"] = "application/x-www-form-urlencoded";
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body, showHeaders }));
    });
    req.on("error", reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

/** Whether `actual` is what `expected` shows, with `...` standing for any text. */
export function shows(expected, actual) {
  const pattern = expected
    .split("...")
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join("[\\s\\S]*?");
  return new RegExp(`^${pattern}$`).test(actual.trim());
}

/**
 * Runs every example against `base` (the README's $B); `adminKey` replaces the README's
 * development key; files the CLI writes go to `scratch`. Answers the mismatches: [{line, command, expected, actual}].
 */
export async function run(markdown, { base, adminKey, scratch = repo }) {
  const vars = { B: base };
  const problems = [];
  let last;
  for (const block of examples(markdown)) {
    for (const { text, expected, line } of block.commands) {
      const assign = /^([A-Z_]+)=(.*)$/.exec(text);
      if (assign) {
        const [, name, value] = assign;
        // The service under test stands where the README's reader has it (port 8787).
        if (name === "B") continue;
        const field = /^<([a-z_]+)>$/.exec(value);
        if (field) {
          const json = JSON.parse(last?.body ?? "null");
          if (json?.[field[1]] === undefined) throw new Error(`README line ${line}: no ${field[1]} in the last answer: ${last?.body}`);
          vars[name] = json[field[1]];
        } else {
          vars[name] = words(value, vars).join(" ").replace("dev-admin-key", adminKey);
        }
        continue;
      }
      const argv = words(text, vars);
      if (argv[0] === "sleep") {
        await new Promise((r) => setTimeout(r, Number(argv[1]) * 1000));
        continue;
      }
      if (argv[0] === "npx" && argv[1] === "edgecount") {
        // Files of the repository stay where the reader has them; new ones go to `scratch`.
        const args = argv.slice(2).map((a) => (!a.startsWith("-") && existsSync(join(repo, a)) ? join(repo, a) : a.replace("dev-admin-key", adminKey)));
        const ran = spawnSync(process.execPath, [join(repo, "bin", "edgecount.mjs"), ...args], { cwd: scratch, encoding: "utf8" });
        const printed = `${ran.stdout}${ran.stderr}`;
        if (ran.status !== 0) problems.push({ line, command: text, expected: "exit 0", actual: printed.slice(-400) });
        for (const want of expected) {
          if (!printed.split("\n").some((l) => shows(want, l))) problems.push({ line, command: text, expected: want, actual: printed.slice(-400) });
        }
        continue;
      }
      if (argv[0] !== "curl") throw new Error(`README line ${line}: cannot run ${text}`);
      last = await curl(argv.slice(1));
      const printed = last.showHeaders
        ? Object.entries(last.headers).map(([k, v]) => `${k}: ${v}`).join("\n")
        : last.body;
      for (const want of expected) {
        const ok = last.showHeaders ? printed.split("\n").some((l) => shows(want, l)) : shows(want, printed);
        if (!ok) problems.push({ line, command: text, expected: want, actual: printed.slice(0, 400) });
      }
    }
  }
  return problems;
}
