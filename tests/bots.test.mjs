// Bot classification comes from a maintained list: isbot's patterns, generated into the
// Worker and run by the runtime's own RegExp engine, plus the AI agents edgecount names
// itself. Tested through real visits against isbot's own fixture sources — the crawler
// list it is built from (crawler-user-agents) and the browser agents its tests draw from
// (user-agents) — and against isbot itself as the reference.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { admin, AGENTS, clientIp, root, startWorker } from "./helpers/worker.mjs";
import { generate, target } from "../scripts/gen-bot-patterns.mjs";

const require = createRequire(import.meta.url);
const { isbot } = require("isbot");
const fixture = (...path) => JSON.parse(readFileSync(join(root, "node_modules", ...path), "utf8"));
const crawlers = [...new Set(fixture("crawler-user-agents", "crawler-user-agents.json").flatMap((e) => e.instances ?? []))];
const browsers = [...new Set(fixture("user-agents", "dist", "user-agents.json").map((e) => e.userAgent))];
const AI_AGENTS = [...readFileSync(join(root, "src", "domain", "agent.rs"), "utf8").matchAll(/^    "([a-z0-9-]+)",$/gm)].map((m) => m[1]);

let svc;
let tenant;
before(async () => {
  svc = await startWorker();
  const res = await svc.request("POST", "/tenants", { headers: admin, json: { label: `bots-${crypto.randomUUID()}`, page_auto_create: true } });
  tenant = res.json.tenant_id;
});
after(() => svc?.close());

let visitor = 0;
/** Visits a page with a user agent, from a client of its own; answers the visit. */
async function visitAs(userAgent, page = "fixtures") {
  const res = await svc.request("POST", `/tenants/${tenant}/pages/${page}/visit`, { ip: clientIp(visitor++), headers: { "User-Agent": userAgent } });
  assert.equal(res.status, 200, res.text);
  return res.json;
}

async function classify(agents, page) {
  const verdicts = [];
  for (let i = 0; i < agents.length; i += 100) {
    const chunk = agents.slice(i, i + 100);
    const answers = await Promise.all(chunk.map((ua) => visitAs(ua, page)));
    answers.forEach((a, j) => verdicts.push({ ua: chunk[j], bot: a.reason === "bot", counted: a.counted }));
  }
  return verdicts;
}

// GitHub's image proxy is a proxy (not a bot) only from GitHub's network, which these
// requests do not come from: here every user agent is what isbot or the AI list says.
const expectedBot = (ua) => isbot(ua) || AI_AGENTS.some((a) => ua.toLowerCase().includes(a));

test("the generated pattern is the installed isbot's", () => {
  assert.equal(readFileSync(target, "utf8"), generate(), "run: node scripts/gen-bot-patterns.mjs");
  assert.ok(AI_AGENTS.length >= 20, `${AI_AGENTS.length} AI agents`);
});

test("every crawler fixture is classified as isbot classifies it", async () => {
  const verdicts = await classify(crawlers, "crawlers");
  const wrong = verdicts.filter((v) => v.bot !== expectedBot(v.ua));
  assert.deepEqual(wrong, [], `${wrong.length} of ${verdicts.length} differ from isbot`);
  const bots = verdicts.filter((v) => v.bot).length;
  assert.ok(bots / verdicts.length > 0.99, `${bots} of ${verdicts.length} crawler fixtures are bots`);
  assert.ok(verdicts.filter((v) => v.bot).every((v) => v.counted === false), "bots do not count here");
});

test("every browser fixture counts", async () => {
  const verdicts = await classify(browsers, "browsers");
  const wrong = verdicts.filter((v) => v.bot !== expectedBot(v.ua));
  assert.deepEqual(wrong, []);
  assert.equal(verdicts.filter((v) => v.bot).length, 0, "no browser is a bot");
  assert.ok(verdicts.length > 900, `${verdicts.length} browsers`);
});

test("AI agents that never say bot are bots", async () => {
  for (const ua of [
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ChatGPT-User/1.0; +https://openai.com/bot)",
    "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)",
    "anthropic-ai",
    "Claude-User/1.0",
    "Perplexity-User/1.0 (+https://perplexity.ai/perplexity-user)",
    "meta-externalfetcher/1.1",
    ...AI_AGENTS,
  ]) {
    const answer = await visitAs(ua, "ai");
    assert.equal(answer.reason, "bot", ua);
  }
});

test("scripts' clients are bots on a tenant's pages; a browser and no user agent count", async () => {
  for (const ua of [AGENTS.curl, AGENTS.pythonRequests, AGENTS.go, AGENTS.java, AGENTS.apacheBench, AGENTS.googlebot]) {
    assert.equal((await visitAs(ua, "clients")).reason, "bot", ua);
  }
  assert.equal((await visitAs(AGENTS.chrome, "clients")).counted, true);
  const bare = await svc.request("POST", `/tenants/${tenant}/pages/clients/visit`, { ip: clientIp(visitor++), headers: { "User-Agent": "" } });
  assert.equal(bare.json.counted, true, "no user agent is not a bot");
});
