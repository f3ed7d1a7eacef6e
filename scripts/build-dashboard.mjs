// Builds the dashboard (dashboard/) into public/dashboard/, which Workers Static Assets
// serves: one minified script and one stylesheet (the chart library's included), no
// requests to anyone else. Fast (esbuild), so it runs on every build.
import { buildSync } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const out = join(root, "public", "dashboard");

export function buildDashboard() {
  mkdirSync(out, { recursive: true });
  buildSync({
    entryPoints: [join(root, "dashboard", "app.js")],
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2020",
    outfile: join(out, "app.js"),
    legalComments: "none",
    logLevel: "warning",
  });
  copyFileSync(join(root, "dashboard", "index.html"), join(out, "index.html"));
}

if (import.meta.url === `file://${process.argv[1]}`) buildDashboard();
