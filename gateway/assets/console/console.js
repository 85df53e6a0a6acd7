// Portico console: the little script the pages use. No framework, no inline script (the
// Content-Security-Policy allows only this file).
//
// - [data-refresh="N"] regions re-read the page every N seconds (while the tab is visible)
//   and swap themselves with the element of the same id in the fresh page.
// - form[data-confirm] asks before posting.
// - input[data-filter="#table"] hides table rows that do not contain the typed text.
(function () {
  "use strict";

  function refresh(region) {
    if (document.hidden || region.dataset.busy) { return; }
    region.dataset.busy = "1";
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Portico-Refresh": region.id } })
      .then(function (response) {
        if (response.redirected || !response.ok) {
          // Signed out or an error: a full load shows why.
          if (response.status === 401 || response.redirected) { window.location.reload(); }
          return null;
        }
        return response.text();
      })
      .then(function (text) {
        if (text === null) { return; }
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById(region.id);
        if (fresh) {
          region.replaceWith(fresh);
          watch(fresh);
        }
      })
      .catch(function () { /* offline for a moment: the next tick retries */ })
      .finally(function () { delete region.dataset.busy; });
  }

  function watch(region) {
    var seconds = parseInt(region.dataset.refresh, 10);
    if (!(seconds > 0)) { return; }
    var timer = window.setInterval(function () {
      if (!document.body.contains(region)) { window.clearInterval(timer); return; }
      refresh(region);
    }, seconds * 1000);
  }

  function filter(input) {
    var table = document.querySelector(input.dataset.filter);
    if (!table) { return; }
    input.addEventListener("input", function () {
      var needle = input.value.toLowerCase();
      table.querySelectorAll("tbody tr").forEach(function (row) {
        row.hidden = needle !== "" && row.textContent.toLowerCase().indexOf(needle) === -1;
      });
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh]").forEach(watch);
    document.querySelectorAll("input[data-filter]").forEach(filter);
  });
})();
