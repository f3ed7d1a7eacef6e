// Durable Object storage formats, pinned: every object class's SQLite tables (and the
// fields of the JSON it stores) at its schema version must equal the golden file for that
// version, tests/fixtures/storage/{Class}.v{N}.txt. Changing a schema without a new
// version (a new step in objects::schema) fails here, and so does editing a released
// version's file. A new version's file is written with EDGECOUNT_UPDATE_GOLDEN=1; files
// that exist are never rewritten.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AGENTS, admin, eventually, root, startWorker } from "./helpers/worker.mjs";

const GOLDEN = join(root, "tests", "fixtures", "storage");

// Reads one object's SQLite file the way SQLite itself does (Python's sqlite3): its
// version, its tables' definitions with whitespace folded, and the keys of the JSON
// documents it stores. The runtime's own tables (_cf_*) are not ours.
const DESCRIBE = String.raw`
import json, re, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
fold = lambda s: re.sub(r"\s+", " ", s).replace("( ", "(").replace(" )", ")")
version = db.execute("SELECT version FROM schema_version").fetchone()
out = ["version %d" % (version[0] if version else 0)]
for kind, name, sql in db.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE '!_cf!_%' ESCAPE '!' ORDER BY type, name"):
    out.append("%s %s: %s" % (kind, name, fold(sql)))
json_columns = {"counter": ["meta"], "tenant_settings": ["settings"]}
for table, columns in json_columns.items():
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone():
        continue
    for column in columns:
        for (doc,) in db.execute("SELECT %s FROM %s" % (column, table)):
            out.append("json %s.%s: %s" % (table, column, ",".join(sorted(json.loads(doc).keys()))))
print("\n".join(out))
`;

/** Each object's storage under a persisted Miniflare folder: [class, description]. */
export function describeObjects(persisted) {
  const found = [];
  const dir = join(persisted, "do");
  for (const namespace of readdirSync(dir)) {
    const objectClass = namespace.replace(/^edgecount-/, "");
    for (const file of readdirSync(join(dir, namespace)).filter((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite")) {
      found.push([objectClass, execFileSync("python3", ["-c", DESCRIBE, join(dir, namespace, file)], { encoding: "utf8" }).trim()]);
    }
  }
  return found;
}

/** The golden file of `objectClass` at the version its description names. */
export function goldenOf(objectClass, description) {
  const version = /^version (\d+)/.exec(description)?.[1];
  return join(GOLDEN, `${objectClass}.v${version}.txt`);
}

test("every object's storage equals the golden file of its schema version", async () => {
  const dir = mkdtempSync(join(tmpdir(), "edgecount-storage-"));
  try {
    const svc = await startWorker({ persistTo: dir });
    try {
      const t = await svc.createTenant();
      const patched = await svc.request("PATCH", `/tenants/${t.tenant_id}`, {
        headers: admin,
        json: { allowed_origins: ["https://example.com"] },
      });
      assert.equal(patched.status, 200, patched.text);
      const c = await svc.createCounter(t.tenant_id, { label: "stars" });
      const curl = { "User-Agent": AGENTS.curl };
      assert.equal((await svc.request("POST", `/tenants/${t.tenant_id}/${c.counter_id}/inc`, { headers: curl })).status, 200);
      const visit = await svc.request("POST", "/visit/home", { headers: curl, ip: "198.51.100.7" });
      assert.equal(visit.status, 200, visit.text);
      assert.ok(await eventually(async () => (await svc.d1Value(c.counter_id)) === 1), "flushed");
    } finally {
      await svc.close();
    }
    const objects = describeObjects(dir);
    const classes = new Set(objects.map(([objectClass]) => objectClass));
    for (const expected of ["CounterObject", "PageObject", "SaltKeeper"]) assert.ok(classes.has(expected), `${expected} stored something`);
    for (const [objectClass, description] of objects) {
      const golden = goldenOf(objectClass, description);
      if (!existsSync(golden) && process.env.EDGECOUNT_UPDATE_GOLDEN) writeFileSync(golden, `${description}\n`);
      assert.ok(existsSync(golden), `${golden.slice(root.length + 1)} is missing: a new schema version needs its golden file (EDGECOUNT_UPDATE_GOLDEN=1)`);
      assert.equal(description, readFileSync(golden, "utf8").trim(), `${objectClass}'s storage differs from its golden file`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
