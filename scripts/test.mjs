// `npm test`: builds the Worker if its sources changed, runs the native unit tests of the
// domain, the integration tests that drive the built Worker in workerd, and then
// Schemathesis against the Worker and its OpenAPI document (scripts/schemathesis.mjs).
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { build } from "./build.mjs";

const root = resolve(import.meta.dirname, "..");

function run(command, args) {
  console.log(`\n$ ${command} ${args.join(" ")}`);
  const result = spawnSync(command, args, { cwd: root, stdio: "inherit" });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

build();
run("cargo", ["test", "--quiet"]);
const files = readdirSync(join(root, "tests"))
  .filter((f) => f.endsWith(".test.mjs"))
  .sort()
  .map((f) => join("tests", f));
run(process.execPath, ["--test", "--test-reporter=spec", ...files]);
run(process.execPath, [join("scripts", "schemathesis.mjs")]);
