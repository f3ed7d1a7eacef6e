// The operator's check: every counter's operations sum to its value, read from each
// counter's own object through GET /v2/admin/reconcile, page by page.
//
//   npm run reconcile -- --url https://edgecount.example.workers.dev --key "$ADMIN_KEY"
//
// Prints one line per counter that does not reconcile and a summary; exits 1 if any
// counter does not reconcile, 2 if the service could not be asked.
import { parseArgs } from "node:util";

const USAGE = "usage: npm run reconcile -- --url URL --key ADMIN_KEY [--page-size 1..50]";

export async function reconcile({ url, key, pageSize = 50, fetchImpl = fetch, log = console.log }) {
  let cursor = null;
  const totals = { counters: 0, operations: 0, mismatched: [] };
  do {
    const page = new URL("/v2/admin/reconcile", url);
    page.searchParams.set("limit", String(pageSize));
    if (cursor) page.searchParams.set("cursor", cursor);
    const res = await fetchImpl(page, { headers: { "X-API-Key": key } });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`GET ${page.pathname}: ${res.status} ${text.slice(0, 300)}`);
    const body = JSON.parse(text);
    for (const c of body.counters) {
      totals.counters += 1;
      totals.operations += c.operations;
      if (!c.ok) {
        totals.mismatched.push(c);
        log(`MISMATCH ${c.counter_id}: value ${c.value}, operations sum to ${c.sum_of_deltas} (${c.operations} operations)`);
      }
    }
    cursor = body.next_cursor;
  } while (cursor);
  log(`${totals.counters} counters, ${totals.operations} operations: ${totals.mismatched.length === 0 ? "every ledger sums to its value" : `${totals.mismatched.length} do not reconcile`}`);
  return totals;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { url: { type: "string" }, key: { type: "string" }, "page-size": { type: "string" } },
  });
  const pageSize = Number(values["page-size"] ?? 50);
  if (!values.url || !values.key || !(pageSize >= 1 && pageSize <= 50)) {
    console.error(USAGE);
    process.exit(2);
  }
  try {
    const totals = await reconcile({ url: values.url, key: values.key, pageSize });
    process.exit(totals.mismatched.length === 0 ? 0 : 1);
  } catch (e) {
    console.error(`reconcile: ${e.message}`);
    process.exit(2);
  }
}
