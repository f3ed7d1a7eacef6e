// Badges, the embed script, and the tenant settings embeds rely on (allowed origins,
// Do Not Track), over HTTP through the real runtime.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { admin, errorCode, startWorker } from "./helpers/worker.mjs";

let svc;
let tenant;
let counter;
before(async () => {
  svc = await startWorker({ vars: { CORS_ALLOWED_ORIGINS: "*" } });
  tenant = (await svc.request("POST", "/tenants", { headers: admin, json: { label: "embeds", page_auto_create: true } })).json.tenant_id;
  counter = (await svc.createCounter(tenant, { label: "likes", initial_value: 1234 })).counter_id;
});
after(() => svc?.close());

const browser = { "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36" };

describe("badges", () => {
  test("a counter badge: SVG, no-cache headers, ETag, the counter's label and value", async () => {
    const res = await svc.request("GET", `/tenants/${tenant}/${counter}/badge.svg`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type"), /^image\/svg\+xml/);
    assert.equal(res.headers.get("cache-control"), "no-cache, no-store, must-revalidate");
    const etag = res.headers.get("etag");
    assert.match(etag, /^"[0-9a-f]{16}"$/);
    assert.match(res.text, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="\d+" height="20"/);
    assert.match(res.text, /aria-label="likes: 1234"/);
    const again = await svc.request("GET", `/tenants/${tenant}/${counter}/badge.svg`, { headers: { "If-None-Match": etag } });
    assert.equal(again.status, 304);
    const short = await svc.request("GET", `/tenants/${tenant}/counters/${counter}/badge.svg?format=short&style=for-the-badge&color=blue&label_color=%23123456`);
    assert.match(short.text, /aria-label="LIKES: 1.2K"/);
    assert.match(short.text, /height="28"/);
    assert.match(short.text, /fill="#123456"/);
    const accented = await svc.request("GET", `/tenants/${tenant}/${counter}/badge.svg?style=for-the-badge&label=${encodeURIComponent("vues é ß")}`);
    assert.match(accented.text, /aria-label="VUES É SS: 1234"/, "capitals beyond ASCII");
  });

  test("inc=1 counts first; labels are escaped; bad parameters render an error badge and count nothing", async () => {
    const inc = await svc.request("GET", `/tenants/${tenant}/${counter}/badge.svg?inc=1&label=%3Cscript%3Ealert(1)%3C%2Fscript%3E`);
    assert.equal(inc.status, 200);
    assert.ok(!inc.text.includes("<script>"));
    assert.match(inc.text, /&lt;script&gt;alert\(1\)&lt;\/script&gt;: 1235/);
    assert.equal((await svc.request("GET", `/tenants/${tenant}/${counter}`)).json.value, 1235);
    const page = await svc.request("GET", `/tenants/${tenant}/pages/%2Fbadged/badge.svg?inc=1`, { headers: browser });
    assert.match(page.text, /aria-label="views: 1"/);
    const read = await svc.request("GET", `/tenants/${tenant}/pages/%2Fnever/badge.svg`);
    assert.match(read.text, /aria-label="views: 0"/, "an unvisited page reads 0");
    for (const q of ["color=notacolor", "label_color=%23ggg", "style=plastic", "format=tiny", "inc=2", `label=${"x".repeat(129)}`]) {
      // Every parameter is checked before anything counts, so inc=1 with a bad one counts nothing.
      const res = await svc.request("GET", `/tenants/${tenant}/${counter}/badge.svg?inc=1&${q}`);
      assert.equal(res.status, 200, q);
      assert.match(res.headers.get("content-type"), /^image\/svg\+xml/, q);
      assert.equal(res.headers.get("x-edgecount-error"), "INVALID_PARAMETER", q);
      assert.match(res.text, /aria-label="edgecount: invalid parameter"/, q);
    }
    assert.equal((await svc.request("GET", `/tenants/${tenant}/${counter}`)).json.value, 1235, "refused badges count nothing");
    // Errors before any handler (a bad id, an unknown counter) are badges too.
    for (const [path, code] of [
      ["/tenants/not-a-uuid/pages/x/badge.svg?inc=1", "INVALID_UUID"],
      [`/tenants/${tenant}/0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b/badge.svg`, "COUNTER_NOT_FOUND"],
    ]) {
      const res = await svc.request("GET", path, { headers: { ...browser, Origin: "https://anywhere.example" } });
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get("content-type"), /^image\/svg\+xml/, path);
      assert.equal(res.headers.get("x-edgecount-error"), code, path);
    }
  });
});

describe("embed.js", () => {
  test("is a static asset: small, versioned by its ETag and cached long", async () => {
    // Served by Workers Static Assets as deployed: a page load costs no Worker invocation.
    const assets = await startWorker({ assets: true });
    try {
      await checkScript(assets);
    } finally {
      await assets.close();
    }
  });
});

async function checkScript(svc) {
  const res = await svc.request("GET", "/embed.js");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /javascript/);
  assert.match(res.headers.get("cache-control"), /max-age=\d{5,}/);
  const etag = res.headers.get("etag");
  assert.ok(etag);
  const gz = gzipSync(Buffer.from(res.text)).length;
  assert.ok(gz <= 3 * 1024, `${gz} bytes gzipped`);
  const code = res.text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
  assert.ok(!/cookie|sessionStorage|setItem/.test(code), "no cookies, nothing stored");
  assert.deepEqual(code.match(/localStorage\.\w+\([^)]*\)/g), ['localStorage.getItem("edgecount_ignore")'], "one storage read: the ignore switch");
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  assert.equal((await svc.request("GET", "/embed.js", { headers: { "If-None-Match": etag } })).status, 304);
}

describe("tenant settings for embeds", () => {
  test("a tenant's allowed origins decide, falling back to CORS_ALLOWED_ORIGINS", async () => {
    const own = (await svc.request("POST", "/tenants", { headers: admin, json: { label: "strict", page_auto_create: true, allowed_origins: ["https://mine.example"] } })).json;
    assert.deepEqual(own.allowed_origins, ["https://mine.example"]);
    const path = `/tenants/${own.tenant_id}/pages/p/visit`;
    assert.equal((await svc.request("POST", path, { headers: { ...browser, Origin: "https://mine.example" } })).status, 200);
    const other = await svc.request("POST", path, { headers: { ...browser, Origin: "https://other.example" } });
    assert.equal(other.status, 403, "the tenant's list applies although the default is *");
    assert.equal(errorCode(other), "FORBIDDEN");
    assert.equal((await svc.request("GET", `/tenants/${own.tenant_id}/pages/p`)).json.count, 1);
    // Clearing the list falls back to the service's setting (here, any origin).
    const cleared = await svc.request("PATCH", `/tenants/${own.tenant_id}`, { headers: admin, json: { allowed_origins: null } });
    assert.equal(cleared.json.allowed_origins, null);
    assert.equal((await svc.request("POST", path, { headers: { ...browser, Origin: "https://other.example" } })).status, 200);
    const bad = await svc.request("PATCH", `/tenants/${own.tenant_id}`, { headers: admin, json: { allowed_origins: ["not an origin"] } });
    assert.equal(errorCode(bad), "INVALID_PARAMETER");
  });

  test("Do Not Track is honoured when the tenant asks", async () => {
    const t = (await svc.request("POST", "/tenants", { headers: admin, json: { label: "dnt", page_auto_create: true, respect_dnt: true } })).json.tenant_id;
    const path = `/tenants/${t}/pages/home/visit`;
    assert.equal((await svc.request("POST", path, { headers: browser })).json.count, 1);
    const ignored = await svc.request("POST", path, { headers: { ...browser, DNT: "1" } });
    assert.deepEqual(ignored.json, { page_id: "home", count: 1, unique: false, counted: false, reason: "dnt" });
    // Another tenant counts DNT visits as usual.
    assert.equal((await svc.request("POST", `/tenants/${tenant}/pages/home/visit`, { headers: { ...browser, DNT: "1" } })).json.count, 1);
  });
});
