// Moving in from other services through the real runtime: GoatCounter's CSV export,
// Plausible's imported_pages / imported_visitors CSV and "start at N" lists become pages
// with daily totals, stats and counts, and counters whose ledgers hold the import; each
// file twice changes nothing the second time. Bad files are refused with their line and
// change nothing; a file cut short and sent again, or sent in parts, ends the same.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { AGENTS, admin, errorCode, eventually, root, startWorker } from "./helpers/worker.mjs";

const enc = encodeURIComponent;
const fixture = (name) => readFileSync(join(root, "tests", "fixtures", "imports", name), "utf8");
const DAY = 86_400_000;
let svc;

before(async () => {
  svc = await startWorker({ vars: { FLUSH_INTERVAL_MS: "100" } });
});
after(async () => {
  await svc?.close();
});

async function newTenant(fields = {}) {
  const res = await svc.request("POST", "/tenants", { headers: admin, json: { label: `in-${crypto.randomUUID()}`, ...fields } });
  assert.equal(res.status, 201, res.text);
  return res.json.tenant_id;
}

function send(tenant, body, query = "", headers = admin) {
  return svc.request("POST", `/tenants/${tenant}/import${query}`, { headers: { ...headers, "Content-Type": "text/csv" }, body });
}

/** A page's counted visits and uniques by day, through the history API. */
async function history(tenant, page, from, to) {
  const res = await svc.request("GET", `/tenants/${tenant}/pages/${enc(page)}/history?from=${from}&to=${to}&granularity=day`);
  assert.equal(res.status, 200, res.text);
  return Object.fromEntries(res.json.series.filter((b) => b.visits > 0).map((b) => [b.start.slice(0, 10), [b.visits, b.uniques]]));
}

async function pageCount(tenant, page) {
  const res = await svc.request("GET", `/tenants/${tenant}/pages/${enc(page)}`);
  assert.equal(res.status, 200, res.text);
  return res.json.count;
}

async function stats(tenant, from, to) {
  const res = await svc.request("GET", `/tenants/${tenant}/stats?from=${from}&to=${to}&limit=100`, { headers: admin });
  assert.equal(res.status, 200, res.text);
  return res.json;
}

/** The tenant's counters by label, each read from its object (the authority). */
async function counters(tenant) {
  const list = await svc.request("GET", `/tenants/${tenant}/counters?limit=100`, { headers: admin });
  const out = {};
  for (const { counter_id, label } of list.json.counters) {
    const res = await svc.request("GET", `/tenants/${tenant}/${counter_id}`);
    out[label] = { counter_id, value: res.json.value };
  }
  return out;
}

/** A CSV line's fields, for the test's own reading of the fixtures. */
function fields(line) {
  const out = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted && c === '"' && line[i + 1] === '"') (field += '"'), i++;
    else if (c === '"') quoted = !quoted;
    else if (c === "," && !quoted) out.push(field), (field = "");
    else field += c;
  }
  out.push(field);
  return out;
}

describe("GoatCounter CSV export (format version 2)", () => {
  test("pageviews become daily totals, stats and counts; events are skipped; twice changes nothing", async () => {
    const t = await newTenant();
    const csv = fixture("goatcounter-export-example-20250116T000000Z-0.csv");
    const res = await send(t, csv);
    assert.equal(res.status, 200, res.text);
    const rows = csv.trim().split("\n").slice(1).map(fields);
    const views = rows.filter((r) => r[2] === "0");
    assert.equal(res.json.format, "goatcounter");
    assert.equal(res.json.skipped, rows.length - views.length);
    assert.equal(res.json.changed, true);
    // Expected, from the file: counted pageviews (not bots) and first visits per page and day.
    const expected = {};
    for (const r of views) {
      if (r[7] !== "0") continue;
      const day = (expected[r[0]] ??= {})[r[13].slice(0, 10)] ??= [0, 0];
      day[0] += 1;
      day[1] += r[12] === "1" ? 1 : 0;
    }
    for (const [page, days] of Object.entries(expected)) {
      assert.deepEqual(await history(t, page, "2025-01-13", "2025-01-16"), days, page);
      const total = Object.values(days).reduce((s, d) => s + d[0], 0);
      assert.equal(await pageCount(t, page), total, page);
    }
    const s = await stats(t, "2025-01-13", "2025-01-16");
    assert.equal(s.totals.visits, views.length);
    assert.equal(s.totals.bots, 1);
    assert.equal(s.totals.counted, views.length - 1);
    assert.equal(s.totals.visitors, null, "GoatCounter's file cannot say how many distinct visitors a day had");
    const referrers = Object.fromEntries(s.top.referrers.map((r) => [r.value, r.visits]));
    const hn = views.filter((r) => r[9] === "h" && r[8].startsWith("news.ycombinator.com")).length;
    assert.equal(referrers["news.ycombinator.com"], hn);
    assert.ok(!("Google" in referrers) && !("google" in referrers), "generated referrer names are not hosts");
    const countries = Object.fromEntries(s.top.countries.map((c) => [c.value, c.visits]));
    assert.equal(countries.US, views.filter((r) => r[11].startsWith("US")).length);
    // Hours are known: hour buckets add up to the day.
    const hourly = await svc.request("GET", `/tenants/${t}/stats?from=2025-01-14&to=2025-01-15&granularity=hour`, { headers: admin });
    assert.equal(hourly.json.series.reduce((n, b) => n + b.visits, 0), views.filter((r) => r[13].startsWith("2025-01-14")).length);

    const again = await send(t, csv);
    assert.equal(again.status, 200, again.text);
    assert.deepEqual([again.json.changed, again.json.added], [false, 0]);
    assert.equal((await stats(t, "2025-01-13", "2025-01-16")).totals.visits, views.length);
    assert.equal(await pageCount(t, "/"), expected["/"] ? Object.values(expected["/"]).reduce((s, d) => s + d[0], 0) : 0);
  });
});

describe("Plausible CSV export", () => {
  test("imported_pages become pages' days; imported_visitors the site's visitors", async () => {
    const t = await newTenant();
    const pages = fixture("imported_pages_20230209_20230211.csv");
    const res = await send(t, pages);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.format, "plausible_pages");
    const rows = pages.trim().split("\n").slice(1).map(fields);
    const byPage = {};
    for (const [date, , page, , visitors, pageviews] of rows) ((byPage[page] ??= {})[date] = [Number(pageviews), Number(visitors)]);
    for (const [page, days] of Object.entries(byPage)) {
      assert.deepEqual(await history(t, page, "2023-02-09", "2023-02-12"), days, page);
      assert.equal(await pageCount(t, page), Object.values(days).reduce((s, d) => s + d[0], 0));
    }
    const visitors = fixture("imported_visitors_20230209_20230211.csv");
    const v = await send(t, visitors);
    assert.equal(v.status, 200, v.text);
    assert.equal(v.json.format, "plausible_visitors");
    const s = await stats(t, "2023-02-09", "2023-02-12");
    assert.deepEqual(s.series.map((b) => b.visitors), [119, 166, 101]);
    assert.equal(s.totals.visits, rows.reduce((n, r) => n + Number(r[5]), 0));
    assert.deepEqual(s.top.pages.map((p) => p.value).sort(), Object.keys(byPage).sort());
    for (const body of [pages, visitors]) {
      const again = await send(t, body);
      assert.equal(again.json.changed, false, again.text);
    }
    assert.equal(await pageCount(t, "/"), 113);
  });
});

describe("start at N", () => {
  test("counts from a badge service become import operations with their source; twice adds nothing", async () => {
    const t = await newTenant();
    const res = await send(t, fixture("counts.ndjson"), "?source=visitor-badge.laobi.icu");
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.format, "counts");
    const byLabel = await counters(t);
    assert.equal(byLabel["visitor-badge"].value, 48213);
    assert.equal(byLabel.stars.value, 312);
    assert.equal(await pageCount(t, "/posts/hello"), 1500);
    const ops = await svc.request("GET", `/v2/tenants/${t}/counters/${byLabel.stars.counter_id}/operations`, { headers: admin });
    const [imported] = ops.json.operations;
    assert.equal(imported.kind, "import");
    assert.equal(imported.delta, 312);
    assert.deepEqual(imported.metadata, { source: "visitor-badge.laobi.icu", line: 2 });
    const again = await send(t, fixture("counts.ndjson"), "?source=visitor-badge.laobi.icu");
    assert.deepEqual([again.json.changed, again.json.added, again.json.unchanged], [false, 0, 3], again.text);
    // Counting goes on from the imported value.
    const inc = await svc.request("POST", `/tenants/${t}/${byLabel.stars.counter_id}/inc`);
    assert.equal(inc.json.value, 313);
    const csv = await send(t, fixture("counts.csv"));
    assert.equal(csv.status, 200, csv.text);
    const values = await counters(t);
    assert.deepEqual([values["komarev-profile"].value, values["hits-repo"].value, values.stars.value], [9021, 77, 313]);
    // A line refused while applying (the counter would leave its range) after another
    // went in: corrected and sent again, the line that went in is not added twice.
    const max = "9007199254740991";
    const first = await send(t, `{"counter":"fresh","count":5}\n{"counter":"stars","count":${max}}\n`);
    assert.equal(first.status, 400, first.text);
    assert.equal(first.json.errors[0].line, 2);
    assert.match(first.json.errors[0].message, /leaves the counter's range/);
    const fixed = await send(t, `{"counter":"fresh","count":5}\n{"counter":"stars","count":7}\n`);
    assert.equal(fixed.status, 200, fixed.text);
    assert.deepEqual([fixed.json.added, fixed.json.unchanged], [1, 1]);
    const now = await counters(t);
    assert.deepEqual([now.fresh.value, now.stars.value], [5, 320]);
    const check = await svc.request("GET", "/v2/admin/reconcile?limit=50", { headers: admin });
    assert.ok(check.json.counters.every((c) => c.ok), check.text);
  });
});

describe("bad files", () => {
  const T = "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";
  const header = (tenant, extra = {}) => JSON.stringify({ format: "edgecount-export", version: 1, tenant, exported_at: "2026-01-01T00:00:00.000Z", visits: false, ...extra });
  const tenantLine = (id) => JSON.stringify({ type: "tenant", id, label: `bad-${id}`, created_ms: 1, updated_ms: 1, page_auto_create: false, count_bots: false, respect_dnt: false, allowed_origins: null });
  const page = (p) => JSON.stringify({ type: "page", page: p, count: 1, seq: 1, rolled_seq: 1, created_ms: 1, updated_ms: 1 });

  test("are refused with the line and the reason, and change nothing", async () => {
    const existing = await newTenant();
    const fresh = crypto.randomUUID();
    const cases = [
      ["a malformed line", fresh, [header(fresh), tenantLine(fresh), "{not json", page("/a")], 3, /not a JSON object/],
      ["an unknown format version", fresh, [header(fresh, { version: 2 }), tenantLine(fresh)], 1, /unknown format version 2/],
      ["a file of another tenant", fresh, [header(T), tenantLine(T)], 1, new RegExp(`tenant ${T}`)],
      ["a tenant record of another tenant", fresh, [header(fresh), tenantLine(T)], 2, /another tenant/],
      ["a value out of range", fresh, [header(fresh), tenantLine(fresh), JSON.stringify({ type: "counter", id: T, label: null, value: 2 ** 60, max_delta: 1, created_ms: 1, updated_ms: 1 })], 3, /value must be an integer/],
      ["an unknown field", fresh, [header(fresh), tenantLine(fresh), JSON.stringify({ type: "page_day", page: "/a", day: 1, visits: 1, uniques: 1, extra: 1 })], 3, /unknown field "extra"/],
      ["an end line that does not match", fresh, [header(fresh), tenantLine(fresh), JSON.stringify({ type: "end", records: 5 })], 3, /cut/],
      ["a GoatCounter row with a bad date", existing, ["2Path,Title,Event,UserAgent,Browser,System,Session,Bot,Referrer,Referrer scheme,Screen size,Location,FirstVisit,Date", '/a,A,0,,,,s,0,,,"0,0,1",,1,2025-01-14T09:00:00Z', '/a,A,0,,,,s,0,,,"0,0,1",,1,last tuesday'], 3, /Date/],
      ["a GoatCounter file of another version", existing, ["3Path,Title"], 1, /GoatCounter format version 3/],
      ["a Plausible row with a negative count", existing, ['"date","hostname","page","visits","visitors","pageviews"', '"2023-02-09","h","/a",1,1,-4'], 2, /pageviews/],
      ["a count out of range", existing, ['{"counter":"c","count":9007199254740992}'], 1, /count must be/],
      ["a row that is neither page nor counter", existing, ['{"counter":"c","count":1}', '{"page":"/a","counter":"c","count":1}'], 2, /either page or counter/],
      ["something else entirely", existing, ["<html>"], 1, /not a file this service imports/],
    ];
    const before = await svc.request("GET", `/tenants/${existing}/export`, { headers: admin });
    for (const [what, tenant, lines, line, reason] of cases) {
      for (const query of ["", "?dry_run=1"]) {
        const res = await send(tenant, lines.join("\n") + "\n", query);
        assert.equal(res.status, 400, `${what}${query}: ${res.text}`);
        assert.equal(errorCode(res), "INVALID_IMPORT", what);
        assert.equal(res.json.errors[0].line, line, `${what}: ${res.text}`);
        assert.match(res.json.errors[0].message, reason, what);
        assert.match(res.json.errors[0].message, /nothing was imported/, what);
      }
    }
    // Nothing changed: the new tenant does not exist, the existing one exports the same.
    assert.equal((await svc.request("GET", `/tenants/${fresh}`)).status, 404);
    const afterwards = await svc.request("GET", `/tenants/${existing}/export`, { headers: admin });
    assert.deepEqual(afterwards.text.split("\n").slice(1), before.text.split("\n").slice(1));
    // Not an import at all.
    for (const [query, status] of [["?dry_run=yes", 400], ["?from=2", 400], ["?from=1001", 404]]) {
      const res = await send(crypto.randomUUID(), '{"page":"/a","count":1}\n', query);
      assert.equal(res.status, status, `${query}: ${res.text}`);
    }
    assert.equal((await send(existing, "")).status, 400);
    const huge = `{"counter":"${"x".repeat(20_000)}","count":1}\n`;
    const long = await send(existing, huge);
    assert.equal(long.status, 400);
    assert.match(long.json.errors[0].message, /line 1: the line is longer than 16384 bytes/);
  });
});

describe("interrupted and resumed", () => {
  /** An export-format file of one page with `n` visits, made here. */
  function bigFile(tenant, n) {
    const lines = [
      JSON.stringify({ format: "edgecount-export", version: 1, tenant, exported_at: "2026-01-01T00:00:00.000Z", visits: true }),
      JSON.stringify({ type: "tenant", id: tenant, label: `resumed-${tenant}`, created_ms: 1, updated_ms: 2, page_auto_create: false, count_bots: false, respect_dnt: true, allowed_origins: ["https://blog.example"] }),
      JSON.stringify({ type: "page", page: "/long", count: n, seq: n, rolled_seq: 0, created_ms: 1, updated_ms: 2 }),
    ];
    const start = Date.now() - 5 * DAY;
    for (let i = 1; i <= n; i++) {
      lines.push(JSON.stringify({ type: "visit", page: "/long", seq: i, ts: start + i * 1000, referrer_host: i % 2 ? "news.example.com" : null, country: "NL", agent: "browser", counted: 1, unique: i % 3 === 0 ? 1 : 0 }));
    }
    lines.push(JSON.stringify({ type: "end", records: lines.length - 1 }));
    return lines;
  }

  test("a file cut short, then sent whole, ends as if sent once; so does a file sent in parts", async () => {
    const cut = crypto.randomUUID();
    const lines = bigFile(cut, 1200);
    const first = await send(cut, lines.slice(0, 700).join("\n"));
    assert.equal(first.status, 200, first.text);
    assert.equal(first.json.complete, false);
    const whole = await send(cut, lines.join("\n") + "\n");
    assert.equal(whole.status, 200, whole.text);
    assert.equal(whole.json.complete, true);
    assert.equal(whole.json.added, lines.length - 2 - 699, "only what the first attempt had not added");

    const parts = crypto.randomUUID();
    const file = bigFile(parts, 1200);
    const data = file.slice(1);
    for (let from = 1; from <= data.length; from += 1000) {
      const res = await send(parts, [file[0], ...data.slice(from - 1, from + 999)].join("\n"), `?from=${from}`);
      assert.equal(res.status, 200, `part from ${from}: ${res.text}`);
      assert.equal(res.json.data_lines, Math.min(from + 999, data.length));
    }
    // Both tenants hold exactly the file's records, and the page counts on.
    for (const [t, source] of [[cut, lines], [parts, file]]) {
      const res = await svc.request("GET", `/tenants/${t}/export?visits=1`, { headers: admin });
      const got = res.text.trim().split("\n").slice(1).map((l) => JSON.parse(l));
      const want = source.slice(1).map((l) => JSON.parse(l));
      const pick = (records, type) => records.filter((r) => r.type === type);
      for (const type of ["tenant", "page", "visit", "end"]) assert.deepEqual(pick(got, type), pick(want, type), type);
      // The page counts on from the file: its next visit is number 1,201, not a clash.
      const visit = await svc.request("POST", `/tenants/${t}/pages/${enc("/long")}/visit`, { headers: { "User-Agent": AGENTS.firefox } });
      assert.equal(visit.status, 200, visit.text);
      assert.equal(visit.json.count, 1201);
      const stored = await eventually(async () => {
        const row = await svc.db.prepare("SELECT COUNT(*) AS n, MAX(seq) AS last FROM visits WHERE tenant_id = ?").bind(t).first();
        return row.n === 1201 && row.last === 1201;
      }, 10_000);
      assert.ok(stored, "the new visit reached D1 beside the imported ones");
    }
  });
});
