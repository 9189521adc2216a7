// agentos dashboard: live updates over server-sent events. No library, no inline script (the
// Content-Security-Policy forbids both). When the server says the records changed, the page
// fetches its own <main> again and swaps it in: every value in it was escaped by the server.
"use strict";
(function () {
  var body = document.body;
  var run = body.getAttribute("data-live");
  if (run === null) { return; }
  var state = document.getElementById("live-state");
  var main = document.getElementById("main");
  var busy = false;
  var again = false;
  var timer = null;
  var notBefore = 0;

  // At most one fetch at a time, and a pause after each of at least 1 s or twice what the
  // last one took: a big run's page is not re-rendered back to back while its run writes.
  function refresh() {
    var wait = notBefore - Date.now();
    if (busy) { again = true; return; }
    if (wait > 0) {
      if (timer === null) { timer = window.setTimeout(function () { timer = null; refresh(); }, wait); }
      return;
    }
    busy = true;
    var started = Date.now();
    var url = window.location.pathname + "?fragment=main";
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        var parsed = new DOMParser().parseFromString("<main>" + html + "</main>", "text/html");
        var fresh = parsed.body.firstElementChild;
        main.replaceChildren.apply(main, Array.prototype.slice.call(fresh.childNodes).map(function (n) {
          return document.importNode(n, true);
        }));
        body.setAttribute("data-updates", String(Number(body.getAttribute("data-updates") || "0") + 1));
        if (state) { state.textContent = "live · updated " + new Date().toLocaleTimeString(); state.classList.remove("stale"); }
      })
      .catch(function () {
        if (state) { state.textContent = "live · update failed"; state.classList.add("stale"); }
      })
      .finally(function () {
        busy = false;
        notBefore = Date.now() + Math.max(1000, 2 * (Date.now() - started));
        if (again) { again = false; refresh(); }
      });
  }

  var source = new EventSource(
    "/events?run=" + encodeURIComponent(run) + "&since=" + encodeURIComponent(body.getAttribute("data-stamp") || ""));
  source.addEventListener("change", refresh);
  source.addEventListener("open", function () {
    if (state) { state.textContent = "live"; state.classList.remove("stale"); }
  });
  source.addEventListener("error", function () {
    if (state) { state.textContent = "live · reconnecting"; state.classList.add("stale"); }
  });
})();
