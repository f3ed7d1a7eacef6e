/*! edgecount embed — counts and shows page views and likes. No cookies, no storage. */
(function () {
  "use strict";
  var me = document.currentScript;
  var api = (me && (me.getAttribute("data-edgecount-api") || (me.src && new URL(me.src).origin))) || "";
  var A = "data-edgecount-";

  function call(method, path) {
    return fetch(api + path, { method: method, mode: "cors", credentials: "omit", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); });
  }

  function show(el, n) {
    var slot = el.querySelector("[" + A + "value]") || el;
    slot.textContent = String(n);
    el.setAttribute(A + "ready", "");
  }

  function pages() {
    var seen = {};
    var els = document.querySelectorAll("[" + A + "page]");
    Array.prototype.forEach.call(els, function (el) {
      var tenant = el.getAttribute(A + "tenant");
      var page = el.getAttribute(A + "page");
      if (!tenant || !page) return;
      var read = el.getAttribute(A + "mode") === "read";
      var key = tenant + "\n" + page + "\n" + read;
      // One request per page and mode per load, however many elements show it.
      if (!seen[key]) {
        var path = "/tenants/" + encodeURIComponent(tenant) + "/pages/" + encodeURIComponent(page);
        seen[key] = read ? call("GET", path) : call("POST", path + "/visit");
      }
      seen[key].then(function (r) { show(el, r.count); }, function () {});
    });
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
    try { pages(); likes(); } catch (e) { /* a counter must never break the page */ }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
