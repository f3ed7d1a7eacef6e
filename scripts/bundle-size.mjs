// The Workers' bundles as `wrangler deploy --dry-run` reports them, and (run directly, as
// `.ci/run` does) a check that each stays within 300 KiB gzipped: the Free plan's 3 MiB
// is far off, but every KiB is parsed on every cold start. One Worker was 349.6 KiB (at
// most 361.8) when the annex took its heavy routes (ARCHITECTURE.md, the bundle).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ANNEX_CONFIG } from "./annex-config.mjs";

const root = resolve(import.meta.dirname, "..");
export const LIMIT_KIB = 300;

/** One Worker's upload as `wrangler deploy --dry-run` reports it, for a config file. */
function measure(config) {
  const outdir = mkdtempSync(join(tmpdir(), "edgecount-dist-"));
  try {
    const out = execFileSync(join(root, "node_modules", ".bin", "wrangler"), ["deploy", "--dry-run", "--outdir", outdir, "--config", config], {
      cwd: root,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    const m = /Total Upload:\s+([\d.]+) KiB \/ gzip:\s+([\d.]+) KiB/.exec(out);
    return { upload_kib: Number(m?.[1]), gzip_kib: Number(m?.[2]) };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** Both Workers' uploads (built first: the edge's dry run runs the build). */
export function uploadSizes() {
  const edge = measure(join(root, "wrangler.toml"));
  return { edge, annex: measure(ANNEX_CONFIG) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  let over = false;
  for (const [worker, { gzip_kib }] of Object.entries(uploadSizes())) {
    const fits = gzip_kib <= LIMIT_KIB;
    over ||= !fits;
    (fits ? console.log : console.error)(`bundle (${worker}): ${gzip_kib} KiB gzipped${fits ? "" : ", over"} (limit ${LIMIT_KIB} KiB)`);
  }
  if (over) process.exit(1);
}
