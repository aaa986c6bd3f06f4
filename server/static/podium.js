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

  // A row of "my submissions" whose status changed: take the row (its actions: mark final, cancel), the
  // banner of the upload it came from, the limits and the upload button from the page as the server renders
  // it now, so nothing shown is stale and no wording lives twice. Resolves to the row now in the page.
  function refreshFromPage(el, id) {
    var url = window.location.pathname + "?new=" + encodeURIComponent(id);
    return fetch(url, {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return el; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector('#my-subs tr[data-sub="' + id + '"]');
        if (fresh && el.parentNode) { el.replaceWith(fresh); localize(fresh); el = fresh; }
        var banner = document.querySelector('#upload-result[data-banner="' + id + '"]');
        var freshBanner = doc.getElementById("upload-result");
        if (banner && freshBanner && freshBanner.getAttribute("data-banner") === id) { banner.replaceWith(freshBanner); }
        ["upload-state", "quota", "my-rank"].forEach(function (name) {
          var mineEl = document.getElementById(name), theirs = doc.getElementById(name);
          if (mineEl && theirs) { mineEl.innerHTML = theirs.innerHTML; localize(mineEl); }
        });
        var button = document.getElementById("upload-button"), freshButton = doc.getElementById("upload-button");
        if (button && freshButton) { button.disabled = freshButton.disabled; }
        return el;
      })
      .catch(function () { return el; });
  }

  function poll(el) {
    var id = el.getAttribute("data-sub");
    fetch("/api/v1/submissions/" + id, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) { return; }
        if (s.status !== el.getAttribute("data-status") && el.closest("#my-subs")) {
          return refreshFromPage(el, id).then(function (row) { el = row; });  // the fresh row's status, as rendered
        }
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

  // A team's list: when a teammate uploads, the new row appears (the section is re-read from the page).
  function watchTeam(section) {
    var url = section.getAttribute("data-watch");
    setTimeout(function () {
      fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (subs) {
          if (!subs) { return null; }
          var unseen = subs.some(function (s) { return !section.querySelector('[data-sub="' + s.id + '"]'); });
          return unseen ? fetch(window.location.pathname, {credentials: "same-origin"}).then(function (r) { return r.ok ? r.text() : null; }) : null;
        })
        .then(function (html) {
          if (!html) { return; }
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("mine");
          if (fresh) { section.innerHTML = fresh.innerHTML; localize(section); startPolling(section); }
        })
        .catch(function () {})
        .finally(function () { watchTeam(section); });
    }, 5000);
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

  function showUploadResult(message) {
    var el = document.getElementById("upload-result");
    if (!el) { return; }
    el.hidden = false;
    el.className = "flash flash-error";
    el.removeAttribute("data-banner");
    el.textContent = message;
    el.focus({preventScroll: true});
    el.scrollIntoView({block: "nearest"});
  }

  // The upload form checks the file's size against the challenge's limit before sending anything.
  function uploadForms() {
    document.querySelectorAll("form.upload[data-max-bytes]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        var input = form.querySelector("input[type=file]");
        var file = input && input.files && input.files[0];
        var max = parseInt(form.getAttribute("data-max-bytes"), 10);
        if (file && max && file.size > max) {
          e.preventDefault();
          showUploadResult("Upload refused: the model is larger than this challenge's limit of " +
            form.getAttribute("data-max-mb") + " MB (this file is " + (file.size / 1048576).toFixed(1) +
            " MB); nothing was sent.");
        }
      });
    });
    // Back from an upload, the page opens at the form; its outcome takes the focus (after the browser's own
    // scroll to the fragment, which would take it back), so a keyboard or a screen reader lands on it.
    window.addEventListener("load", function () {
      var result = document.getElementById("upload-result");
      if (result && !result.hidden && window.location.hash === "#upload-form") { result.focus({preventScroll: true}); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localize(document);
    uploadForms();
    startPolling(document);
    var board = document.getElementById("board");
    if (board) { autoRefresh(board); }
    var mine = document.querySelector("#mine[data-watch]");
    if (mine) { watchTeam(mine); }
    localTimeForms();
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { e.preventDefault(); }
      });
    });
  });
})();
