/*! edgecount embed — counts and shows page views and likes, and follows single-page sites. No cookies; the one storage read is the opt-in "ignore my visits" switch. */
(function () {
  "use strict";
  // Included twice (or re-run by a page-swapping library): the first copy does the work.
  if (window.__edgecount) return;
  window.__edgecount = 1;
  var me = document.currentScript;
  var A = "data-edgecount-";
  var own = function (name) { return me ? me.getAttribute(A + name) : null; };
  var api = (me && (own("api") || (me.src && new URL(me.src).origin))) || "";
  var seen = {};

  // localStorage.edgecount_ignore = "1" (set by the site owner in their own browser):
  // show counts, count nothing. Pages on this machine count only when the script says so.
  var quiet = false;
  try { quiet = localStorage.getItem("edgecount_ignore") === "1"; } catch (e) { /* storage blocked */ }
  if (/^(localhost|127\.\d+\.\d+\.\d+|\[::1\]|0\.0\.0\.0)$/.test(location.hostname) && own("localhost") === null) quiet = true;

  function call(method, path) {
    return fetch(api + path, { method: method, mode: "cors", credentials: "omit", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); });
  }

  function show(el, n) {
    var slot = el.querySelector("[" + A + "value]") || el;
    slot.textContent = String(n);
    el.setAttribute(A + "ready", "");
  }

  // Where the visitor came from: the host of the document's referrer, on landing only
  // and when it is another site (the request's own Referer would name this page). Only
  // the host travels: a referring URL's path and query are none of our business.
  var landed = false;
  function from() {
    if (landed) return "";
    landed = true;
    try {
      var r = document.referrer && new URL(document.referrer);
      return r && r.host !== location.host ? r.protocol + "//" + r.host + "/" : "";
    } catch (e) { return ""; }
  }

  // One request per page and mode per page load, however many elements or navigations
  // show it: a path is counted once.
  function page(tenant, id, read) {
    read = read || quiet;
    var key = tenant + "\n" + id + "\n" + read;
    if (!seen[key]) {
      var path = "/tenants/" + encodeURIComponent(tenant) + "/pages/" + encodeURIComponent(id);
      seen[key] = read ? call("GET", path) : call("POST", path + "/visit?referrer=" + encodeURIComponent(from()));
    }
    return seen[key];
  }

  function pages() {
    var els = document.querySelectorAll("[" + A + "page]");
    Array.prototype.forEach.call(els, function (el) {
      var tenant = el.getAttribute(A + "tenant");
      var id = el.getAttribute(A + "page");
      if (!tenant || !id) return;
      page(tenant, id, el.getAttribute(A + "mode") === "read").then(function (r) { show(el, r.count); }, function () {});
    });
  }

  // data-edgecount-track on the script: count the current path as a page of
  // data-edgecount-tenant, and again on every navigation of a single-page site
  // (pushState, replaceState, back and forward) to a path not counted yet.
  // data-edgecount-hash counts "#/routes" as paths too.
  function track() {
    var tenant = own("tenant");
    if (own("track") === null || !tenant) return;
    var hash = own("hash") !== null;
    var last;
    function now() {
      var id = location.pathname + (hash ? location.hash : "");
      if (id === last) return;
      last = id;
      page(tenant, id).then(function (r) {
        var els = document.querySelectorAll("[" + A + "current]");
        Array.prototype.forEach.call(els, function (el) { show(el, r.count); });
      }, function () {});
    }
    ["pushState", "replaceState"].forEach(function (name) {
      var original = history[name];
      history[name] = function () {
        var result = original.apply(this, arguments);
        try { now(); } catch (e) { /* never break navigation */ }
        return result;
      };
    });
    addEventListener("popstate", now);
    if (hash) addEventListener("hashchange", now);
    now();
  }

  function likes() {
    var els = document.querySelectorAll("[" + A + "counter]");
    Array.prototype.forEach.call(els, function (el) {
      var tenant = el.getAttribute(A + "tenant");
      var counter = el.getAttribute(A + "counter");
      if (!tenant || !counter) return;
      var path = "/tenants/" + encodeURIComponent(tenant) + "/" + encodeURIComponent(counter);
      call("GET", path).then(function (r) { show(el, r.value); }, function () {});
      el.addEventListener("click", function () {
        if (el.hasAttribute(A + "busy")) return;
        el.setAttribute(A + "busy", "");
        call("POST", path + "/inc").then(
          function (r) { show(el, r.value); el.removeAttribute(A + "busy"); },
          function () { el.removeAttribute(A + "busy"); }
        );
      });
    });
  }

  function start() {
    try { track(); pages(); likes(); } catch (e) { /* a counter must never break the page */ }
  }
  // A prerendered page counts when someone actually opens it, not before.
  function ready() {
    if (document.prerendering) document.addEventListener("prerenderingchange", start, { once: true });
    else start();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
