// `npm run setup:cloudflare` against a stand-in wrangler (tests/helpers/fake-wrangler.mjs,
// which answers as wrangler 4.86.0 does and keeps the account's state on disk), in a copy
// of the project: the first run creates and writes everything, a second changes nothing.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { experimental_readRawConfig } from "wrangler";
import { annexConfig } from "../scripts/annex-config.mjs";
import { root } from "./helpers/worker.mjs";

/** A project copy with wrangler.toml, its migrations and the script, and an empty account. */
function sandbox() {
  const dir = mkdtempSync(join(tmpdir(), "edgecount-setup-"));
  const project = join(dir, "project");
  mkdirSync(join(project, "scripts"), { recursive: true });
  cpSync(join(root, "wrangler.toml"), join(project, "wrangler.toml"));
  cpSync(join(root, "migrations"), join(project, "migrations"), { recursive: true });
  cpSync(join(root, "scripts", "setup-cloudflare.mjs"), join(project, "scripts", "setup-cloudflare.mjs"));
  const bin = join(dir, "bin");
  mkdirSync(bin);
  const shim = join(bin, "wrangler");
  writeFileSync(shim, `#!/bin/sh\nexec node "${join(root, "tests", "helpers", "fake-wrangler.mjs")}" "$@"\n`);
  chmodSync(shim, 0o755);
  const state = join(dir, "account");
  mkdirSync(state);
  const run = (args = [], env = {}) => {
    const r = spawnSync(process.execPath, [join(project, "scripts", "setup-cloudflare.mjs"), ...args], {
      cwd: project,
      encoding: "utf8",
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, FAKE_WRANGLER_STATE: state, ...env },
    });
    return { status: r.status, out: r.stdout, err: r.stderr };
  };
  const calls = () =>
    readFileSync(join(state, "calls.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
  const account = () => JSON.parse(readFileSync(join(state, "state.json"), "utf8"));
  const toml = () => readFileSync(join(project, "wrangler.toml"), "utf8");
  return { dir, project, run, calls, account, toml, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const commandsOf = (calls) => calls.map((c) => c.argv.filter((a) => !a.startsWith("-")).slice(0, 3).join(" "));

describe("setup:cloudflare on a new account", () => {
  let box;
  let first;
  let key;
  before(() => {
    box = sandbox();
    // The user's own edit, which the setup must keep.
    writeFileSync(join(box.project, "wrangler.toml"), `${box.toml()}\n# my note: deployed by me\n`);
    first = box.run();
    key = /administrator key[^\n]*\n\s+(\S+)/.exec(first.out)?.[1];
  });
  after(() => box?.cleanup());

  test("creates the database and namespace, writes their ids in place, migrates, stores a key", () => {
    assert.equal(first.status, 0, first.err);
    const account = box.account();
    const [db] = account.d1;
    const [kv] = account.kv;
    assert.equal(db.name, "edgecount");
    assert.equal(kv.title, "GITHUB_CACHE");

    const toml = box.toml();
    assert.match(toml, new RegExp(`database_id = "${db.uuid}"`));
    assert.match(toml, new RegExp(`\\[\\[kv_namespaces\\]\\]\\nbinding = "GITHUB_CACHE"\\n[^\\[]*id = "${kv.id}"`));
    // Every line but the two ids is as it was: comments and the user's edit kept.
    const original = `${readFileSync(join(root, "wrangler.toml"), "utf8")}\n# my note: deployed by me\n`.split("\n");
    const now = toml.split("\n");
    assert.equal(now.length, original.length);
    const changed = now.filter((line, i) => line !== original[i]);
    assert.deepEqual(changed, [`id = "${kv.id}"`, `database_id = "${db.uuid}"`]);

    const migrations = readdirSync(join(root, "migrations")).filter((f) => f.endsWith(".sql")).sort();
    assert.deepEqual(account.d1Migrations[db.uuid].d1_migrations, migrations, "every migration applied remotely");

    assert.match(key ?? "", /^[A-Za-z0-9_-]{43}$/, `a 256-bit key printed:\n${first.out}`);
    assert.equal(account.workers.edgecount.secrets.ADMIN_API_KEY.value, key, "the printed key is the one stored");
    // The annex authenticates its own routes with the same key; the secret put creates
    // both Workers, so the first deploy can bind each to the other.
    assert.equal(account.workers["edgecount-annex"].secrets.ADMIN_API_KEY.value, key, "the annex has the same key");
    assert.equal(first.out.split(key).length - 1, 1, "printed once");
    assert.match(first.out, /Next: npm run deploy/);

    const commands = commandsOf(box.calls());
    assert.deepEqual(commands, [
      "whoami",
      "d1 list",
      "d1 create edgecount",
      "kv namespace list",
      "kv namespace create",
      "d1 migrations apply",
      "secret list",
      "secret list edgecount-annex",
      "secret put ADMIN_API_KEY",
      "secret put ADMIN_API_KEY",
    ]);
    for (const put of box.calls().slice(-2)) assert.equal(put.stdin, key, "the key goes through stdin, not the command line");
    assert.deepEqual(box.calls().at(-1).argv.slice(-2), ["--name", "edgecount-annex"]);
    assert.ok(box.calls().every((c) => !c.argv.includes(key)));
    assert.ok(box.calls().find((c) => c.argv[1] === "migrations").argv.includes("--remote"));
  });

  test("a second run changes nothing and says so", () => {
    const before = { toml: box.toml(), account: JSON.stringify(box.account()), calls: box.calls().length };
    const second = box.run();
    assert.equal(second.status, 0, second.err);
    assert.equal(box.toml(), before.toml, "wrangler.toml untouched");
    const after = box.account();
    assert.equal(after.workers.edgecount.secrets.ADMIN_API_KEY.value, key, "the key is kept");
    assert.equal(after.workers["edgecount-annex"].secrets.ADMIN_API_KEY.value, key);
    assert.equal(JSON.stringify(after), before.account, "the account is as it was");
    const commands = commandsOf(box.calls().slice(before.calls));
    assert.deepEqual(commands, ["whoami", "d1 list", "kv namespace list", "d1 migrations apply", "secret list", "secret list edgecount-annex"]);
    assert.match(second.out, /D1 database edgecount: exists/);
    assert.match(second.out, /KV namespace GITHUB_CACHE: exists/);
    assert.match(second.out, /wrangler\.toml: up to date/);
    assert.match(second.out, /ADMIN_API_KEY: already set/);
    assert.ok(!second.out.includes(key), "the key is not shown again");
  });

  test("--backups adds the bucket and switches its binding on, once", () => {
    const withBackups = box.run(["--backups"]);
    assert.equal(withBackups.status, 0, withBackups.err);
    assert.deepEqual(box.account().r2.map((b) => b.name), ["edgecount-backups"]);
    assert.match(box.toml(), /^\[\[r2_buckets\]\]\nbinding = "BACKUPS"\nbucket_name = "edgecount-backups"$/m);
    assert.doesNotMatch(box.toml(), /^# \[\[r2_buckets\]\]/m);
    const toml = box.toml();
    const again = box.run(["--backups"]);
    assert.equal(again.status, 0, again.err);
    assert.match(again.out, /R2 bucket edgecount-backups: exists/);
    assert.equal(box.toml(), toml);
  });
});

test("an account that has the resources already: found by name, nothing created", () => {
  const box = sandbox();
  try {
    const pristine = box.toml();
    assert.equal(box.run().status, 0);
    const made = box.account();
    // A fresh checkout of the project, the same account.
    writeFileSync(join(box.project, "wrangler.toml"), pristine);
    const calls = box.calls().length;
    const again = box.run();
    assert.equal(again.status, 0, again.err);
    assert.deepEqual(commandsOf(box.calls().slice(calls)), ["whoami", "d1 list", "kv namespace list", "d1 migrations apply", "secret list", "secret list edgecount-annex"]);
    assert.match(box.toml(), new RegExp(`database_id = "${made.d1[0].uuid}"`));
    assert.match(box.toml(), new RegExp(`id = "${made.kv[0].id}"`));
    assert.equal(box.account().d1.length, 1);
    assert.equal(box.account().kv.length, 1);
  } finally {
    box.cleanup();
  }
});

test("an installation from before the annex: the key is kept, and the secrets the annex lacks are named", () => {
  const box = sandbox();
  try {
    // The edge Worker as an earlier release left it: its key and an error-report DSN.
    const wrangler = (argv, input) => spawnSync(join(box.dir, "bin", "wrangler"), argv, { input, encoding: "utf8", env: { ...process.env, FAKE_WRANGLER_STATE: join(box.dir, "account") } });
    assert.equal(wrangler(["secret", "put", "ADMIN_API_KEY"], "old-key").status, 0);
    assert.equal(wrangler(["secret", "put", "SENTRY_DSN"], "https://k@sentry.example/1").status, 0);
    const run = box.run();
    assert.equal(run.status, 0, run.err);
    const account = box.account();
    assert.equal(account.workers.edgecount.secrets.ADMIN_API_KEY.value, "old-key", "the key in use is kept");
    assert.equal(account.workers["edgecount-annex"], undefined, "no new key is made for the annex");
    assert.match(run.out, /ADMIN_API_KEY: already set/);
    assert.match(run.out, /edgecount-annex lacks secrets the edge has: ADMIN_API_KEY, SENTRY_DSN/);
    assert.match(run.out, /npx wrangler secret put ADMIN_API_KEY --name edgecount-annex/);
    assert.match(run.out, /npx wrangler secret put SENTRY_DSN --name edgecount-annex/);
    assert.doesNotMatch(run.out, /old-key/);
  } finally {
    box.cleanup();
  }
});

describe("npm run deploy after setup:cloudflare (the API's binding rules, as the stand-in models them)", () => {
  // npm run deploy's wrangler commands, in their order, as package.json has them.
  const deploys = JSON.parse(readFileSync(join(root, "package.json"), "utf8"))
    .scripts.deploy.split("&&")
    .map((c) => c.trim())
    .filter((c) => c.startsWith("wrangler deploy"))
    .map((c) => c.split(/\s+/).slice(1));
  const withAnnexConfig = (box) => {
    const { rawConfig } = experimental_readRawConfig({ config: join(box.project, "wrangler.toml") });
    mkdirSync(join(box.project, "build", "annex"), { recursive: true });
    writeFileSync(join(box.project, "build", "annex", "wrangler.json"), JSON.stringify(annexConfig(rawConfig)));
  };
  const wrangler = (box, argv) =>
    spawnSync(join(box.dir, "bin", "wrangler"), argv, { cwd: box.project, encoding: "utf8", env: { ...process.env, FAKE_WRANGLER_STATE: join(box.dir, "account") } });

  test("a new account: the edge, then the annex, both accepted, and again on the next deploy", () => {
    const box = sandbox();
    try {
      assert.deepEqual(deploys, [["deploy"], ["deploy", "--config", "build/annex/wrangler.json"]]);
      assert.equal(box.run().status, 0);
      withAnnexConfig(box);
      for (let round = 0; round < 2; round++) {
        for (const argv of deploys) {
          const r = wrangler(box, argv);
          assert.equal(r.status, 0, `wrangler ${argv.join(" ")}: ${r.stdout}${r.stderr}`);
        }
      }
      const { workers } = box.account();
      assert.ok(workers.edgecount.classes.includes("CounterObject"));
      assert.equal(workers["edgecount-annex"].draft, false);
      assert.equal(workers["edgecount-annex"].secrets.ADMIN_API_KEY.value, workers.edgecount.secrets.ADMIN_API_KEY.value);
    } finally {
      box.cleanup();
    }
  });

  test("refused the other way round, and without setup: why setup makes both Workers first", () => {
    const box = sandbox();
    try {
      withAnnexConfig(box);
      const noAnnex = wrangler(box, ["deploy"]);
      assert.equal(noAnnex.status, 1);
      assert.match(noAnnex.stdout + noAnnex.stderr, /Service binding 'ANNEX' references Worker 'edgecount-annex' which was not found/);
      assert.equal(box.run().status, 0);
      const annexFirst = wrangler(box, deploys[1]);
      assert.equal(annexFirst.status, 1);
      assert.match(annexFirst.stdout + annexFirst.stderr, /Cannot create binding for class 'CounterObject' in script 'edgecount' that does not exist. \[code: 10061\]/);
    } finally {
      box.cleanup();
    }
  });
});

test("an id in wrangler.toml that the account lacks stops the setup, changing nothing", () => {
  const box = sandbox();
  try {
    const stranger = "11111111-2222-4333-8444-555555555555";
    writeFileSync(join(box.project, "wrangler.toml"), box.toml().replace('database_id = "00000000-0000-0000-0000-000000000000"', `database_id = "${stranger}"`));
    const toml = box.toml();
    const run = box.run();
    assert.equal(run.status, 1);
    assert.match(run.err, new RegExp(`database_id ${stranger} is not a D1 database of this account`));
    assert.equal(box.toml(), toml);
    assert.deepEqual(commandsOf(box.calls()), ["whoami", "d1 list"], "nothing created");
  } finally {
    box.cleanup();
  }
});

test("logged out, it stops before touching anything and says how to log in", () => {
  const box = sandbox();
  try {
    const toml = box.toml();
    const run = box.run([], { FAKE_WRANGLER_LOGGED_OUT: "1" });
    assert.equal(run.status, 1);
    assert.match(run.err, /wrangler login/);
    assert.deepEqual(commandsOf(box.calls()), ["whoami"]);
    assert.equal(box.toml(), toml);
  } finally {
    box.cleanup();
  }
});

test("an unknown argument is a usage error", () => {
  const box = sandbox();
  try {
    const run = box.run(["--bakups"]);
    assert.equal(run.status, 2);
    assert.match(run.err, /usage: npm run setup:cloudflare/);
  } finally {
    box.cleanup();
  }
});
