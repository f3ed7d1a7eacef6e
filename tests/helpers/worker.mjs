// Starts the built Worker in workerd through Miniflare with the bindings wrangler.toml
// declares (real local Durable Objects, D1 and KV), applies the D1 migrations the way
// `wrangler d1 migrations apply` does, and talks to it over HTTP.
import { Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions, unstable_splitSqlQuery } from "wrangler";
import { readdirSync, readFileSync } from "node:fs";
import { ANNEX_CONFIG } from "../../scripts/annex-config.mjs";
import { join, resolve } from "node:path";

export const root = resolve(import.meta.dirname, "..", "..");
export const ADMIN_KEY = "test-admin-key";
export const admin = { "X-API-Key": ADMIN_KEY };

/** The annex Worker's name: its scheduled jobs run through `mf.getWorker(ANNEX)`. */
export const ANNEX = "edgecount-annex";

/**
 * The two built Workers with their configurations' bindings (wrangler.toml, and the
 * annex's build/annex/wrangler.json written from it), `vars` over the vars of both:
 * the edge first (it answers every request and hands the annex its routes). `assets`
 * puts wrangler.toml's [assets] (public/, answered before the Worker) in front, as
 * deployed. It is off by default: Miniflare's local assets router sometimes resets a
 * kept-alive connection after a request whose body the Worker refused unread (about one
 * in thirty such requests here), so only the tests of the assets themselves turn it on.
 */
export function edgecountOptions(vars, { assets = false } = {}) {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(root, "wrangler.toml"));
  const { assets: fromToml, ...rest } = workerOptions;
  const edge = {
    ...rest,
    name: "edgecount",
    scriptPath: join(root, "build", "index.js"),
    modules: true,
    bindings: { ...workerOptions.bindings, ...vars },
    ...(assets ? { assets: fromToml } : {}),
  };
  const { workerOptions: annexOptions } = unstable_getMiniflareWorkerOptions(ANNEX_CONFIG);
  const annex = {
    ...annexOptions,
    name: ANNEX,
    scriptPath: join(root, "build", "annex", "index.js"),
    modules: true,
    bindings: { ...annexOptions.bindings, ...vars },
  };
  return [edge, annex];
}

/** Tests run with wrangler.toml as shipped (budgets, the read brake, logging), plus a known
 * admin key and fast flushes. */
function workerOptions(vars, options) {
  return edgecountOptions({ ADMIN_API_KEY: ADMIN_KEY, FLUSH_INTERVAL_MS: "200", ...vars }, options);
}

/** Applies migrations/*.sql not yet recorded in d1_migrations (wrangler's own table). */
export async function migrate(db) {
  await db.exec("CREATE TABLE IF NOT EXISTS d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)");
  const applied = new Set((await db.prepare("SELECT name FROM d1_migrations").all()).results.map((r) => r.name));
  const dir = join(root, "migrations");
  for (const name of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
    if (applied.has(name)) continue;
    // Split as wrangler splits them (triggers' BEGIN … END bodies stay whole).
    const statements = unstable_splitSqlQuery(readFileSync(join(dir, name), "utf8"));
    await db.batch([
      ...statements.map((s) => db.prepare(s)),
      db.prepare("INSERT INTO d1_migrations (name) VALUES (?)").bind(name),
    ]);
  }
}

// The Worker logs one JSON line per request; tests show them only when asked
// (EDGECOUNT_TEST_LOGS=1). Errors always show. `onLog` gets every line of both streams.
function runtimeStdio(onLog) {
  const lines = (stream, also) => {
    let pending = "";
    stream.on("data", (chunk) => {
      also?.(chunk);
      const complete = (pending + chunk).split("\n");
      pending = complete.pop();
      if (onLog) complete.filter(Boolean).forEach(onLog);
    });
  };
  return (stdout, stderr) => {
    if (process.env.EDGECOUNT_TEST_LOGS) stdout.pipe(process.stdout);
    lines(stdout);
    // Written, not piped: many runtimes in one test file would pile listeners onto stderr.
    lines(stderr, (chunk) => process.stderr.write(chunk));
  };
}

/**
 * @param {{vars?: Record<string,string>, persistTo?: string, onLog?: (line: string) => void, assets?: boolean, cf?: object, kvSpy?: boolean}} options
 *   persistTo keeps Durable Object, D1 and KV state in that folder across instances;
 *   onLog receives each line the Worker writes (stdout and stderr). kvSpy puts a spy in front of
 *   the real GITHUB_CACHE namespace (see KV_SPY). outbound(request) answers every fetch the
 *   Worker makes outside itself.
 */
export async function startWorker({ vars = {}, persistTo, onLog, assets, cf, kvSpy, r2, outbound } = {}) {
  const persistence = persistTo
    ? {
        durableObjectsPersist: join(persistTo, "do"),
        d1Persist: join(persistTo, "d1"),
        kvPersist: join(persistTo, "kv"),
      }
    : {};
  // `cf`: what Cloudflare's edge says of every request (its network, `asn`, say).
  const shared = { ...persistence, ...(cf ? { cf } : {}), handleRuntimeStdio: runtimeStdio(onLog) };
  let workers = workerOptions(vars, { assets });
  for (const worker of workers) {
    // `r2`: bind a local R2 bucket as BACKUPS (wrangler.toml ships it commented out).
    if (r2) worker.r2Buckets = { BACKUPS: "edgecount-backups" };
    // `outbound(request)`: answers every fetch the Workers make to the internet.
    if (outbound) worker.outboundService = outbound;
  }
  if (kvSpy) workers = spiedOn(workers, "GITHUB_CACHE");
  const mf = new Miniflare({ ...shared, workers });
  const url = await mf.ready;
  const db = await mf.getD1Database("DB");
  await migrate(db);
  return new Service(mf, url, db);
}

/**
 * A wrapper around a real KV namespace: every call goes through to it, and each `put`
 * first logs `{"kvSpy":"put","key":...}` (so a test counts writes) and throws while the
 * namespace holds the key `spy:fail` (so a test sees KV refuse writes, as it does past
 * the free plan's daily quota). The real namespace is the spy worker's binding INNER:
 * `mf.getKVNamespace("INNER", "kv-spy")`.
 */
const KV_SPY = `export default function (env) {
  const inner = env.INNER;
  return {
    get: (...args) => inner.get(...args),
    getWithMetadata: (...args) => inner.getWithMetadata(...args),
    list: (...args) => inner.list(...args),
    delete: (...args) => inner.delete(...args),
    async put(key, value, options) {
      console.log(JSON.stringify({ kvSpy: "put", key }));
      if (await inner.get("spy:fail")) throw new Error("KV put failed: 429 Too Many Requests");
      return inner.put(key, value, options);
    },
  };
}`;

function spiedOn(workers, binding) {
  const inner = workers[0].kvNamespaces?.[binding];
  const spied = workers.map((worker) => {
    const { [binding]: _, ...otherKv } = worker.kvNamespaces ?? {};
    return { ...worker, kvNamespaces: otherKv, wrappedBindings: { ...(worker.wrappedBindings ?? {}), [binding]: { scriptName: "kv-spy" } } };
  });
  return [...spied, { name: "kv-spy", modules: true, script: KV_SPY, kvNamespaces: { INNER: inner } }];
}

export class Service {
  constructor(mf, url, db) {
    this.mf = mf;
    this.url = url;
    this.db = db;
  }

  /**
   * A request through the real runtime; answers {status, headers, body, json}. `ip` is
   * the client's address as Cloudflare's edge reports it (CF-Connecting-IP); without it
   * the local runtime says 127.0.0.1, one client for every request. `redirect: "manual"`
   * hands back a 3xx instead of following it. `cf`: what Cloudflare's edge says of this
   * request (its `country`, say), sent through Miniflare's dispatch.
   */
  async request(method, path, { headers = {}, body, json, ip, redirect, cf } = {}) {
    const init = { method, headers: { ...headers }, ...(redirect ? { redirect } : {}) };
    if (ip !== undefined) init.headers["CF-Connecting-IP"] = ip;
    if (json !== undefined) {
      init.body = JSON.stringify(json);
      init.headers["Content-Type"] = "application/json";
    } else if (body !== undefined) {
      init.body = body;
    }
    const res = cf ? await this.mf.dispatchFetch(new URL(path, this.url), { ...init, cf }) : await fetch(new URL(path, this.url), init);
    const text = await res.text();
    let parsed;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, text, json: parsed };
  }

  async createTenant(label = `tenant-${crypto.randomUUID()}`) {
    const res = await this.request("POST", "/tenants", { headers: admin, json: { label } });
    if (res.status !== 201) throw new Error(`create tenant: ${res.status} ${res.text}`);
    return res.json;
  }

  /** A new tenant key with these scopes, as the header that presents it. */
  async keyWith(tenantId, scopes) {
    const res = await this.request("POST", `/v2/tenants/${tenantId}/credentials`, { headers: admin, json: { scopes } });
    if (res.status !== 201) throw new Error(`issue key: ${res.status} ${res.text}`);
    return { "X-API-Key": res.json.api_key };
  }

  async createCounter(tenantId, fields = {}) {
    const res = await this.request("POST", `/tenants/${tenantId}`, { headers: admin, json: fields });
    if (res.status !== 201) throw new Error(`create counter: ${res.status} ${res.text}`);
    return res.json;
  }

  /** The value D1 holds for a counter (the flushed copy). */
  async d1Value(counterId) {
    const row = await this.db.prepare("SELECT value FROM counters WHERE id = ?").bind(counterId).first();
    return row?.value;
  }

  async close() {
    await this.mf.dispose();
  }
}

/** Polls `probe` until it returns true or `ms` pass; returns the last result. */
export async function eventually(probe, ms = 5000, step = 50) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, step));
  }
}

/** The address of the i-th of many distinct clients (IPv4 private space). */
export function clientIp(i) {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

/** User agents as the clients users have send them. */
export const AGENTS = {
  curl: "curl/8.5.0",
  pythonRequests: "python-requests/2.32.3",
  go: "Go-http-client/1.1",
  java: "Java/17.0.12",
  apacheBench: "ApacheBench/2.3",
  camo: "github-camo (4c3bd7e1)",
  chrome: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  firefox: "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
  googlebot: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
};

export function errorCode(res) {
  return res.json?.errors?.[0]?.code;
}

/** The workerd processes (Miniflare's runtime) this process started, oldest first. */
export function workerdChildren() {
  const mine = [];
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8").trim();
      const [, comm, rest] = /^\d+ \((.*)\) (.*)$/.exec(stat);
      const ppid = Number(rest.split(" ")[1]);
      if (ppid === process.pid && comm.startsWith("workerd")) mine.push(Number(pid));
    } catch {}
  }
  return mine.sort((x, y) => x - y);
}
