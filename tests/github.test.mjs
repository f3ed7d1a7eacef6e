// The GitHub cache through the real runtime, against a local fake GitHub: the cron
// refresh, KV hits, views, pagination, conditional refreshes, stale copies, the proxy and
// what it must never relay.
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { HUGE_BYTES, ORG, makeRepos, startFakeGitHub } from "./fixtures/fake-github.mjs";
import { ANNEX, errorCode, startWorker } from "./helpers/worker.mjs";

let gh;
let svc;
let kv;
before(async () => {
  gh = await startFakeGitHub();
  svc = await startWorker({
    vars: { GITHUB_ORGS: ORG, GITHUB_API_URL: gh.url, GITHUB_TIMEOUT_MS: "400", GITHUB_TOKEN: "test-token" },
  });
  kv = await svc.mf.getKVNamespace("GITHUB_CACHE");
});
after(async () => {
  await svc?.close();
  await gh?.close();
});
beforeEach(() => {
  gh.state.mode = "ok";
  gh.state.scopes = null;
  gh.state.repos = makeRepos();
});

const sha256Hex = async (text) => Buffer.from(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))).toString("hex");
const refresh = async () => (await svc.mf.getWorker(ANNEX)).scheduled({ cron: "*/5 * * * *" });

/** The ranking the contract asks for, computed independently. */
function expectedTop(field, n) {
  const source = { forks: "forks_count", stars: "stargazers_count", open_issues: "open_issues_count", last_updated: "updated_at" }[field];
  return makeRepos()
    .map((r) => [r.full_name, r[source]])
    .sort((a, b) => (a[1] < b[1] ? 1 : a[1] > b[1] ? -1 : a[0] < b[0] ? -1 : 1))
    .slice(0, n);
}

describe("misses before any refresh", () => {
  test("a miss fetches, stores and answers MISS; concurrent misses do not stampede", async () => {
    gh.reset();
    const answers = await Promise.all(Array.from({ length: 10 }, () => svc.request("GET", `/orgs/${ORG}/members`)));
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
    assert.equal(answers[0].json.length, 120, "both pages merged");
    assert.ok(answers.every((a) => ["MISS", "HIT"].includes(a.headers.get("x-cache"))));
    const firstPage = gh.state.requests.filter((r) => r.path === `/orgs/${ORG}/public_members?per_page=100`);
    assert.equal(firstPage.length, 1, "one upstream fetch for ten concurrent misses");
    assert.ok(!answers[0].json.some((m) => m.login.startsWith("concealed-")), "members the token alone sees are not listed");
    assert.ok(gh.state.requests.every((r) => r.auth === "Bearer test-token"), "the token is sent");
    const again = await svc.request("GET", `/orgs/${ORG}/members`);
    assert.equal(again.headers.get("x-cache"), "HIT");
  });
});

describe("refresh", () => {
  test("the scheduled refresh fills KV with every path, lists merged across pages", async () => {
    gh.reset();
    await refresh();
    const keys = (await kv.list({ prefix: "gh:" })).keys.map((k) => k.name).sort();
    for (const key of ["gh:path:/", `gh:path:/orgs/${ORG}`, `gh:path:/orgs/${ORG}/members`, `gh:path:/orgs/${ORG}/repos`,
      `gh:view:${ORG}:stars`, `gh:view:${ORG}:forks`, `gh:view:${ORG}:open_issues`, `gh:view:${ORG}:last_updated`]) {
      assert.ok(keys.includes(key), `${key} in ${keys}`);
    }
    const repos = await svc.request("GET", `/orgs/${ORG}/repos`);
    assert.equal(repos.status, 200);
    assert.equal(repos.headers.get("x-cache"), "HIT");
    assert.match(repos.headers.get("age"), /^\d+$/);
    assert.equal(repos.json.length, 250);
    assert.deepEqual(repos.json.map((r) => r.id), makeRepos().map((r) => r.id));
    const pages = gh.state.requests.filter((r) => r.path.startsWith(`/orgs/${ORG}/repos`)).map((r) => r.path);
    assert.ok(pages.includes(`/orgs/${ORG}/repos?per_page=100&page=3`), JSON.stringify(pages));
    const root = await svc.request("GET", "/");
    assert.equal(root.headers.get("x-cache"), "HIT");
    assert.ok(root.json.current_user_url);
  });

  test("what only the token can see is not kept: a private repository, an owner's fields", async () => {
    await refresh();
    const repos = JSON.parse(await kv.get(`gh:path:/orgs/${ORG}/repos`));
    assert.ok(gh.state.requests.some((r) => r.auth), "the fake was asked with the token");
    assert.equal(repos.length, 250);
    assert.ok(!repos.some((r) => r.name === "secret-plans"));
    const org = JSON.parse(await kv.get(`gh:path:/orgs/${ORG}`));
    assert.equal(org.login, ORG);
    assert.equal(org.billing_email, undefined);
    assert.equal(org.total_private_repos, undefined);
    assert.notEqual((await svc.request("GET", "/view/top/1/stars")).json[0][0], `${ORG}/secret-plans`, "its 999 stars would rank first");
  });

  test("a list that grew by a page is noticed at the next refresh", async () => {
    gh.state.repos = makeRepos(300); // three full pages: no Link to a fourth
    await refresh();
    assert.equal(JSON.parse(await kv.get(`gh:path:/orgs/${ORG}/repos`)).length, 300);
    gh.state.repos = makeRepos(301); // pages 1-3 (and their ETags) unchanged, page 4 new
    gh.reset();
    await refresh();
    assert.equal(JSON.parse(await kv.get(`gh:path:/orgs/${ORG}/repos`)).length, 301);
    gh.state.repos = makeRepos();
    await refresh();
    assert.equal(JSON.parse(await kv.get(`gh:path:/orgs/${ORG}/repos`)).length, 250);
  });

  test("a refresh with unchanged ETags makes only conditional requests and changes nothing", async () => {
    await refresh();
    const before = await kv.getWithMetadata(`gh:path:/orgs/${ORG}/repos`);
    gh.reset();
    await refresh();
    assert.ok(gh.state.requests.length >= 4);
    assert.ok(gh.state.requests.every((r) => r.conditional), JSON.stringify(gh.state.requests));
    const afterRefresh = await kv.getWithMetadata(`gh:path:/orgs/${ORG}/repos`);
    assert.deepEqual(afterRefresh.metadata, before.metadata, "the fetch time did not move");
    assert.equal(afterRefresh.value, before.value);
  });
});

describe("views", () => {
  test("each field ranks highest first, ties by full name, with zero upstream requests", async () => {
    await refresh();
    gh.reset();
    for (const field of ["stars", "forks", "open_issues", "last_updated"]) {
      const res = await svc.request("GET", `/view/top/25/${field}`);
      assert.equal(res.status, 200, field);
      assert.deepEqual(res.json, expectedTop(field, 25), field);
    }
    const all = await svc.request("GET", "/view/top/1000/stars");
    assert.equal(all.json.length, 250, "N beyond the list returns all");
    assert.deepEqual((await svc.request("GET", `/view/top/1/stars?org=${ORG.toUpperCase()}`)).json, expectedTop("stars", 1));
    assert.equal(gh.state.requests.length, 0, "views are answered from KV alone");
  });

  test("bad N, fields and orgs are 400", async () => {
    for (const path of ["/view/top/0/stars", "/view/top/-1/stars", "/view/top/abc/stars", "/view/top/1.5/stars", "/view/top/3/watchers", "/view/top/3/stars?org=nobody"]) {
      const res = await svc.request("GET", path);
      assert.equal(res.status, 400, path);
      assert.equal(errorCode(res), "INVALID_PARAMETER", path);
    }
  });
});

describe("failures", () => {
  /** Makes a copy look fetched, and last confirmed, `seconds` ago. */
  async function ageCopy(key, seconds) {
    const { value, metadata } = await kv.getWithMetadata(key);
    await kv.put(key, value, { metadata: { ...metadata, fetched_ms: Date.now() - seconds * 1000 } });
    const confirmed = JSON.parse((await kv.get("gh:confirmed")) ?? "{}");
    delete confirmed[key];
    await kv.put("gh:confirmed", JSON.stringify(confirmed));
  }

  test("upstream failure serves the last copy STALE, and past the max age 502 or 504", async () => {
    await refresh();
    const key = `gh:path:/orgs/${ORG}`;
    for (const [mode, status] of [["fail500", 502], ["ratelimit", 502], ["timeout", 504], ["unauthorized", 502]]) {
      await ageCopy(key, 3600); // older than the fresh window: the request asks GitHub first
      gh.state.mode = mode;
      const stale = await svc.request("GET", `/orgs/${ORG}`);
      assert.equal(stale.status, 200, mode);
      assert.equal(stale.headers.get("x-cache"), "STALE", mode);
      assert.equal(stale.json.login, ORG);
      await ageCopy(key, 2 * 86_400); // past GITHUB_STALE_MAX_SECONDS
      const gone = await svc.request("GET", `/orgs/${ORG}`);
      assert.equal(gone.status, status, mode);
      assert.equal(errorCode(gone), "UPSTREAM_UNAVAILABLE", mode);
    }
    gh.state.mode = "ok";
    await ageCopy(key, 3600);
    const back = await svc.request("GET", `/orgs/${ORG}`);
    assert.equal(back.status, 200);
    assert.notEqual(back.headers.get("x-cache"), "STALE");
  });

  test("GitHub's 403 and 404 on a cached path serve the copy STALE while it may, then pass through", async () => {
    await refresh();
    const key = `gh:path:/orgs/${ORG}/repos`;
    for (const [mode, status] of [["forbidden", 403], ["notfound", 404]]) {
      await ageCopy(key, 3600);
      gh.state.mode = mode;
      const stale = await svc.request("GET", `/orgs/${ORG}/repos`);
      assert.equal(stale.status, 200, mode);
      assert.equal(stale.headers.get("x-cache"), "STALE", mode);
      assert.equal(stale.json.length, 250, mode);
      await ageCopy(key, 2 * 86_400);
      const passed = await svc.request("GET", `/orgs/${ORG}/repos`);
      assert.equal(passed.status, status, mode);
      assert.ok(passed.json.message, "GitHub's own answer");
    }
    gh.state.mode = "ok";
    await refresh();
  });

  test("a failing refresh keeps the copy", async () => {
    await refresh();
    const before = await kv.get(`gh:path:/orgs/${ORG}/repos`);
    gh.state.mode = "fail500";
    await refresh();
    assert.equal(await kv.get(`gh:path:/orgs/${ORG}/repos`), before);
  });
});

describe("proxy", () => {
  test("an uncached path is proxied once, then served from cache", async () => {
    gh.reset();
    const first = await svc.request("GET", `/repos/${ORG}/repo-001`);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("x-cache"), "MISS");
    assert.deepEqual(first.json, { full_name: `${ORG}/repo-001`, proxied: true });
    assert.ok(first.headers.get("etag"), "GitHub's headers pass through");
    const second = await svc.request("GET", `/repos/${ORG}/repo-001`);
    assert.equal(second.headers.get("x-cache"), "HIT");
    assert.deepEqual(second.json, first.json);
    assert.equal(gh.state.requests.filter((r) => r.path === `/repos/${ORG}/repo-001`).length, 1);
    const missing = await svc.request("GET", "/nothing/here");
    assert.equal(missing.status, 404, "GitHub's 404 passes through");
  });

  test("a HIT answers with the MISS's status, headers and body; links lead back through the cache", async () => {
    const path = "/repositories/1/issues?per_page=3";
    gh.reset();
    const miss = await svc.request("GET", path);
    const hit = await svc.request("GET", path);
    assert.equal(miss.status, 200);
    assert.deepEqual([miss.headers.get("x-cache"), hit.headers.get("x-cache")], ["MISS", "HIT"]);
    assert.equal(hit.status, miss.status);
    assert.equal(hit.text, miss.text);
    for (const name of ["content-type", "etag", "link", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-ratelimit-used", "x-ratelimit-resource", "x-github-media-type", "x-content-type-options"]) {
      assert.ok(miss.headers.get(name), `${name} on the MISS`);
      assert.equal(hit.headers.get(name), miss.headers.get(name), name);
    }
    assert.match(hit.headers.get("age"), /^\d+$/);
    assert.equal(gh.asked("/repositories/1/issues").length, 1);
    const next = /<([^>]+)>; rel="next"/.exec(hit.headers.get("link"))[1];
    assert.ok(!next.startsWith(gh.url), `${next} leads to this service, not upstream`);
    const page2 = await svc.request("GET", new URL(next).pathname + new URL(next).search);
    assert.deepEqual(page2.json.map((i) => i.number), [4, 5, 6]);
  });

  test("the token's own account, installation and app, and private areas, are 404 without asking GitHub", async () => {
    const paths = ["/user", "/user/emails", "/user/repos?visibility=private", "/user/orgs", "/user/installations",
      "/notifications", "/authorizations", "/installation/repositories", "/app", "/app/installations",
      "/applications/grants", "/%75ser/emails", "/user//emails", "/USER/emails", "/user%2Femails", "/./user",
      "/issues", "/gists", "/teams/1/members", "/enterprises/acme/settings", "/orgs/acme/settings/billing",
      `/repos/${ORG}/repo-001/hooks`, `/repos/${ORG}/repo-001/collaborators`,
      `/repos/${ORG}/repo-001/actions/secrets`, `/repos/${ORG}/repo-001/traffic/views`, `/repositories/1000/keys`,
      "/rate_limit", "/graphql", "/users/member-1/gists", "/search/code?q=x", "/search/issues?q=involves:@me"];
    const tokenless = await startWorker({ vars: { GITHUB_ORGS: ORG, GITHUB_API_URL: gh.url } });
    try {
      for (const service of [svc, tokenless]) {
        gh.reset();
        for (const path of paths) {
          const res = await service.request("GET", path);
          assert.equal(res.status, 404, path);
          assert.equal(errorCode(res), "NOT_FOUND", path);
        }
        assert.deepEqual(gh.state.requests, [], "nothing reached GitHub");
      }
      gh.reset();
      const members = await tokenless.request("GET", `/orgs/${ORG}/members?per_page=5`);
      assert.equal(members.status, 200);
      assert.deepEqual(gh.state.requests.map((r) => [r.path, r.auth]), [[`/orgs/${ORG}/public_members?per_page=5`, null]]);
    } finally {
      await tokenless.close();
    }
  });

  test("a redirect is passed through, not followed", async () => {
    gh.reset();
    const res = await svc.request("GET", `/repos/${ORG}/big/tarball/main`, { redirect: "manual" });
    assert.equal(res.status, 302);
    assert.match(res.headers.get("location"), /\/_codeload\/acme\/big\/tar\.gz$/);
    assert.deepEqual(gh.asked("/_codeload"), [], "the redirect's target was not asked");
    // Not kept in KV; the target's object holds it for the cache time, so a repeat
    // spends no token quota.
    const again = await svc.request("GET", `/repos/${ORG}/big/tarball/main`, { redirect: "manual" });
    assert.equal(again.status, 302);
    assert.equal(again.headers.get("x-cache"), "HIT");
    assert.equal(again.headers.get("location"), res.headers.get("location"));
    assert.equal(gh.asked(`/repos/${ORG}/big/tarball`).length, 1);
    assert.equal(await kv.get(`gh:proxy:${await sha256Hex(`/repos/${ORG}/big/tarball/main`)}`), null);
  });

  test("an answer past GITHUB_PROXY_MAX_BYTES is refused with 502 while streaming, and nothing is kept", async () => {
    for (const name of ["huge.json", "declared.json"]) {
      gh.state.hugeBytesSent = 0;
      gh.reset();
      const res = await svc.request("GET", `/repos/${ORG}/big/contents/${name}`);
      assert.equal(res.status, 502, name);
      assert.equal(errorCode(res), "UPSTREAM_UNAVAILABLE", name);
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(gh.state.hugeBytesSent < HUGE_BYTES / 4, `${name}: ${gh.state.hugeBytesSent} of ${HUGE_BYTES} bytes were sent before the read stopped`);
      const again = await svc.request("GET", `/repos/${ORG}/big/contents/${name}`);
      assert.equal(again.status, 502);
      assert.equal(gh.asked(`/repos/${ORG}/big/contents/${name}`).length, 2, "nothing was cached");
    }
    assert.equal((await svc.request("GET", "/healthcheck")).status, 200, "the isolate lives on");
  });

  test("only JSON is cached; every proxied answer says nosniff", async () => {
    gh.reset();
    for (const expected of ["MISS", "MISS"]) {
      const res = await svc.request("GET", `/repos/${ORG}/big/readme.html`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("x-cache"), expected);
      assert.equal(res.headers.get("x-content-type-options"), "nosniff");
      assert.match(res.headers.get("content-security-policy"), /sandbox/);
    }
    assert.equal(gh.asked(`/repos/${ORG}/big/readme.html`).length, 2);
  });

  test("10 concurrent misses on a proxied path make one upstream request", async () => {
    gh.reset();
    const answers = await Promise.all(Array.from({ length: 10 }, () => svc.request("GET", `/repos/${ORG}/slow-1`)));
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
    assert.ok(answers.every((a) => a.json.slow === true));
    assert.equal(gh.asked(`/repos/${ORG}/slow-1`).length, 1);
  });

  test("what the token alone may read is not relayed: private repositories, a token with private scopes", async () => {
    gh.reset();
    const secret = await svc.request("GET", `/repos/${ORG}/secret-plans`);
    assert.equal(secret.status, 404);
    assert.ok(!secret.text.includes("secret-plans"));
    // A fine-grained token says nothing of its reach, and a private repository's insides
    // carry no private marker: the repository is checked first.
    for (const inside of ["/contents/.env", "/tarball/main", "/git/trees/HEAD?recursive=1"]) {
      const res = await svc.request("GET", `/repos/${ORG}/secret-plans${inside}`, { redirect: "manual" });
      assert.equal(res.status, 404, inside);
    }
    assert.deepEqual(gh.asked(`/repos/${ORG}/secret-plans/`), [], "nothing inside was asked for");
    const org = await svc.request("GET", `/orgs/${ORG}?per_page=1`);
    assert.equal(org.json.login, ORG);
    assert.equal(org.json.billing_email, undefined, "a proxied organisation keeps its public fields");
    const repo = await svc.request("GET", `/repos/${ORG}/repo-300`);
    assert.equal(repo.json.permissions, undefined, "the token's permissions are not relayed");
    gh.reset();
    await svc.request("GET", "/search/issues?q=bug");
    assert.deepEqual(gh.state.requests.map((r) => r.path), ["/search/issues?q=bug%20is%3Apublic"]);
    const jsonp = await svc.request("GET", `/repos/${ORG}/repo-001?callback=x`);
    assert.equal(jsonp.status, 400);
    assert.equal(errorCode(jsonp), "INVALID_PARAMETER");
    gh.state.scopes = "repo, user";
    const risky = await svc.request("GET", `/repos/${ORG}/repo-200`);
    assert.equal(risky.status, 502);
    assert.equal(errorCode(risky), "UPSTREAM_UNAVAILABLE");
    gh.state.scopes = "public_repo";
    const fine = await svc.request("GET", `/repos/${ORG}/repo-200`);
    assert.equal(fine.status, 200);
    assert.equal(fine.headers.get("x-oauth-scopes"), null, "the token's scopes are not passed on");
  });

  test("non-GET methods to proxied paths are 405", async () => {
    for (const method of ["POST", "PUT", "DELETE"]) {
      const res = await svc.request(method, `/repos/${ORG}/repo-001`);
      assert.equal(res.status, 405, method);
      assert.equal(errorCode(res), "METHOD_NOT_ALLOWED");
    }
  });

  test("healthcheck", async () => {
    assert.equal((await svc.request("GET", "/healthcheck")).status, 200);
  });
});

describe("feature off", () => {
  test("with GITHUB_ORGS empty the GitHub routes are 404", async () => {
    const off = await startWorker();
    try {
      for (const path of [`/orgs/${ORG}`, "/view/top/3/stars", "/", "/repos/acme/x"]) {
        const res = await off.request("GET", path);
        assert.equal(res.status, 404, path);
        assert.equal(errorCode(res), "NOT_FOUND", path);
      }
    } finally {
      await off.close();
    }
  });
});
