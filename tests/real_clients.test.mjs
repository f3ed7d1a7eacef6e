// Counting right for the clients users really have, with wrangler.toml's defaults: a
// README badge seen through GitHub's image proxy, scripts on the migration routes, busy
// pages, retention of a busy deployment, requests that must change nothing, pages that
// anonymous visitors could exhaust, and tenants whose D1 row is unreachable.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ANNEX, admin, AGENTS, clientIp, errorCode, eventually, startWorker } from "./helpers/worker.mjs";

const DAY = 86_400_000;
let svc;
before(async () => {
  svc = await startWorker();
});
after(() => svc?.close());

async function pageTenant(settings = {}) {
  const res = await svc.request("POST", "/tenants", { headers: admin, json: { label: `rc-${crypto.randomUUID()}`, page_auto_create: true, ...settings } });
  assert.equal(res.status, 201, res.text);
  return res.json.tenant_id;
}

/** The value an SVG badge shows. */
const shown = (res) => /aria-label="[^:"]*: ([^"]*)"/.exec(res.text)?.[1];

describe("a README badge behind GitHub's image proxy", () => {
  // GitHub fetches README images through camo: one address, one user agent, every reader,
  // all from GitHub's network (what Cloudflare's edge reports as the request's `asn`).
  const camo = { ip: "140.82.115.10", headers: { "User-Agent": AGENTS.camo } };
  const GITHUB = { asn: 36459, country: "US" };
  let github;
  before(async () => {
    github = await startWorker({ cf: GITHUB });
  });
  after(() => github?.close());

  test("renders for every view and counts each one", async () => {
    const t = (await github.request("POST", "/tenants", { headers: admin, json: { label: "readme", page_auto_create: true } })).json.tenant_id;
    const values = [];
    for (let i = 0; i < 120; i++) {
      const res = await github.request("GET", `/tenants/${t}/pages/README/badge.svg?inc=1`, camo);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type"), /^image\/svg\+xml/);
      values.push(Number(shown(res)));
    }
    assert.deepEqual(values, Array.from({ length: 120 }, (_, i) => i + 1));
    assert.equal((await github.request("GET", `/tenants/${t}/pages/README`)).json.count, 120);
    const row = await eventually(async () => (await github.db.prepare("SELECT COUNT(*) AS n FROM visits WHERE tenant_id = ? AND agent = 'proxy'").bind(t).first()).n === 120);
    assert.ok(row, "logged as views through a proxy, not as a bot");
  });

  test("camo's user agent from anywhere else is no proxy: one client's budget, and a bot", async () => {
    const t = await pageTenant();
    const values = [];
    for (let i = 0; i < 12; i++) values.push(shown(await svc.request("GET", `/tenants/${t}/pages/README/badge.svg?inc=1`, camo)));
    // isbot calls the user agent a bot, and this tenant does not count bots: shown, not counted.
    assert.deepEqual([...new Set(values)], ["0"]);
    const rows = async () => (await svc.db.prepare("SELECT agent, COUNT(*) AS n FROM visits WHERE tenant_id = ? GROUP BY agent").bind(t).all()).results;
    assert.ok(await eventually(async () => (await rows()).length > 0));
    assert.deepEqual(await rows(), [{ agent: "bot", n: 10 }], "ten logged within the budget, as a bot");
  });

  test("a counter badge too; past the proxy budget it shows the value uncounted", async () => {
    const tight = await startWorker({ vars: { RATE_LIMIT_PROXY: "5" }, cf: GITHUB });
    try {
      const t = (await tight.createTenant()).tenant_id;
      const c = (await tight.createCounter(t, { label: "stars" })).counter_id;
      const answers = [];
      for (let i = 0; i < 8; i++) answers.push(await tight.request("GET", `/tenants/${t}/${c}/badge.svg?inc=1`, camo));
      assert.deepEqual(answers.map((a) => a.status), Array(8).fill(200));
      assert.deepEqual(answers.map(shown), ["1", "2", "3", "4", "5", "5", "5", "5"]);
      assert.match(answers[7].text, /aria-label="stars: 5"/);
      // A reader's own browser has a budget of its own.
      const direct = await tight.request("GET", `/tenants/${t}/${c}/badge.svg?inc=1`, { ip: "198.51.100.5", headers: { "User-Agent": AGENTS.chrome } });
      assert.equal(shown(direct), "6");
    } finally {
      await tight.close();
    }
  });
});

describe("the migration routes count their own clients", () => {
  test("curl, python-requests, Go, Java, ApacheBench and no user agent all count", async () => {
    const clients = [AGENTS.curl, AGENTS.pythonRequests, AGENTS.go, AGENTS.java, AGENTS.apacheBench, ""];
    const start = Number((await svc.request("GET", "/web-counter/")).text);
    const seen = [];
    for (const [i, ua] of clients.entries()) {
      const res = await svc.request("POST", "/web-counter/increment", { ip: clientIp(100 + i), headers: { "User-Agent": ua } });
      assert.equal(res.status, 200, ua);
      seen.push(Number(res.text));
    }
    assert.deepEqual(seen, clients.map((_, i) => start + i + 1));
    const get = await svc.request("GET", "/web-counter/increment", { headers: { "User-Agent": AGENTS.curl } });
    assert.equal(Number(get.text), start + clients.length + 1);

    const before = (await svc.request("GET", "/api/v1/counter")).json.count;
    for (const ua of [AGENTS.curl, AGENTS.pythonRequests]) {
      assert.equal((await svc.request("POST", "/api/v1/counter", { headers: { "User-Agent": ua } })).status, 204);
    }
    assert.equal((await svc.request("GET", "/api/v1/counter")).json.count, before + 2);

    const page = `/scripted-${crypto.randomUUID()}`;
    const visit = await svc.request("POST", `/visit/${encodeURIComponent(page)}`, { headers: { "User-Agent": AGENTS.go } });
    assert.equal(visit.json.status, "success");
    assert.deepEqual((await svc.request("GET", `/visits/${encodeURIComponent(page)}`)).json, { count: 1, served_via: "durable_object" });
  });

  test("a tenant's own pages say why a script's visit did not count", async () => {
    const t = await pageTenant();
    const res = await svc.request("POST", `/tenants/${t}/pages/hello/visit`, { headers: { "User-Agent": AGENTS.curl } });
    assert.deepEqual(res.json, { page_id: "hello", count: 0, unique: false, counted: false, reason: "bot" });
    const browser = await svc.request("POST", `/tenants/${t}/pages/hello/visit`, { headers: { "User-Agent": AGENTS.chrome } });
    assert.deepEqual(browser.json, { page_id: "hello", count: 1, unique: true, counted: true, reason: null });
  });

  test("budgets still hold per client: a load test from one address counts its budget", async () => {
    const statuses = [];
    for (let i = 0; i < 12; i++) statuses.push((await svc.request("POST", "/api/v1/counter", { ip: "203.0.113.200", headers: { "User-Agent": AGENTS.apacheBench } })).status);
    assert.deepEqual(statuses, [...Array(10).fill(204), 429, 429]);
  });
});

describe("unique visitors on a busy page", () => {
  test("5,000 visitors: every first visit is unique, no repeat is, and history agrees", async () => {
    const t = await pageTenant();
    const path = `/tenants/${t}/pages/busy/visit`;
    const visitor = (i) => ({ ip: clientIp(i), headers: { "User-Agent": `${AGENTS.firefox} v${i % 7}` } });
    const N = 5_000;
    const round = async () => {
      const flags = [];
      for (let i = 0; i < N; i += 250) {
        const answers = await Promise.all(Array.from({ length: 250 }, (_, j) => svc.request("POST", path, visitor(i + j))));
        for (const a of answers) {
          assert.equal(a.status, 200);
          flags.push(a.json.unique);
        }
      }
      return flags;
    };
    const first = await round();
    assert.equal(first.filter(Boolean).length, N, "every first visit is unique");
    const again = await round();
    assert.equal(again.filter(Boolean).length, 0, "no repeat is");
    const read = await svc.request("GET", `/tenants/${t}/pages/busy`);
    assert.deepEqual(read.json, { page_id: "busy", count: 2 * N, uniques_today: N });
    const rows = async () => (await svc.db.prepare("SELECT COUNT(*) AS n FROM visits WHERE tenant_id = ?").bind(t).first()).n;
    assert.ok(await eventually(async () => (await rows()) === 2 * N, 20_000), "every visit reaches D1");
    const history = await svc.request("GET", `/tenants/${t}/pages/busy/history`);
    assert.equal(history.json.series.at(-1).uniques, N, "a day's uniques equal that day's uniques_today");
    assert.deepEqual(history.json.total, { visits: 2 * N, visitor_days: N });
  });
});

describe("retention on a busy deployment", () => {
  /** Inserts `n` visit rows of one page on one day, in SQL, with every 3rd unique. */
  async function oldRows(db, tenant, page, day, n, firstSeq = 1) {
    await db
      .prepare(
        `WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ?4)
         INSERT INTO visits (tenant_id, page_id, seq, ts, referrer_host, country, agent, counted, is_unique)
         SELECT ?1, ?2, ?5 + i, ?3 * ${DAY} + (i % 86400) * 1000, NULL, NULL, 'browser', 1, CASE WHEN i % 3 = 0 THEN 1 ELSE 0 END FROM s`,
      )
      .bind(tenant, page, day, n, firstSeq)
      .run();
  }

  test("150,000 expired rows of one day: one run rolls them all up, and history never double-counts", async () => {
    const t = await pageTenant();
    await svc.request("POST", `/tenants/${t}/pages/archive/visit`, { headers: { "User-Agent": AGENTS.chrome } });
    const day = Math.floor(Date.now() / DAY) - 500;
    await oldRows(svc.db, t, "archive", day, 150_000, 1000);
    const range = `from=${new Date(day * DAY).toISOString().slice(0, 10)}&to=${new Date((day + 1) * DAY).toISOString().slice(0, 10)}`;
    const before = await svc.request("GET", `/tenants/${t}/pages/archive/history?${range}`);
    assert.deepEqual(before.json.series.map((b) => [b.visits, b.uniques]), [[150_000, 50_000]]);
    await (await svc.mf.getWorker(ANNEX)).scheduled({ cron: "17 3 * * *" });
    const left = await svc.db.prepare("SELECT COUNT(*) AS n FROM visits WHERE tenant_id = ? AND ts < ?").bind(t, (day + 1) * DAY).first();
    assert.equal(left.n, 0, "nothing expired is left after one run");
    const after = await svc.request("GET", `/tenants/${t}/pages/archive/history?${range}`);
    assert.deepEqual(after.json.series.map((b) => [b.visits, b.uniques]), [[150_000, 50_000]]);
  });

  test("history is exact after every step of a deletion that takes many runs", async () => {
    const slow = await startWorker({ vars: { RETENTION_BATCH_ROWS: "4", RETENTION_RUN_SECONDS: "0" } });
    try {
      const t = (await slow.request("POST", "/tenants", { headers: admin, json: { label: "ret", page_auto_create: true } })).json.tenant_id;
      await slow.request("POST", `/tenants/${t}/pages/p/visit`, { headers: { "User-Agent": AGENTS.chrome } });
      await slow.request("POST", `/tenants/${t}/pages/q/visit`, { headers: { "User-Agent": AGENTS.chrome } });
      const day = Math.floor(Date.now() / DAY) - 450;
      // Two pages' rows, interleaved in time: a step moves the oldest rows of every page.
      await oldRows(slow.db, t, "p", day, 10, 1000);
      await oldRows(slow.db, t, "p", day + 1, 5, 2000);
      await oldRows(slow.db, t, "q", day, 7, 1000);
      const range = `from=${new Date(day * DAY).toISOString().slice(0, 10)}&to=${new Date((day + 2) * DAY).toISOString().slice(0, 10)}`;
      const history = async () =>
        Promise.all(
          ["p", "q"].map(async (page) => (await slow.request("GET", `/tenants/${t}/pages/${page}/history?${range}`)).json.series.map((b) => [b.visits, b.uniques])),
        );
      const expected = [
        [[10, 4], [5, 2]],
        [[7, 3], [0, 0]],
      ];
      assert.deepEqual(await history(), expected);
      const worker = await slow.mf.getWorker(ANNEX);
      const remaining = async () => (await slow.db.prepare("SELECT COUNT(*) AS n FROM visits WHERE tenant_id = ? AND ts < ?").bind(t, (day + 2) * DAY).first()).n;
      const seen = [];
      for (let run = 0; run < 10 && (await remaining()) > 0; run++) {
        await worker.scheduled({ cron: "17 3 * * *" });
        seen.push(await remaining());
        assert.deepEqual(await history(), expected, `after run ${run + 1}`);
      }
      assert.ok(seen.length >= 4, `took ${seen.length} runs: ${seen}`);
      assert.equal(await remaining(), 0);
    } finally {
      await slow.close();
    }
  });
});

describe("requests that must change nothing", () => {
  test("a HEAD of a counting badge or of /web-counter/increment counts nothing", async () => {
    const t = await pageTenant();
    for (let i = 0; i < 3; i++) {
      const res = await svc.request("HEAD", `/tenants/${t}/pages/head/badge.svg?inc=1`, { headers: { "User-Agent": AGENTS.chrome } });
      assert.equal(res.status, 200);
      assert.equal(res.text, "");
    }
    assert.equal(errorCode(await svc.request("GET", `/tenants/${t}/pages/head`)), "PAGE_NOT_FOUND", "not even created");
    const before = (await svc.request("GET", "/web-counter/")).text;
    assert.equal((await svc.request("HEAD", "/web-counter/increment")).status, 200);
    assert.equal((await svc.request("GET", "/web-counter/")).text, before);
  });
});

describe("pages anonymous visitors cannot exhaust", () => {
  test("an administrator deletes a page with its history; its slot is free again", async () => {
    const capped = await startWorker({ vars: { MAX_PAGES_PER_TENANT: "2" } });
    try {
      const t = (await capped.request("POST", "/tenants", { headers: admin, json: { label: "del", page_auto_create: true } })).json.tenant_id;
      const browser = { headers: { "User-Agent": AGENTS.chrome } };
      for (const p of ["a", "b", "b"]) assert.equal((await capped.request("POST", `/tenants/${t}/pages/${p}/visit`, browser)).status, 200);
      assert.equal(errorCode(await capped.request("POST", `/tenants/${t}/pages/c/visit`, browser)), "PAGE_LIMIT_REACHED");
      const d1 = async (table) => (await capped.db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE tenant_id = ? AND page_id = 'b'`).bind(t).first()).n;
      assert.ok(await eventually(async () => (await d1("visits")) === 2));
      assert.equal((await capped.request("DELETE", `/tenants/${t}/pages/b`)).status, 401, "admin only");
      const deleted = await capped.request("DELETE", `/tenants/${t}/pages/b`, { headers: admin });
      assert.equal(deleted.status, 204);
      assert.deepEqual([await d1("visits"), await d1("pages"), await d1("visit_days")], [0, 0, 0]);
      assert.equal(errorCode(await capped.request("GET", `/tenants/${t}/pages/b`)), "PAGE_NOT_FOUND");
      assert.equal(errorCode(await capped.request("DELETE", `/tenants/${t}/pages/b`, { headers: admin })), "PAGE_NOT_FOUND");
      assert.equal((await capped.request("POST", `/tenants/${t}/pages/c/visit`, browser)).json.count, 1, "the slot is free");
      // A page deleted and visited again starts from nothing.
      assert.equal((await capped.request("DELETE", `/tenants/${t}/pages/c`, { headers: admin })).status, 204);
      assert.equal((await capped.request("POST", `/tenants/${t}/pages/c/visit`, browser)).json.count, 1);
    } finally {
      await capped.close();
    }
  });

  test("page creation by visits is budgeted per tenant and hour", async () => {
    const budgeted = await startWorker({ vars: { PAGE_CREATE_PER_HOUR: "3" } });
    try {
      const t = (await budgeted.request("POST", "/tenants", { headers: admin, json: { label: "budget", page_auto_create: true } })).json.tenant_id;
      const visit = (p, i) => budgeted.request("POST", `/tenants/${t}/pages/${p}/visit`, { ip: clientIp(i), headers: { "User-Agent": AGENTS.chrome } });
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push((await visit(`random-${i}`, i)).status);
      assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
      const refused = await visit("random-9", 9);
      assert.equal(errorCode(refused), "RATE_LIMIT_EXCEEDED");
      const retryAfter = Number(refused.headers.get("retry-after"));
      assert.ok(retryAfter > 3000 && retryAfter <= 3600, `Retry-After ${retryAfter}`);
      assert.equal((await visit("random-0", 20)).json.count, 2, "existing pages keep counting");
      const pages = await budgeted.db.prepare("SELECT COUNT(*) AS n FROM pages WHERE tenant_id = ?").bind(t).first();
      assert.equal(pages.n, 3);
      // A badge of a page it may not create still renders.
      const badge = await budgeted.request("GET", `/tenants/${t}/pages/random-7/badge.svg?inc=1`, { headers: { "User-Agent": AGENTS.chrome } });
      assert.equal(badge.status, 200);
      assert.equal(shown(badge), "0");
    } finally {
      await budgeted.close();
    }
  });

  test("a counting badge embedded on a site outside the tenant's origins renders but does not count", async () => {
    const t = await pageTenant({ allowed_origins: ["https://mine.example"] });
    const badge = (referer) =>
      svc.request("GET", `/tenants/${t}/pages/embedded/badge.svg?inc=1`, { headers: { "User-Agent": AGENTS.chrome, ...(referer ? { Referer: referer } : {}) } });
    assert.equal(shown(await badge("https://mine.example/post/1")), "1");
    const elsewhere = await badge("https://elsewhere.example/copied");
    assert.equal(elsewhere.status, 200);
    assert.equal(shown(elsewhere), "1", "shown, not counted");
    assert.equal(shown(await badge()), "2", "no Referer (a privacy-minded browser, a proxy) counts");
  });

  test("a page keeps counting when D1 is unreachable, with its tenant's settings from its own storage", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edgecount-d1down-"));
    try {
      const first = await startWorker({ persistTo: dir });
      const t = (await first.request("POST", "/tenants", { headers: admin, json: { label: "d1down", page_auto_create: true, count_bots: true } })).json.tenant_id;
      assert.equal((await first.request("POST", `/tenants/${t}/pages/home/visit`, { headers: { "User-Agent": AGENTS.curl } })).json.count, 1);
      await first.close();
      const second = await startWorker({ persistTo: dir });
      try {
        await second.db.exec("ALTER TABLE tenants RENAME TO tenants_parked");
        // A cold object, D1's tenant row out of reach: the page counts, bots included,
        // as its tenant decided.
        const res = await second.request("POST", `/tenants/${t}/pages/home/visit`, { headers: { "User-Agent": AGENTS.curl } });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual({ count: res.json.count, counted: res.json.counted }, { count: 2, counted: true });
        await second.db.exec("ALTER TABLE tenants_parked RENAME TO tenants");
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("smaller faults", () => {
  test("a page named badge.svg is a page", async () => {
    const t = await pageTenant();
    assert.equal((await svc.request("POST", `/tenants/${t}/pages/badge.svg/visit`, { headers: { "User-Agent": AGENTS.chrome } })).json.count, 1);
    assert.deepEqual((await svc.request("GET", `/tenants/${t}/pages/badge.svg`)).json, { page_id: "badge.svg", count: 1, uniques_today: 1 });
  });

  test("a counter's longest label fits its badge", async () => {
    const t = (await svc.createTenant()).tenant_id;
    const label = "l".repeat(100);
    const c = (await svc.createCounter(t, { label })).counter_id;
    const res = await svc.request("GET", `/tenants/${t}/${c}/badge.svg`);
    assert.equal(res.headers.get("x-edgecount-error"), null);
    assert.match(res.text, new RegExp(`aria-label="${label}: 0"`));
  });

  test("a batch whose write fails half-way stores nothing of it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edgecount-halfway-"));
    try {
      const faulty = await startWorker({ persistTo: dir, vars: { EDGECOUNT_FAULT: "batch-write" } });
      const t = (await faulty.createTenant()).tenant_id;
      const c = (await faulty.createCounter(t)).counter_id;
      const answers = await Promise.all(
        Array.from({ length: 5 }, (_, i) => faulty.request("POST", `/tenants/${t}/${c}/inc`, { ip: clientIp(i), headers: { "Idempotency-Key": crypto.randomUUID() } })),
      );
      assert.deepEqual(answers.map((a) => a.status), Array(5).fill(500), "none acknowledged");
      assert.equal((await faulty.request("GET", `/tenants/${t}/${c}`)).json.value, 0);
      await faulty.close();
      const healthy = await startWorker({ persistTo: dir });
      try {
        assert.equal((await healthy.request("GET", `/tenants/${t}/${c}`)).json.value, 0, "storage never ran ahead of what was acknowledged");
        assert.equal((await healthy.request("POST", `/tenants/${t}/${c}/inc`)).json.value, 1);
      } finally {
        await healthy.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a stored change is acknowledged even when arming its flush fails", async () => {
    const faulty = await startWorker({ vars: { EDGECOUNT_FAULT: "arm-alarm" } });
    try {
      const t = (await faulty.createTenant()).tenant_id;
      const c = (await faulty.createCounter(t)).counter_id;
      const res = await faulty.request("POST", `/tenants/${t}/${c}/inc`);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.value, 1);
      assert.equal((await faulty.request("GET", `/tenants/${t}/${c}`)).json.value, 1);
    } finally {
      await faulty.close();
    }
  });
});
