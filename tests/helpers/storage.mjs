// Durable Object storage as SQLite holds it, for the storage golden tests and the upgrade
// test: each object's schema version, tables and stored JSON fields, read from a
// persisted Miniflare folder by Python's sqlite3 (SQLite itself, not the runtime).
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { root } from "./worker.mjs";

export const GOLDEN = join(root, "tests", "fixtures", "storage");

// Reads one object's SQLite file the way SQLite itself does (Python's sqlite3): its
// version, its tables' definitions with whitespace folded, and the keys of the JSON
// documents it stores. The runtime's own tables (_cf_*) are not ours.
const DESCRIBE = String.raw`
import json, re, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
fold = lambda s: re.sub(r"\s+", " ", s).replace("( ", "(").replace(" )", ")")
versioned = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_version'").fetchone()
version = versioned and db.execute("SELECT version FROM schema_version").fetchone()
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

