// The site owner's dashboard: a static page over the stats API. It asks only this
// origin's API, keeps the key in this tab (sessionStorage) and never in a URL it
// requests; a share link carries its read-only key after `#`, which browsers do not send.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import "./app.css";

const $ = (id) => document.getElementById(id);
const SESSION = "edgecount.session";
const TENANT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DAY = 86_400_000;
const number = new Intl.NumberFormat("en");

let session = null; // {tenant, key, shared}
let view = { range: "30d", from: null, to: null, page: null };
let chart = null;

// ---- the API ---------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, { method = "GET", body } = {}) {
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: { "X-API-Key": session.key, ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
  } catch {
    throw new ApiError(0, "NETWORK", "The stats API could not be reached.");
  }
  const json = await res.json().catch(() => null);
  if (!res.ok) {
    const first = json?.errors?.[0];
    throw new ApiError(res.status, first?.code ?? "HTTP_" + res.status, first?.message ?? res.statusText);
  }
  return json;
}

const tenantPath = () => `/tenants/${encodeURIComponent(session.tenant)}`;

// ---- sign-in, share links, sessions ------------------------------------------------

function readSession() {
  // A share link: #tenant=…&key=… — taken into this tab, then cleared from the address bar.
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (TENANT.test(fragment.get("tenant") ?? "") && fragment.get("key")) {
    const shared = { tenant: fragment.get("tenant"), key: fragment.get("key"), shared: true };
    history.replaceState(null, "", location.pathname + location.search);
    sessionStorage.setItem(SESSION, JSON.stringify(shared));
    return shared;
  }
  try {
    return JSON.parse(sessionStorage.getItem(SESSION));
  } catch {
    return null;
  }
}

function signOut(message) {
  sessionStorage.removeItem(SESSION);
  session = null;
  $("board").hidden = true;
  $("signout").hidden = true;
  $("share").hidden = true;
  $("site").textContent = "";
  $("signin").hidden = false;
  notice(message);
  if (!message) $("tenant").focus();
}

function notice(message, retry) {
  const box = $("notice");
  box.replaceChildren();
  box.hidden = !message;
  if (!message) return;
  box.append(message);
  if (retry) {
    const again = document.createElement("button");
    again.type = "button";
    again.textContent = "Try again";
    again.addEventListener("click", retry);
    box.append(" ", again);
  }
}

/** What a failed call means to the person looking at the page. */
function explain(error) {
  if (error.status === 401) {
    return session?.shared
      ? "This share link has expired or was revoked. Ask the site's owner for a new one."
      : "This key was not accepted: it may be mistyped, expired or revoked.";
  }
  if (error.status === 403) return "This key may not read this site's stats (it needs tenant:read).";
  if (error.code === "TENANT_NOT_FOUND") return "There is no site with this tenant id.";
  if (error.status === 0) return "The stats API could not be reached. Check the connection and try again.";
  return `The stats API failed (${error.status} ${error.code}). Try again in a moment.`;
}

// ---- ranges --------------------------------------------------------------------------

const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);

/** The range asked for, in UTC days as the service counts them. */
function range() {
  const today = Math.floor(Date.now() / DAY) * DAY;
  switch (view.range) {
    case "today":
      return { from: today, to: today + DAY, granularity: "hour", label: "Today (UTC)" };
    case "yesterday":
      return { from: today - DAY, to: today, granularity: "hour", label: "Yesterday (UTC)" };
    case "7d":
      return { from: today - 6 * DAY, to: today + DAY, granularity: "day", label: "Last 7 days" };
    case "12m":
      return { from: today - 364 * DAY, to: today + DAY, granularity: "day", label: "Last 12 months" };
    case "custom": {
      const days = (view.to - view.from) / DAY;
      return { from: view.from, to: view.to, granularity: days <= 2 ? "hour" : "day", label: `${isoDay(view.from)} to ${isoDay(view.to - DAY)}` };
    }
    default:
      return { from: today - 29 * DAY, to: today + DAY, granularity: "day", label: "Last 30 days" };
  }
}

// ---- rendering -----------------------------------------------------------------------

function change(now, before) {
  if (before == null || now == null) return "";
  if (before === 0) return now === 0 ? "no change" : "new";
  const pct = Math.round(((now - before) / before) * 100);
  return `${pct > 0 ? "+" : ""}${pct}% vs previous period`;
}

function renderTotals(stats) {
  const t = stats.totals;
  const p = stats.previous;
  const bots = t.visits ? Math.round((t.bots / t.visits) * 100) : 0;
  const rows = [
    ["visits", "Visits", t.counted, p.counted, "counted visits"],
    ["visitors", stats.page_id ? "Visitors (per day)" : "Unique visitors", t.visitors, p.visitors, t.visitors_estimated ? "estimated on busy days" : "summed per day"],
    ["uniques", "Visitor-days", t.uniques, p.uniques, "first visits of a visitor to a page, per day"],
    ["bots", "Bots", t.bots, p.bots, `${bots}% of all requests`],
  ];
  $("totals").replaceChildren(
    ...rows.map(([key, label, value, before, hint]) => {
      const box = document.createElement("div");
      box.className = "total";
      box.dataset.total = key;
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      const big = document.createElement("span");
      big.className = "value";
      big.textContent = value == null ? "–" : number.format(value);
      const small = document.createElement("span");
      small.className = "change";
      small.textContent = [change(value, before), hint].filter(Boolean).join(" · ");
      dd.append(big, small);
      box.append(dt, dd);
      return box;
    }),
  );
}

function renderTop(id, list, { onPick, total } = {}) {
  const ol = $(id);
  if (!list.length) {
    const li = document.createElement("li");
    li.className = "none";
    li.textContent = "Nothing yet";
    ol.replaceChildren(li);
    return;
  }
  const max = Math.max(...list.map((e) => e.visits));
  ol.replaceChildren(
    ...list.map((entry) => {
      const li = document.createElement("li");
      li.style.setProperty("--share", `${(entry.visits / max) * 100}%`);
      const name = entry.value ?? (id === "top-referrers" ? "(direct or none)" : "(unknown)");
      let label;
      if (onPick && entry.value) {
        label = document.createElement("button");
        label.type = "button";
        label.className = "link";
        label.title = `Show only ${name}`;
        label.addEventListener("click", () => onPick(entry.value));
      } else {
        label = document.createElement("span");
      }
      label.textContent = name;
      label.classList.add("name");
      const count = document.createElement("span");
      count.className = "count";
      count.textContent = number.format(entry.visits) + (total ? ` (${Math.round((entry.visits / total) * 100)}%)` : "");
      li.append(label, count);
      return li;
    }),
  );
}

function renderChart(stats) {
  const hours = stats.granularity === "hour";
  const xs = stats.series.map((b) => Date.parse(b.start) / 1000);
  const visits = stats.series.map((b) => b.counted);
  const second = stats.series.map((b) => (hours ? b.uniques : b.visitors));
  const box = $("chart");
  const width = Math.max(280, box.clientWidth);
  const styles = getComputedStyle(document.body);
  const options = {
    width,
    height: 240,
    series: [
      {},
      { label: "Visits", stroke: styles.getPropertyValue("--accent"), fill: styles.getPropertyValue("--accent-soft"), width: 2 },
      { label: hours ? "First visits" : "Visitors", stroke: styles.getPropertyValue("--second"), width: 2 },
    ],
    axes: [
      { stroke: styles.getPropertyValue("--muted"), grid: { stroke: styles.getPropertyValue("--grid") } },
      { stroke: styles.getPropertyValue("--muted"), grid: { stroke: styles.getPropertyValue("--grid") } },
    ],
    scales: { x: { time: true } },
    legend: { live: false },
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
  };
  chart?.destroy();
  chart = new uPlot(options, [xs, visits, second], box);
  $("empty").hidden = stats.totals.visits > 0;
}

async function renderCounters() {
  const box = $("counters");
  try {
    const { counters } = await api(`${tenantPath()}/counters?limit=20`);
    if (!counters.length) {
      box.textContent = "This site has no counters yet.";
      return;
    }
    const table = document.createElement("table");
    table.innerHTML = "<caption class=\"visually-hidden\">Counters</caption><thead><tr><th scope=\"col\">Counter</th><th scope=\"col\">Value</th><th scope=\"col\">Latest operations</th></tr></thead>";
    const body = document.createElement("tbody");
    for (const c of counters) {
      const tr = document.createElement("tr");
      const name = document.createElement("th");
      name.scope = "row";
      name.textContent = c.label ?? c.counter_id;
      const value = document.createElement("td");
      value.textContent = number.format(c.value);
      value.dataset.counterValue = c.counter_id;
      const ops = document.createElement("td");
      ops.textContent = "…";
      tr.append(name, value, ops);
      body.append(tr);
      api(`/v2${tenantPath()}/counters/${encodeURIComponent(c.counter_id)}/operations?limit=3`).then(
        ({ operations }) => {
          ops.textContent = operations.map((o) => `${o.kind} ${o.kind === "set" ? "" : o.delta > 0 ? "+" : ""}${o.kind === "set" ? o.value_after : o.delta} · ${o.created_at.slice(0, 16).replace("T", " ")}`).join("; ") || "–";
        },
        () => {
          ops.textContent = "(needs counter:history)";
        },
      );
    }
    table.append(body);
    box.replaceChildren(table);
  } catch (error) {
    box.textContent = error.status === 403 ? "This key does not read counters (a key with counter:read does)." : explain(error);
  }
}

function renderEmbed() {
  const origin = location.origin;
  const page = $("embed-page").value || "/";
  const tenant = encodeURIComponent(session.tenant);
  const path = `${origin}/tenants/${tenant}/pages/${encodeURIComponent(page)}`;
  $("embed-script").value = `<script src="${origin}/embed.js" data-edgecount-tenant="${tenant}" data-edgecount-track defer></script>\n<span data-edgecount-current>…</span> views`;
  $("embed-badge").value = `![views](${path}/badge.svg)`;
  $("embed-preview").src = `${path}/badge.svg?count=false`;
}

async function load() {
  const r = range();
  const params = new URLSearchParams({ from: new Date(r.from).toISOString(), to: new Date(r.to).toISOString(), granularity: r.granularity, limit: "10" });
  if (view.page) params.set("page", view.page);
  $("range-label").textContent = r.label + (view.page ? ` · ${view.page}` : "");
  for (const b of document.querySelectorAll("[data-range]")) b.setAttribute("aria-pressed", String(b.dataset.range === view.range));
  $("filter").hidden = !view.page;
  $("filter-page").textContent = view.page ?? "";
  $("board").setAttribute("aria-busy", "true");
  try {
    const stats = await api(`${tenantPath()}/stats?${params}`);
    notice("");
    renderTotals(stats);
    renderChart(stats);
    const pick = (page) => {
      view.page = page;
      load();
    };
    renderTop("top-pages", stats.top.pages, { onPick: view.page ? null : pick });
    renderTop("top-referrers", stats.top.referrers);
    renderTop("top-countries", stats.top.countries);
    renderTop("top-agents", stats.top.agents, { total: stats.totals.visits });
    $("bot-share").textContent = stats.totals.visits ? `Bots: ${Math.round((stats.totals.bots / stats.totals.visits) * 100)}% of requests (not counted as visits).` : "";
  } catch (error) {
    if (error.status === 401 || error.status === 403 || error.code === "TENANT_NOT_FOUND") signOut(explain(error));
    else notice(explain(error), load);
  } finally {
    $("board").removeAttribute("aria-busy");
  }
}

async function open() {
  $("signin").hidden = true;
  $("board").hidden = false;
  $("signout").hidden = false;
  try {
    const tenant = await api(tenantPath());
    $("site").textContent = tenant.label;
  } catch (error) {
    signOut(explain(error));
    return;
  }
  renderEmbed();
  await load();
  if (session) {
    $("share").hidden = session.shared;
    renderCounters();
  }
}

async function share() {
  try {
    const expires = new Date(Date.now() + 30 * DAY).toISOString();
    const issued = await api(`/v2${tenantPath()}/credentials`, { method: "POST", body: { scopes: ["tenant:read"], expires_at: expires } });
    const fragment = new URLSearchParams({ tenant: session.tenant, key: issued.api_key });
    $("share-link").value = `${location.origin}${location.pathname}#${fragment}`;
  } catch (error) {
    $("share-link").value = error.status === 403 ? "Only an administrator key can make share links." : explain(error);
  }
  $("share-dialog").showModal();
}

// ---- wiring --------------------------------------------------------------------------

$("signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  session = { tenant: $("tenant").value.trim(), key: $("key").value.trim(), shared: false };
  sessionStorage.setItem(SESSION, JSON.stringify(session));
  $("key").value = "";
  open();
});
$("signout").addEventListener("click", () => signOut(""));
$("share").addEventListener("click", share);
$("filter-clear").addEventListener("click", () => {
  view.page = null;
  load();
});
for (const button of document.querySelectorAll("[data-range]")) {
  button.addEventListener("click", () => {
    view = { ...view, range: button.dataset.range };
    load();
  });
}
$("custom").addEventListener("submit", (event) => {
  event.preventDefault();
  const from = Date.parse($("from").value);
  const to = Date.parse($("to").value) + DAY;
  if (!(from < to)) {
    notice("The range must start before it ends.");
    return;
  }
  view = { ...view, range: "custom", from, to };
  load();
});
$("embed-page").addEventListener("input", renderEmbed);
$("embed-form").addEventListener("submit", (event) => event.preventDefault());
addEventListener("resize", () => chart?.setSize({ width: Math.max(280, $("chart").clientWidth), height: 240 }));

const today = isoDay(Date.now());
$("from").value = isoDay(Date.now() - 6 * DAY);
$("to").value = today;
session = readSession();
if (session?.tenant && session?.key) open();
else signOut("");
