// The Worker's bundle as `wrangler deploy --dry-run` reports it, and (run directly, as
// `.ci/run` does) a check that it stays within our limit of 350 KiB gzipped: the Free
// plan's 3 MiB is far off, but every KiB is parsed on every cold start. (300 KiB until
// export, import and backups took it to 354.9 KiB, then 360 until error reports and
// storage versions took it to 361.8; reading bindings without workers-rs's generic
// decoders took it back to 340.9: ARCHITECTURE.md, the bundle.)
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
export const LIMIT_KIB = 350;

export function uploadSize() {
  const outdir = mkdtempSync(join(tmpdir(), "edgecount-dist-"));
  try {
    const out = execFileSync(join(root, "node_modules", ".bin", "wrangler"), ["deploy", "--dry-run", "--outdir", outdir], {
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

if (import.meta.url === `file://${process.argv[1]}`) {
  const { gzip_kib } = uploadSize();
  if (!(gzip_kib <= LIMIT_KIB)) {
    console.error(`bundle: ${gzip_kib} KiB gzipped, over the ${LIMIT_KIB} KiB limit`);
    process.exit(1);
  }
  console.log(`bundle: ${gzip_kib} KiB gzipped (limit ${LIMIT_KIB} KiB)`);
}
