// The dashboard in a real browser (Chromium via playwright-core), served by static
// assets in front of the Worker as deployed: sign-in with a key and with a share link,
// the numbers on screen equal the API's, filtering by a page, an empty tenant, a bad
// key, an expired link, 360 px, axe-core, no third-party requests, and its size.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { AGENTS, admin, clientIp, eventually, root, startWorker } from "./helpers/worker.mjs";

let svc;
let browser;
let tenant;
let origin;
const enc = encodeURIComponent;

before(async () => {
  svc = await startWorker({ assets: true, vars: { FLUSH_INTERVAL_MS: "100" } });
  origin = new URL(svc.url).origin;
  tenant = (await svc.request("POST", "/tenants", { headers: admin, json: { label: "my-blog.example", page_auto_create: true } })).json.tenant_id;
  const pages = ["/", "/posts/hello", "/posts/edge", "/about"];
  const referrers = ["https://news.ycombinator.com/item?id=1", "https://www.google.com/", undefined];
  let sent = 0;
  for (let i = 0; i < 60; i++) {
    const headers = { "User-Agent": i % 9 === 4 ? AGENTS.googlebot : AGENTS.firefox.replace("133", String(100 + i)) };
    const referrer = referrers[i % 3];
    if (referrer) headers.Referer = referrer;
    for (const page of pages.slice(0, 1 + (i % 4))) {
      const res = await svc.request("POST", `/tenants/${tenant}/pages/${enc(page)}/visit`, { headers, ip: clientIp(i), cf: { country: ["DE", "US", "FR"][i % 3] } });
      assert.equal(res.status, 200, res.text);
      sent++;
    }
  }
  const likes = (await svc.createCounter(tenant, { label: "likes" })).counter_id;
  for (let i = 0; i < 3; i++) await svc.request("POST", `/tenants/${tenant}/${likes}/inc`, { ip: clientIp(i), headers: { "User-Agent": AGENTS.firefox } });
  assert.ok(
    await eventually(async () => {
      const row = await svc.db.prepare("SELECT (SELECT COUNT(*) FROM visits WHERE tenant_id = ?1) AS n, (SELECT MIN(rolled_seq = version) FROM pages WHERE tenant_id = ?1) AS rolled").bind(tenant).first();
      return row.n === sent && row.rolled === 1;
    }, 15_000),
    "the seed reached D1 and the rollups",
  );
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
});

after(async () => {
  await browser?.close();
  await svc?.close();
});

// `bypassCSP` only where the test injects axe-core: the dashboard's own CSP allows no
// inline script, and any violation of it by the page itself is an error here.
async function open(path, { width = 1200, height = 900, scheme = "light", bypassCSP = false } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, colorScheme: scheme, bypassCSP });
  const page = await context.newPage();
  const errors = [];
  const requests = [];
  page.on("pageerror", (e) => errors.push(e));
  page.on("console", (m) => m.type() === "error" && /Content Security Policy/.test(m.text()) && errors.push(m.text()));
  page.on("request", (r) => requests.push(r.url()));
  await page.goto(`${origin}${path}`);
  return { page, errors, requests, close: () => context.close() };
}

async function signIn(page, key, t = tenant) {
  await page.fill("#tenant", t);
  await page.fill("#key", key);
  await page.click("text=Open dashboard");
}

const shown = (page, key) => page.textContent(`[data-total="${key}"] .value`).then((t) => t.replace(/,/g, ""));

async function stats(query) {
  const res = await svc.request("GET", `/tenants/${tenant}/stats?${query}`, { headers: admin });
  assert.equal(res.status, 200, res.text);
  return res.json;
}

function dayRange(days) {
  const today = Math.floor(Date.now() / 86_400_000) * 86_400_000;
  return `from=${new Date(today - (days - 1) * 86_400_000).toISOString()}&to=${new Date(today + 86_400_000).toISOString()}&granularity=day&limit=10`;
}

test("a key signs in; the numbers on screen are the API's; a page filters everything", async () => {
  const { page, errors, requests, close } = await open("/dashboard/");
  await signIn(page, "test-admin-key");
  await page.waitForSelector('[data-total="visits"] .value');
  const api = await stats(dayRange(30));
  assert.equal(await shown(page, "visits"), String(api.totals.counted));
  assert.equal(await shown(page, "visitors"), String(api.totals.visitors));
  assert.equal(await shown(page, "uniques"), String(api.totals.uniques));
  assert.equal(await shown(page, "bots"), String(api.totals.bots));
  const topPages = await page.$$eval("#top-pages li", (lis) => lis.map((li) => [li.querySelector(".name").textContent, li.querySelector(".count").textContent]));
  assert.deepEqual(topPages, api.top.pages.map((p) => [p.value, String(p.visits)]));
  assert.ok(await page.isVisible(".uplot canvas"), "the chart is drawn");
  // The counters panel: the value and its latest operations.
  await page.waitForFunction(() => !document.querySelector("#counters td:last-child")?.textContent.includes("…"));
  assert.equal(await page.textContent("#counters td[data-counter-value]"), "3");
  assert.match(await page.textContent("#counters td:last-child"), /increment \+1/);

  await page.click('#top-pages button:text-is("/posts/hello")');
  await page.waitForFunction(() => !document.getElementById("filter").hidden);
  const narrowed = await stats(`${dayRange(30)}&page=${enc("/posts/hello")}`);
  await page.waitForFunction((n) => document.querySelector('[data-total="visits"] .value').textContent.replace(/,/g, "") === String(n), narrowed.totals.counted);
  assert.ok(narrowed.totals.counted < api.totals.counted);
  assert.equal(await page.textContent("#filter-page"), "/posts/hello");
  const referrers = await page.$$eval("#top-referrers .count", (els) => els.map((e) => e.textContent));
  assert.deepEqual(referrers, narrowed.top.referrers.map((r) => String(r.visits)));
  await page.click("#filter-clear");
  await page.waitForFunction(() => document.getElementById("filter").hidden);

  await page.click('[data-range="today"]');
  await page.waitForFunction(() => document.getElementById("range-label").textContent.startsWith("Today"));
  assert.equal(await page.getAttribute('[data-range="today"]', "aria-pressed"), "true");

  // The key never travels in a URL, and nothing is asked of anyone else.
  assert.ok(requests.every((u) => new URL(u).origin === origin), requests.filter((u) => new URL(u).origin !== origin).join(" "));
  assert.ok(requests.every((u) => !u.includes("test-admin-key")));
  assert.equal(await page.evaluate(() => JSON.parse(sessionStorage.getItem("edgecount.session")).key), "test-admin-key");
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.deepEqual(errors, []);
  await close();
});

test("a share link opens read-only stats, and an expired or revoked one says so", async () => {
  const issued = (await svc.request("POST", `/v2/tenants/${tenant}/credentials`, { headers: admin, json: { scopes: ["tenant:read"] } })).json;
  const { page, errors, requests, close } = await open(`/dashboard/#tenant=${tenant}&key=${issued.api_key}`);
  await page.waitForSelector('[data-total="visits"] .value');
  const api = await stats(dayRange(30));
  assert.equal(await shown(page, "visits"), String(api.totals.counted));
  assert.equal(await page.evaluate(() => location.hash), "", "the key leaves the address bar");
  assert.ok(requests.every((u) => !u.includes(issued.api_key)), "the key is never in a request line");
  await page.waitForFunction(() => document.getElementById("counters").textContent.includes("does not read counters"));
  assert.equal(await page.isHidden("#share"), true, "a share link cannot make more");
  // Revoked: the next load says so instead of showing a blank page.
  assert.equal((await svc.request("POST", `/v2/tenants/${tenant}/credentials/${issued.credential_id}/revoke`, { headers: admin })).status, 204);
  const again = await open(`/dashboard/#tenant=${tenant}&key=${issued.api_key}`);
  await again.page.waitForSelector("#notice:not([hidden])");
  assert.match(await again.page.textContent("#notice"), /share link has expired or was revoked/);
  assert.equal(await again.page.isVisible("#signin"), true);
  assert.deepEqual([...errors, ...again.errors], []);
  await again.close();
  await close();
});

test("the owner makes a share link from the dashboard", async () => {
  const { page, close } = await open("/dashboard/");
  await signIn(page, "test-admin-key");
  await page.waitForSelector('[data-total="visits"] .value');
  await page.click("#share");
  await page.waitForFunction(() => document.getElementById("share-link").value.includes("#tenant="));
  const link = await page.inputValue("#share-link");
  const key = new URLSearchParams(new URL(link).hash.slice(1)).get("key");
  const listed = (await svc.request("GET", `/v2/tenants/${tenant}/credentials`, { headers: admin })).json.credentials;
  const made = listed.find((c) => key.startsWith(`ck_${c.credential_id}.`));
  assert.deepEqual(made.scopes, ["tenant:read"]);
  assert.ok(made.expires_at, "share links expire");
  await close();
});

test("a bad key, an empty tenant, and a failed call each say what happened", async () => {
  const bad = await open("/dashboard/");
  await signIn(bad.page, "ck_01900000-0000-7000-8000-000000000000.nope");
  await bad.page.waitForSelector("#notice:not([hidden])");
  assert.match(await bad.page.textContent("#notice"), /key was not accepted/);
  await bad.close();

  const empty = (await svc.createTenant()).tenant_id;
  const blank = await open("/dashboard/");
  await signIn(blank.page, "test-admin-key", empty);
  await blank.page.waitForSelector("#empty:not([hidden])");
  assert.match(await blank.page.textContent("#empty"), /No visits in this range yet/);
  assert.equal(await shown(blank.page, "visits"), "0");
  await blank.close();

  const failing = await open("/dashboard/");
  await failing.page.route("**/stats?**", (route) => route.fulfill({ status: 503, contentType: "application/json", body: '{"errors":[{"code":"UPSTREAM_UNAVAILABLE","message":"x"}]}' }));
  await signIn(failing.page, "test-admin-key");
  await failing.page.waitForSelector("#notice:not([hidden])");
  assert.match(await failing.page.textContent("#notice"), /failed \(503 UPSTREAM_UNAVAILABLE\)/);
  assert.equal(await failing.page.isVisible("#notice button"), true, "with a way to try again");
  await failing.close();
});

test("360 px wide, dark, keyboard-reachable and without serious accessibility violations", async () => {
  for (const [width, scheme] of [[360, "dark"], [1200, "light"]]) {
    const { page, errors, close } = await open("/dashboard/", { width, height: 1400, scheme, bypassCSP: true });
    await page.focus("#tenant");
    await page.keyboard.type(tenant);
    await page.keyboard.press("Tab");
    await page.keyboard.type("test-admin-key");
    await page.keyboard.press("Enter");
    await page.waitForSelector('[data-total="visits"] .value');
    await page.waitForSelector(".uplot canvas");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `${width}px: ${overflow}px of horizontal scroll`);
    if (scheme === "dark") {
      const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.equal(background, "rgb(17, 20, 24)", "prefers-color-scheme: dark");
    }
    await page.addScriptTag({ content: readFileSync(join(root, "node_modules", "axe-core", "axe.min.js"), "utf8") });
    const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
    const serious = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    assert.deepEqual(serious.map((v) => `${v.id}: ${v.nodes.map((n) => n.target).join(", ")}`), [], `${width}px ${scheme}`);
    // The pictures the README shows, refreshed on request so tests leave the tree clean.
    const name = width === 360 ? "dashboard-narrow.png" : "dashboard-wide.png";
    const picture = process.env.EDGECOUNT_UPDATE_SCREENSHOT ? join(root, "docs", name) : join(tmpdir(), `edgecount-${name}`);
    await page.screenshot({ path: picture, fullPage: width === 360 ? false : true });
    assert.deepEqual(errors, []);
    await close();
  }
});

test("the page's script and styles stay under 100 KiB gzipped, served without the Worker", async () => {
  let total = 0;
  for (const file of ["app.js", "app.css", "index.html"]) {
    const res = await svc.request("GET", `/dashboard/${file}`);
    assert.equal(res.status, 200, file);
    total += gzipSync(Buffer.from(res.text)).length;
  }
  assert.ok(total <= 100 * 1024, `${total} bytes gzipped`);
  const served = await svc.request("GET", "/dashboard/");
  assert.match(served.headers.get("content-security-policy"), /default-src 'self'/);
  assert.match(served.headers.get("content-security-policy"), /frame-ancestors 'none'/);
  const entry = await svc.request("GET", "/dashboard", { redirect: "manual" });
  assert.ok([200, 307, 308].includes(entry.status), `GET /dashboard: ${entry.status}`);
});
