// `node --experimental-websocket bench/profile.mjs [inc|visit|get] [seconds]`: a V8 CPU
// profile of one edgecount path under wrk load, as deployed, from workerd's inspector.
// Builds with function names (EDGECOUNT_KEEP_NAMES), prints the functions with the most
// self time and writes bench/profile.cpuprofile (open it in Chrome's DevTools).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { build } from "../scripts/build.mjs";
import { edgecountOptions, freePort, wrk } from "./lib.mjs";
import { migrate, root } from "../tests/helpers/worker.mjs";

const [which = "inc", seconds = "5"] = process.argv.slice(2);
process.env.EDGECOUNT_KEEP_NAMES = "1";
build({ force: true });

const port = await freePort();
const inspectorPort = await freePort();
const [edge, annex] = edgecountOptions({ ADMIN_API_KEY: "k", RATE_LIMIT_POST: "1000000000" });
for (const brake of Object.values(edge.ratelimits)) brake.simple.limit = 1_000_000_000;
const mf = new Miniflare({ workers: [{ ...edge, unsafeDirectSockets: [{ host: "127.0.0.1", port }] }, annex], inspectorPort, handleRuntimeStdio: (o, e) => (o.resume(), e.resume()) });
await mf.ready;
await migrate(await mf.getD1Database("DB"));
const url = `http://127.0.0.1:${port}`;
const call = async (m, p, b) => (await fetch(url + p, { method: m, headers: { "X-API-Key": "k" }, body: b && JSON.stringify(b) })).json();
const { tenant_id } = await call("POST", "/tenants", { label: "p", page_auto_create: true });
const { counter_id } = await call("POST", `/tenants/${tenant_id}`, {});
const UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const targets = {
  inc: [`${url}/tenants/${tenant_id}/${counter_id}/inc`, { method: "POST" }],
  get: [`${url}/tenants/${tenant_id}/${counter_id}`, {}],
  visit: [`${url}/tenants/${tenant_id}/pages/p/visit`, { method: "POST", headers: { "User-Agent": UA } }],
};
const [target, opts] = targets[which];
await wrk(target, { ...opts, seconds: 1, connections: 50 });

const list = await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json();
const entry = list.find((t) => t.webSocketDebuggerUrl?.includes("edgecount")) ?? list[0];
const socket = new WebSocket(entry.webSocketDebuggerUrl);
await new Promise((r) => socket.addEventListener("open", r));
let id = 0;
const pending = new Map();
socket.addEventListener("message", (m) => {
  const msg = JSON.parse(m.data);
  if (msg.id && pending.has(msg.id)) pending.get(msg.id)(msg.result);
});
const send = (method, params = {}) =>
  new Promise((resolve) => {
    pending.set(++id, resolve);
    socket.send(JSON.stringify({ id, method, params }));
  });
await send("Profiler.enable");
await send("Profiler.setSamplingInterval", { interval: 100 });
await send("Profiler.start");
const run = await wrk(target, { ...opts, seconds: Number(seconds), connections: 50 });
const { profile } = await send("Profiler.stop");
socket.close();
await mf.dispose();
writeFileSync(join(root, "bench", "profile.cpuprofile"), JSON.stringify(profile));

const self = new Map();
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const ticks = new Map();
for (const sample of profile.samples) ticks.set(sample, (ticks.get(sample) ?? 0) + 1);
let total = 0;
for (const [nodeId, n] of ticks) {
  const frame = byId.get(nodeId).callFrame;
  const name = `${frame.functionName || "(anonymous)"} ${frame.url.split("/").pop()}`;
  self.set(name, (self.get(name) ?? 0) + n);
  total += n;
}
console.log(`${which}: ${run.rps.toFixed(0)} req/s under the profiler; self time by function:`);
for (const [name, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`${((100 * n) / total).toFixed(1).padStart(5)} %  ${name}`);
