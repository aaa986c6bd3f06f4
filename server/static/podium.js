// Podium pages: local times, live submission status, self-refreshing boards. No framework, no CDN.
(function () {
  "use strict";
  var fmt = new Intl.DateTimeFormat(undefined, {dateStyle: "medium", timeStyle: "short"});
  var timeFmt = new Intl.DateTimeFormat(undefined, {timeStyle: "short"});

  function localize(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) { t.textContent = fmt.format(d); t.title = d.toISOString(); }
    });
    root.querySelectorAll("[data-localtime]").forEach(function (t) {
      var d = new Date(t.getAttribute("data-localtime"));
      if (!isNaN(d)) { t.textContent = (t.hasAttribute("data-short") ? timeFmt : fmt).format(d); }
    });
    root.querySelectorAll("[data-until]").forEach(function (el) {
      var ms = new Date(el.getAttribute("data-until")) - new Date();
      if (ms <= 0) { el.textContent = "(closed)"; return; }
      var h = Math.floor(ms / 3600000), d = Math.floor(h / 24);
      el.textContent = "(" + (d >= 2 ? d + " days" : h >= 1 ? h + " h " + Math.floor(ms / 60000) % 60 + " min" :
        Math.max(1, Math.floor(ms / 60000)) + " min") + " left)";
    });
  }

  function badge(status) { return '<span class="status status-' + status + '">' + status + "</span>"; }
  function text(el, value) { if (el) { el.textContent = value; } }

  function poll(el) {
    var id = el.getAttribute("data-sub");
    fetch("/api/v1/submissions/" + id, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) { return; }
        if (s.status !== el.getAttribute("data-status")) {
          el.setAttribute("data-status", s.status);
          var cell = el.classList.contains("js-status") ? el : el.querySelector(".js-status");
          if (cell) { cell.innerHTML = badge(s.status); }
          if (s.status === "scored" || s.status === "failed") {
            el.querySelectorAll(".js-cancel").forEach(function (f) { f.remove(); });
          }
          if (el.hasAttribute("data-reload") && (s.status === "scored" || s.status === "failed")) {
            window.location.reload(); return;
          }
        }
        if (s.public_score !== null && s.public_score !== undefined) { text(el.querySelector(".js-score"), s.public_score.toFixed(4)); }
        if (s.rank) { text(document.getElementById("my-rank"), s.rank); }
        if (s.error) { text(el.querySelector(".js-error"), s.error); }
      })
      .catch(function () {})
      .finally(function () {
        var st = el.getAttribute("data-status");
        if (st === "queued" || st === "running") { setTimeout(function () { poll(el); }, 1000); }
      });
  }

  function startPolling(root) {
    root.querySelectorAll("[data-sub]").forEach(function (el) {
      var st = el.getAttribute("data-status");
      if (st === "queued" || st === "running") { setTimeout(function () { poll(el); }, 500); }
    });
  }

  function autoRefresh(board) {
    var seconds = parseInt(board.getAttribute("data-refresh"), 10);
    if (!seconds) { return; }
    setTimeout(function () {
      fetch(window.location.href, {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) { return; }
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("board");
          if (fresh) {
            board.innerHTML = fresh.innerHTML;
            board.setAttribute("data-refresh", fresh.getAttribute("data-refresh") || "");
            localize(board);
          }
        })
        .catch(function () {})
        .finally(function () { autoRefresh(board); });
    }, seconds * 1000);
  }

  function localTimeForms() {
    document.querySelectorAll("form.js-local-times").forEach(function (form) {
      form.querySelectorAll("input[type=datetime-local][data-iso]").forEach(function (input) {
        var d = new Date(input.getAttribute("data-iso"));
        if (input.getAttribute("data-iso") && !isNaN(d)) {
          var local = new Date(d.getTime() - d.getTimezoneOffset() * 60000);
          input.value = local.toISOString().slice(0, 16);
        }
      });
      form.addEventListener("submit", function () {
        form.querySelectorAll("input[type=datetime-local]").forEach(function (input) {
          var hidden = document.createElement("input");
          hidden.type = "hidden"; hidden.name = input.name;
          hidden.value = input.value ? new Date(input.value).toISOString() : "";
          input.disabled = true;
          form.appendChild(hidden);
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localize(document);
    startPolling(document);
    var board = document.getElementById("board");
    if (board) { autoRefresh(board); }
    localTimeForms();
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { e.preventDefault(); }
      });
    });
  });
})();
