// The console's one script: keyboard shortcuts, and new tips appearing
// without a reload. It talks to the console only (the CSP allows nothing
// else) and writes with the page's CSRF token.
"use strict";
(function () {
  var body = document.body, csrf = body.dataset.csrf, page = body.dataset.page;
  var version = Number(body.dataset.version), maxSeq = Number(body.dataset.maxseq);
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#rows tr")); }
  function selected() { return document.querySelector("#rows tr.sel"); }
  function select(tr) {
    rows().forEach(function (r) { r.classList.remove("sel"); });
    if (tr) { tr.classList.add("sel"); tr.scrollIntoView({block: "nearest"}); }
  }
  function move(d) {
    var rs = rows(), cur = selected(), i = rs.indexOf(cur);
    if (!rs.length) return;
    i = cur ? Math.max(0, Math.min(rs.length - 1, i + d)) : 0;
    select(rs[i]);
  }
  function currentTip() {
    if (page === "tip") return document.querySelector("article.tip").dataset.id;
    var s = selected();
    return s ? s.dataset.id : null;
  }
  function flash(msg) { var n = document.getElementById("news"); n.textContent = msg; n.hidden = false; }
  function post(path, fields) {
    var f = new URLSearchParams(fields);
    return fetch(path, {method: "POST", headers: {"X-CSRF-Token": csrf, "Accept": "application/json"}, body: f, credentials: "same-origin"})
      .then(function (r) { return r.json().then(function (j) { if (!r.ok) throw new Error(j.error || r.statusText); return j; }); });
  }
  function setStatus(status) {
    var id = currentTip();
    if (!id) return;
    post("/tip/" + id + "/triage", {status: status}).then(function (j) {
      if (page === "tip") { location.reload(); return; }
      var tr = selected();
      if (tr && tr.dataset.id === id) {
        tr.querySelector(".status").textContent = status;
        tr.className = "s-" + status + " sel";
        move(1);
      }
      flash("tip " + id + ": " + status + " (event " + j.index + ")");
    }).catch(function (e) { flash("triage failed: " + e.message); });
  }
  var keys = {n: "new", r: "reviewing", u: "useful", x: "rejected", s: "spam"};
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) {
      if (e.key === "Escape") t.blur();
      return;
    }
    var k = e.key, tip = page === "tip" ? document.querySelector("article.tip") : null;
    if (k === "j") { if (tip) { if (tip.dataset.next) location.href = "/tip/" + tip.dataset.next; } else move(1); }
    else if (k === "k") { if (tip) { if (tip.dataset.prev) location.href = "/tip/" + tip.dataset.prev; } else move(-1); }
    else if (k === "o" || k === "Enter") { var id = currentTip(); if (id && page !== "tip") location.href = "/tip/" + id; else return; }
    else if (k === "/") { var q = document.getElementById("q"); if (q) q.focus(); else location.href = "/?focus=q"; }
    else if (keys[k]) setStatus(keys[k]);
    else if (k === "t" || k === "a" || k === "m") {
      var id2 = currentTip();
      if (!id2) return;
      if (page !== "tip") { location.href = "/tip/" + id2 + "#" + k; return; }
      var el = document.getElementById({t: "tag", a: "assignee", m: "notetext"}[k]);
      if (el) el.focus();
    }
    else if (k === "i") location.href = "/";
    else if (k === "c") location.href = "/claims";
    else if (k === "l") location.href = "/log";
    else if (k === "?") document.querySelector("footer .keys").scrollIntoView();
    else return;
    e.preventDefault();
  });
  if (page === "tip" && location.hash) {
    var el = document.getElementById({"#t": "tag", "#a": "assignee", "#m": "notetext"}[location.hash]);
    if (el) el.focus();
  }
  if (page === "inbox" && location.search.indexOf("focus=q") >= 0) document.getElementById("q").focus();
  // New tips and changes, without a reload.
  function cell(tr, text, cls) { var td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); return td; }
  function poll() {
    fetch("/api/changes?since=" + version + "&after=" + maxSeq, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (j) {
        if (!j || j.version === version) return;
        version = j.version;
        var tbody = document.getElementById("rows"), filtered = document.getElementById("filters") && location.search.length > 1;
        var added = 0;
        (j.tips || []).forEach(function (t) {
          if (t.seq <= maxSeq) return;
          maxSeq = Math.max(maxSeq, t.seq);
          if (!tbody || filtered) { added++; return; }
          var tr = document.createElement("tr");
          tr.dataset.id = t.id; tr.dataset.seq = t.seq; tr.className = "s-" + t.status + " fresh";
          cell(tr, t.day); cell(tr, t.size, "n"); cell(tr, t.status, "status"); cell(tr, t.tags.join(" "), "tags"); cell(tr, t.assignee, "assignee");
          var td = cell(tr, "", "first"), a = document.createElement("a");
          a.href = "/tip/" + t.id; a.textContent = t.first_line || "(no text)"; td.appendChild(a);
          if (t.source_tips > 1) {
            var sa = document.createElement("a");
            sa.className = "source"; sa.href = "/?source=" + encodeURIComponent(t.id); sa.textContent = t.source_tips + " tips from this source";
            td.appendChild(document.createTextNode(" ")); td.appendChild(sa);
          }
          cell(tr, t.attachments ? String(t.attachments) : "", "n");
          tbody.insertBefore(tr, tbody.firstChild);
          added++;
        });
        if (added) flash(added + " new tip" + (added > 1 ? "s" : "") + (filtered ? ": clear the filter to see them" : ""));
        else if (j.alert) flash(j.alert);
      }).catch(function () {});
  }
  setInterval(poll, 2000);
})();
