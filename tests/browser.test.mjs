// The example blog in a real browser (Debian's Chromium, driven by playwright-core):
// the embed script counts and shows views, the like button counts, a site outside the
// allowed origins gets nothing and breaks nothing, and the badge renders at its width.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { admin, eventually, root, startWorker } from "./helpers/worker.mjs";

const BLOG = join(root, "examples", "static-blog");
const TYPES = { ".html": "text/html; charset=utf-8", ".css": "text/css" };

/** Serves the example blog as any static server would, pointed at this test's Worker. */
let substitute = (text) => text;
async function serveBlog() {
  const server = createServer((req, res) => {
    const name = new URL(req.url, "http://x").pathname.replace(/^\/$/, "/index.html");
    try {
      const text = readFileSync(join(BLOG, name.replace(/\.\./g, "")), "utf8");
      res.writeHead(200, { "content-type": TYPES[name.slice(name.lastIndexOf("."))] ?? "text/plain" });
      res.end(substitute(text, req.url));
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

let svc;
let blog;
let stranger;
let browser;
let tenant;
let counter;

before(async () => {
  // The allowed origin must be known before the Worker starts: start the blog first.
  blog = await serveBlog();
  stranger = await serveBlog();
  // With static assets in front, as deployed: the embed script is one.
  svc = await startWorker({ assets: true, vars: { CORS_ALLOWED_ORIGINS: blog.url } });
  const api = new URL(svc.url).origin;
  const created = await svc.request("POST", "/tenants", { headers: admin, json: { label: "blog", page_auto_create: true } });
  tenant = created.json.tenant_id;
  counter = (await svc.createCounter(tenant, { label: "likes" })).counter_id;
  // `?as-is`: the page as a real site has it, without the example's data-edgecount-localhost.
  substitute = (text, url = "") => {
    const page = text.replaceAll("http://127.0.0.1:8787", api).replaceAll("YOUR_TENANT_ID", tenant).replaceAll("YOUR_COUNTER_ID", counter);
    if (url.includes("hash-routes")) return page.replace(/ data-edgecount-track(?=[\s>])/, " data-edgecount-track data-edgecount-hash");
    return url.includes("as-is") ? page.replaceAll(" data-edgecount-localhost", "") : page;
  };
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
});

after(async () => {
  await browser?.close();
  blog?.server.close();
  stranger?.server.close();
  await svc?.close();
});

async function open(url, { referer } = {}) {
  // A person's browser: headless Chromium's own user agent is (rightly) counted as a bot.
  const userAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
  const page = await browser.newPage({ viewport: { width: 900, height: 700 }, deviceScaleFactor: 1, userAgent });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  if (process.env.EDGECOUNT_TEST_LOGS) page.on("console", (m) => console.log("browser:", m.text()));
  await page.goto(url, referer ? { referer } : {});
  return { page, errors };
}

test("the view count appears, and a reload adds exactly one", async () => {
  const { page, errors } = await open(`${blog.url}/post.html`);
  await page.waitForSelector("#views[data-edgecount-ready]");
  const first = Number(await page.textContent("#views"));
  assert.ok(first >= 1, `first count ${first}`);
  await page.reload();
  await page.waitForSelector("#views[data-edgecount-ready]");
  assert.equal(Number(await page.textContent("#views")), first + 1);
  const stored = await svc.request("GET", `/tenants/${tenant}/pages/${encodeURIComponent("/post.html")}`);
  assert.equal(stored.json.count, first + 1);
  assert.deepEqual(errors, []);
  await page.close();
});

test("the like button counts one like per click", async () => {
  const { page, errors } = await open(`${blog.url}/post.html`);
  await page.waitForSelector("#like[data-edgecount-ready]");
  const before = Number(await page.textContent("#like [data-edgecount-value]"));
  await page.click("#like");
  await page.waitForFunction((n) => Number(document.querySelector("#like [data-edgecount-value]").textContent) === n + 1, before);
  assert.equal((await svc.request("GET", `/tenants/${tenant}/${counter}`)).json.value, before + 1);
  assert.deepEqual(errors, []);
  await page.close();
});

test("a page from an origin not allowed gets no number and no uncaught error", async () => {
  const before = (await svc.request("GET", `/tenants/${tenant}/pages/${encodeURIComponent("/post.html")}`)).json.count;
  const { page, errors } = await open(`${stranger.url}/post.html`);
  await page.waitForLoadState("networkidle");
  assert.equal((await page.textContent("#views")).trim(), "–", "the fallback text stays");
  assert.equal(await page.getAttribute("#views", "data-edgecount-ready"), null);
  assert.deepEqual(errors, []);
  const after = (await svc.request("GET", `/tenants/${tenant}/pages/${encodeURIComponent("/post.html")}`)).json.count;
  assert.equal(after, before, "the refused visit did not count");
  await page.close();
});

test("the badge renders as an image of its own width", async () => {
  const { page } = await open(`${blog.url}/index.html`);
  await page.waitForSelector("[data-edgecount-ready]");
  await page.waitForFunction(() => document.querySelector("#badge").complete && document.querySelector("#badge").naturalWidth > 0);
  const svg = await (await fetch(`${new URL(svc.url).origin}/tenants/${tenant}/pages/%2Fpost.html/badge.svg?label=reads`)).text();
  const width = Number(/<svg[^>]* width="(\d+)"/.exec(svg)[1]);
  const natural = await page.$eval("#badge", (img) => [img.naturalWidth, img.naturalHeight]);
  assert.deepEqual(natural, [width, 20]);
  const shot = await (await page.$("#badge")).screenshot();
  // PNG header: width and height at bytes 16 and 20. A fractional layout position can
  // add a row, so the height is checked from the image itself (above).
  assert.equal(shot.readUInt32BE(16), width, "the screenshot is as wide as the SVG says");
  assert.ok(shot.readUInt32BE(20) >= 20);
  // The picture the README shows, refreshed on request so tests leave the tree clean.
  const picture = process.env.EDGECOUNT_UPDATE_SCREENSHOT ? join(root, "docs", "example-blog.png") : join(tmpdir(), "edgecount-example-blog.png");
  await page.screenshot({ path: picture });
  await page.close();
});

const pageCount = async (id) => (await svc.request("GET", `/tenants/${tenant}/pages/${encodeURIComponent(id)}`)).json?.count ?? 0;

test("a single-page site counts each path it navigates to once", async () => {
  const { page, errors } = await open(`${blog.url}/spa.html`, { referer: "https://news.example.com/story?id=7&token=secret" });
  const visits = [];
  page.on("request", (r) => r.method() === "POST" && r.url().includes("/visit") && visits.push(new URL(r.url()).pathname));
  await page.waitForSelector("#views[data-edgecount-ready]");
  await page.click("text=First post");
  await page.waitForFunction(() => location.pathname === "/spa/first");
  await page.click("text=Second post");
  await page.click("text=Home");
  await page.goBack(); // popstate: /spa/second again
  await page.evaluate(() => history.replaceState(null, "", location.pathname)); // same path
  await page.click("text=First post");
  // Time for any request a navigation would have made to go out.
  await page.waitForTimeout(700);
  // After the landing (counted before the listener): one request per new path, none for
  // going back, the same path replaced, or a path counted already.
  assert.deepEqual(visits.map(decodeURIComponent), [`/tenants/${tenant}/pages//spa/first/visit`, `/tenants/${tenant}/pages//spa/second/visit`]);
  for (const id of ["/spa.html", "/spa/first", "/spa/second"]) assert.equal(await pageCount(id), 1, id);
  assert.equal(await page.textContent("#views"), "1", "the current page's count is shown");
  // The landing came from news.example.com (only its host travelled); navigations inside
  // the site came from nowhere, not from the site itself.
  const rows = async () =>
    (await svc.db.prepare("SELECT page_id, referrer_host FROM visits WHERE tenant_id = ? AND page_id LIKE '/spa%' ORDER BY page_id").bind(tenant).all()).results;
  assert.ok(await eventually(async () => (await rows()).length === 3, 10_000));
  assert.deepEqual(await rows(), [
    { page_id: "/spa.html", referrer_host: "news.example.com" },
    { page_id: "/spa/first", referrer_host: null },
    { page_id: "/spa/second", referrer_host: null },
  ]);
  assert.deepEqual(errors, []);
  await page.close();
});

test("ignore my visits, and localhost, show counts and count nothing", async () => {
  const before = await pageCount("/post.html");
  const { page, errors } = await open(`${blog.url}/post.html`);
  await page.waitForSelector("#views[data-edgecount-ready]");
  assert.equal(await pageCount("/post.html"), before + 1);
  await page.evaluate(() => localStorage.setItem("edgecount_ignore", "1"));
  await page.reload();
  await page.waitForSelector("#views[data-edgecount-ready]");
  assert.equal(Number(await page.textContent("#views")), before + 1, "the count still shows");
  assert.equal(await pageCount("/post.html"), before + 1, "and did not grow");
  await page.evaluate(() => localStorage.removeItem("edgecount_ignore"));
  // The page as a real site ships it, opened on this machine: nothing counts.
  await page.goto(`${blog.url}/post.html?as-is`);
  await page.waitForSelector("#views[data-edgecount-ready]");
  assert.equal(await pageCount("/post.html"), before + 1);
  assert.deepEqual(errors, []);
  await page.close();
});

test("hash routes count only when the site opts in", async () => {
  const { page, errors } = await open(`${blog.url}/spa.html?hash-routes`);
  await page.waitForSelector("#views[data-edgecount-ready]");
  await page.evaluate(() => { location.hash = "#/inbox"; });
  await page.waitForFunction(() => location.hash === "#/inbox");
  await page.waitForLoadState("networkidle");
  assert.ok(await eventually(async () => (await pageCount("/spa.html#/inbox")) === 1, 5000), "the hash route counted");
  // Without the opt-in, a hash change is the same page.
  const plain = await open(`${blog.url}/spa.html`);
  await plain.page.waitForSelector("#views[data-edgecount-ready]");
  await plain.page.evaluate(() => { location.hash = "#/outbox"; });
  await plain.page.waitForTimeout(700);
  assert.equal(await pageCount("/spa.html#/outbox"), 0);
  assert.deepEqual([...errors, ...plain.errors], []);
  await page.close();
  await plain.page.close();
});
