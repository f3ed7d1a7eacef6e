// Error reports through the real runtime to a local stand-in for Sentry's ingest
// endpoint, which checks each envelope as Sentry reads it: the path from the DSN, the
// auth header, the three lines and the item's byte length. Failures are real ones: D1
// tables renamed away under a running Worker, and a deliberate panic (EDGECOUNT_FAULT).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ANNEX, ADMIN_KEY, AGENTS, admin, errorCode, eventually, root, startWorker } from "./helpers/worker.mjs";

const VERSION = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
const CLIENT_IP = "203.0.113.77";

/** A fake ingest endpoint. `held` keeps answers back until `release()`. */
async function fakeSentry() {
  const received = [];
  let held = false;
  const waiting = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      received.push({ method: req.method, url: req.url, headers: req.headers, body });
      const answer = () => {
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end('{"id":"ok"}');
      };
      if (held) waiting.push(answer);
      else answer();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    received,
    dsn: `http://publickey123@127.0.0.1:${server.address().port}/42`,
    hold: () => (held = true),
    release: () => {
      held = false;
      waiting.splice(0).forEach((answer) => answer());
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** An envelope as Sentry parses it; asserts its framing and headers. */
function parseEnvelope(request) {
  assert.equal(request.method, "POST");
  assert.equal(request.url, "/api/42/envelope/");
  assert.equal(request.headers["content-type"], "application/x-sentry-envelope");
  const auth = request.headers["x-sentry-auth"];
  assert.match(auth, /^Sentry sentry_version=7, /);
  assert.match(auth, /sentry_key=publickey123/);
  assert.match(auth, new RegExp(`sentry_client=edgecount/${VERSION.replace(/\./g, "\\.")}`));
  const [headerLine, itemLine, payloadLine, rest] = request.body.split("\n");
  assert.equal(rest, "", "the envelope ends with a newline");
  const header = JSON.parse(headerLine);
  const item = JSON.parse(itemLine);
  assert.equal(item.type, "event");
  assert.equal(item.length, Buffer.byteLength(payloadLine), "item length is the payload's bytes");
  const event = JSON.parse(payloadLine);
  assert.equal(header.event_id, event.event_id);
  assert.match(event.event_id, /^[0-9a-f]{32}$/);
  assert.equal(event.release, `edgecount@${VERSION}`);
  assert.equal(event.environment, "staging");
  assert.ok(!Number.isNaN(Date.parse(event.timestamp)));
  // Never a key, an address or a user agent.
  for (const secret of [ADMIN_KEY, CLIENT_IP, "curl/", "Mozilla/"]) {
    assert.ok(!request.body.includes(secret), `the envelope holds ${secret}`);
  }
  return event;
}

const kinds = (sentry, kind) => sentry.received.map(parseEnvelope).filter((e) => e.tags.kind === kind);

describe("with SENTRY_DSN set", () => {
  let sentry;
  let svc;
  before(async () => {
    sentry = await fakeSentry();
    svc = await startWorker({ vars: { SENTRY_DSN: sentry.dsn, SENTRY_ENVIRONMENT: "staging" } });
  });
  after(async () => {
    await svc?.close();
    await sentry?.close();
  });

  test("a 5xx answer is reported after it is sent, with its request id, route and tenant", async () => {
    const t = await svc.createTenant();
    await svc.createCounter(t.tenant_id, { label: "one" });
    await svc.db.exec("ALTER TABLE counters RENAME TO counters_away");
    try {
      sentry.hold();
      const res = await svc.request("GET", `/tenants/${t.tenant_id}/counters`, {
        headers: { ...admin, "User-Agent": AGENTS.curl },
        ip: CLIENT_IP,
      });
      assert.equal(res.status, 500);
      assert.equal(errorCode(res), "INTERNAL_ERROR");
      // The answer came back while Sentry had not answered yet (or before it was asked):
      // the report waits on waitUntil, not on the client.
      assert.ok(await eventually(() => sentry.received.length >= 1, 5000), "an envelope arrived");
      sentry.release();
      const [event] = kinds(sentry, "request");
      assert.equal(event.level, "error");
      assert.equal(event.tags.request_id, res.headers.get("x-request-id"));
      assert.equal(event.tags.context, "/tenants/{tenant_id}/counters");
      assert.equal(event.tags.tenant_id, t.tenant_id);
      assert.match(event.message.formatted, /counters/);
      assert.equal(event.exception.values[0].type, "InternalError");
    } finally {
      sentry.release();
      await svc.db.exec("ALTER TABLE counters_away RENAME TO counters");
    }
  });

  test("a 4xx answer is not reported", async () => {
    const before = sentry.received.length;
    const res = await svc.request("GET", "/tenants/not-a-tenant/counters", { headers: admin });
    assert.ok(res.status >= 400 && res.status < 500, `status ${res.status}`);
    const health = await svc.request("GET", "/healthz");
    assert.equal(health.status, 200);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(sentry.received.length, before);
  });

  test("a flush to D1 that keeps failing is reported once it has failed three times", async () => {
    const t = await svc.createTenant();
    const c = await svc.createCounter(t.tenant_id);
    assert.ok(await eventually(async () => (await svc.d1Value(c.counter_id)) === 0), "first flush");
    await svc.db.exec("ALTER TABLE counters RENAME TO counters_away");
    try {
      const inc = await svc.request("POST", `/tenants/${t.tenant_id}/${c.counter_id}/inc`, {
        headers: { "User-Agent": AGENTS.curl },
        ip: CLIENT_IP,
      });
      assert.equal(inc.status, 200, "the object counts while D1 is away");
      // Retries back off from FLUSH_INTERVAL_MS (200 ms here): 200, 400, 800 ms.
      assert.ok(await eventually(() => kinds(sentry, "flush").length >= 1, 10_000), "a flush report");
      const [event] = kinds(sentry, "flush");
      assert.equal(event.tags.context, "counter flush");
      assert.equal(event.tags.tenant_id, t.tenant_id);
      assert.match(event.message.formatted, /3 failures in a row/);
      assert.equal(kinds(sentry, "flush").length, 1, "the first two failures were retried quietly");
    } finally {
      await svc.db.exec("ALTER TABLE counters_away RENAME TO counters");
    }
    assert.ok(await eventually(async () => (await svc.d1Value(c.counter_id)) === 1, 10_000), "D1 catches up");
  });

  test("a failed cron run is reported with its job", async () => {
    await svc.db.exec("ALTER TABLE visits RENAME TO visits_away");
    try {
      await (await svc.mf.getWorker(ANNEX)).scheduled({ cron: "17 3 * * *" });
      assert.ok(await eventually(() => kinds(sentry, "job").length >= 1, 5000), "a job report");
      const [event] = kinds(sentry, "job");
      assert.equal(event.tags.context, "retention");
      assert.equal(event.exception.values[0].type, "JobFailed");
      assert.match(event.message.formatted, /visits/);
    } finally {
      await svc.db.exec("ALTER TABLE visits_away RENAME TO visits");
    }
  });
});

test("a panic is reported as fatal, and the next request is served", async () => {
  const sentry = await fakeSentry();
  const svc = await startWorker({
    vars: { SENTRY_DSN: sentry.dsn, SENTRY_ENVIRONMENT: "staging", EDGECOUNT_FAULT: "panic" },
  });
  try {
    const res = await svc.request("POST", "/tenants", { headers: admin, json: { label: "x" } });
    assert.equal(res.status, 500);
    assert.ok(await eventually(() => kinds(sentry, "panic").length >= 1, 5000), "a panic report");
    const [event] = kinds(sentry, "panic");
    assert.equal(event.level, "fatal");
    assert.match(event.message.formatted, /a deliberate panic/);
    assert.match(event.message.formatted, /src\/http\/app\.rs/, "where it panicked");
    const health = await svc.request("GET", "/healthz");
    assert.equal(health.status, 200, "a fresh instance serves the next request");
  } finally {
    await svc.close();
    await sentry.close();
  }
});

test("an outage that fails every request sends at most 20 reports a minute per isolate", async () => {
  const sentry = await fakeSentry();
  const svc = await startWorker({ vars: { SENTRY_DSN: sentry.dsn, SENTRY_ENVIRONMENT: "staging" } });
  try {
    const t = await svc.createTenant();
    await svc.db.exec("ALTER TABLE counters RENAME TO counters_away");
    const failures = 45;
    for (let i = 0; i < failures; i++) {
      const res = await svc.request("GET", `/tenants/${t.tenant_id}/counters`, { headers: admin });
      assert.equal(res.status, 500);
    }
    assert.ok(await eventually(() => sentry.received.length >= 20, 5000), "the first 20 were sent");
    await new Promise((r) => setTimeout(r, 500));
    // 45 failures in under a minute, or across one minute's end: 20 per minute at most.
    const reported = kinds(sentry, "request").length;
    assert.ok(reported >= 20 && reported <= 40, `${reported} reports for ${failures} failures`);
  } finally {
    await svc.close();
    await sentry.close();
  }
});

test("without SENTRY_DSN nothing is sent anywhere, whatever fails", async () => {
  const flushFailures = [];
  const outbound = [];
  const svc = await startWorker({
    // The GitHub refresh's fetches show that every outbound request is seen here.
    vars: { GITHUB_ORGS: "acme", GITHUB_API_URL: "https://github.example" },
    onLog: (line) => line.includes('"counter flush"') && flushFailures.push(line),
    outbound: (request) => {
      outbound.push(request.url);
      return new Response("{}");
    },
  });
  try {
    const t = await svc.createTenant();
    const c = await svc.createCounter(t.tenant_id);
    await svc.db.exec("ALTER TABLE counters RENAME TO counters_away");
    const res = await svc.request("GET", `/tenants/${t.tenant_id}/counters`, { headers: admin });
    assert.equal(res.status, 500);
    await svc.request("POST", `/tenants/${t.tenant_id}/${c.counter_id}/inc`, { headers: { "User-Agent": AGENTS.curl } });
    assert.ok(await eventually(() => flushFailures.length >= 3, 10_000), "the flush failed three times");
    const worker = await svc.mf.getWorker(ANNEX);
    await worker.scheduled({ cron: "17 3 * * *" });
    await svc.db.exec("ALTER TABLE counters_away RENAME TO counters");
    await worker.scheduled({ cron: "*/5 * * * *" });
    assert.ok(outbound.length > 0, "the GitHub refresh's requests were seen");
    const elsewhere = outbound.filter((url) => !url.startsWith("https://github.example/"));
    assert.deepEqual(elsewhere, [], "no other request left the Worker");
  } finally {
    await svc.close();
  }
});
