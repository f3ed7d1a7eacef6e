// Durable Object storage formats, pinned: every object class's SQLite tables (and the
// fields of the JSON it stores) at its schema version must equal the golden file for that
// version, tests/fixtures/storage/{Class}.v{N}.txt. Changing a schema without a new
// version (a new step in objects::schema) fails here, and so does editing a released
// version's file. A new version's file is written with EDGECOUNT_UPDATE_GOLDEN=1; files
// that exist are never rewritten.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeObjects, goldenOf } from "./helpers/storage.mjs";
import { AGENTS, admin, eventually, root, startWorker } from "./helpers/worker.mjs";

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
