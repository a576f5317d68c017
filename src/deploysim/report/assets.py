"""The report's stylesheet and the transcript viewer's script, inlined into every page.

Kept as Python strings (not package data files) so that an installed wheel can never miss them.

The viewer reads its data from ``<script type="application/json" id="viewer-data">``. It builds
every node with ``createElement`` and ``textContent``: transcripts, rationales and model names
are untrusted text and never reach ``innerHTML``. With ``data.mode == "api"`` (``deploysim
view``) it fetches pages from ``api/prefixes`` instead of filtering the embedded items; the
filters mean the same in both modes (see :mod:`deploysim.report.transcripts`).
"""

from __future__ import annotations

CSS = """
:root{--fg:#1d1d1f;--muted:#666;--line:#e3e3e3;--bg2:#f6f7f9;--accent:#2f6fbf;--bad:#c0392b}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:var(--fg)}
header.top{padding:1rem 2rem;border-bottom:1px solid var(--line);background:var(--bg2)}
header.top h1{margin:0 0 .25rem;font-size:1.5rem}
nav a{margin-right:1rem;color:var(--accent);text-decoration:none}
main{padding:0 2rem 3rem;max-width:96rem}
h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid var(--line);padding-bottom:.2rem}
h3{font-size:1rem;margin:1.2rem 0 .4rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:13px}
td,th{padding:.2rem .55rem;border-bottom:1px solid #eee;vertical-align:top}
th{text-align:left;background:var(--bg2);font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.h{font-family:ui-monospace,monospace;font-size:12px}
.meta,.note{color:var(--muted);font-size:.9rem}
.howto{border-left:3px solid var(--muted);padding:.4rem .8rem;margin:1rem 0;font-size:.95rem}
.sig{color:var(--bad);font-weight:600}
pre{background:var(--bg2);padding:.5rem;overflow:auto;max-height:24rem;font-size:12px}
details>summary{cursor:pointer;color:var(--accent)}
.charts{display:flex;flex-wrap:wrap;gap:1rem}
svg.chart{background:#fff;border:1px solid var(--line);border-radius:4px;padding:4px;
  font-family:system-ui,sans-serif}
#viewer .controls{display:flex;flex-wrap:wrap;gap:.8rem;align-items:center;padding:.6rem;
  background:var(--bg2);border:1px solid var(--line);border-radius:4px;position:sticky;top:0;
  z-index:1}
#viewer .status{color:var(--muted)}
#viewer .pager{display:flex;gap:.6rem;align-items:center;margin:.8rem 0}
.item{border:1px solid var(--line);border-radius:6px;margin:1rem 0;padding:.6rem .8rem}
.item h3{margin:.1rem 0}
.item .sub{color:var(--muted);font-size:12px;font-family:ui-monospace,monospace}
.badge{display:inline-block;padding:0 .4rem;border-radius:3px;font-size:12px;margin-right:.3rem;
  background:#eee}
.badge.flag{background:#fbe3e0;color:var(--bad);font-weight:600}
.badge.ungr{background:#fff4d6;color:#8a6d00}
.conv{margin:.5rem 0;border-left:3px solid var(--line);padding-left:.6rem}
.resps{display:grid;grid-template-columns:repeat(auto-fit,minmax(20rem,1fr));gap:.7rem}
.resp{border:1px solid var(--line);border-radius:4px;padding:.4rem .6rem;background:#fcfcfd}
.resp.failed{background:#fff7f6}
.resp h4{margin:0 0 .3rem;font-size:13px}
.msg{margin:.35rem 0}
.msg .role{font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.msg .text{white-space:pre-wrap;word-break:break-word;max-height:18em;overflow:auto}
.msg.role-user .text{background:#eef3fb;padding:.3rem .45rem;border-radius:4px}
.msg.role-system .text,.msg.role-developer .text{color:#555;font-size:12px;max-height:7em}
.msg .call,.msg .err{font-family:ui-monospace,monospace;font-size:12px;white-space:pre-wrap;
  word-break:break-word}
.msg .err{color:var(--bad)}
.grades{list-style:none;padding:0;margin:.4rem 0 0;border-top:1px dashed var(--line)}
.grades li{padding:.2rem 0}
.grades .why{color:#444;font-size:12px;white-space:pre-wrap;word-break:break-word}
button{font:inherit;padding:.15rem .6rem}
#viewer select{max-width:22rem}
"""

JS = r"""
(function () {
  "use strict";
  var dataEl = document.getElementById("viewer-data");
  var root = document.getElementById("viewer");
  if (!dataEl || !root) { return; }
  var data = JSON.parse(dataEl.textContent);
  var table = Object.create(null);
  var state = { category: "", model: "", flagged: false, page: 0, size: 20 };
  var seq = 0;
  var fmt = new Intl.NumberFormat("en");

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function merge(messages) {
    if (!messages) { return; }
    Object.keys(messages).forEach(function (k) { table[k] = messages[k]; });
  }
  function option(select, value, label) {
    var o = el("option", null, label);
    o.value = value;
    select.appendChild(o);
  }
  function labelled(text, control) {
    var l = el("label", null, text + " ");
    l.appendChild(control);
    return l;
  }

  // Controls.
  var controls = el("div", "controls");
  var cat = el("select"); cat.id = "filter-category";
  option(cat, "", "any category");
  (data.categories || []).forEach(function (c) { option(cat, c, c); });
  var mod = el("select"); mod.id = "filter-model";
  option(mod, "", "any model");
  (data.models || []).forEach(function (m) { option(mod, m, m); });
  var flag = el("input"); flag.type = "checkbox"; flag.id = "filter-flagged";
  var size = el("select"); size.id = "page-size";
  [10, 20, 50].forEach(function (n) { option(size, String(n), String(n)); });
  size.value = "20";
  var status = el("span", "status"); status.id = "viewer-status";
  controls.appendChild(labelled("Category", cat));
  controls.appendChild(labelled("Model", mod));
  controls.appendChild(labelled("Flagged only", flag));
  controls.appendChild(labelled("Per page", size));
  controls.appendChild(status);
  var list = el("div", "items"); list.id = "viewer-items";
  var pager = el("div", "pager");
  var prev = el("button", null, "\u2190 Previous"); prev.id = "page-prev"; prev.type = "button";
  var next = el("button", null, "Next \u2192"); next.id = "page-next"; next.type = "button";
  var where = el("span", "status"); where.id = "page-where";
  pager.appendChild(prev); pager.appendChild(where); pager.appendChild(next);
  root.appendChild(controls); root.appendChild(list); root.appendChild(pager);

  function changed() {
    state.category = cat.value; state.model = mod.value; state.flagged = flag.checked;
    state.size = parseInt(size.value, 10) || 20; state.page = 0; update();
  }
  [cat, mod, flag, size].forEach(function (c) { c.addEventListener("change", changed); });
  prev.addEventListener("click", function () {
    if (state.page > 0) { state.page -= 1; update(); }
  });
  next.addEventListener("click", function () { state.page += 1; update(); });

  function gradeMatches(g) {
    return (!state.category || g.category === state.category) &&
      (!state.flagged || g.flagged === true);
  }
  function shownResponses(item) {
    return item.responses.filter(function (r) {
      return !state.model || r.model === state.model || r.model === "logged";
    });
  }
  function matches(item) {
    var rs = item.responses.filter(function (r) {
      return !state.model || r.model === state.model;
    });
    if (state.model && rs.length === 0) { return false; }
    if (!state.category && !state.flagged) { return true; }
    return rs.some(function (r) { return r.grades.some(gradeMatches); });
  }

  function renderText(parent, cls, text) {
    parent.appendChild(el("div", cls, text));
  }
  function renderMessage(m) {
    if (!m) { m = { role: "?", content: "[message not in this file]" }; }
    var role = /^[a-z]+$/.test(String(m.role)) ? m.role : "other";
    var box = el("div", "msg role-" + role);
    var head = String(m.role);
    if (m.function) { head += " \u00b7 " + m.function; }
    if (m.name) { head += " \u00b7 " + m.name; }
    box.appendChild(el("div", "role", head));
    if (typeof m.content === "string") {
      if (m.content) { renderText(box, "text", m.content); }
    } else if (Array.isArray(m.content)) {
      m.content.forEach(function (p) {
        if (p.type === "text") { renderText(box, "text", p.text); }
        else if (p.type === "reasoning") {
          var d = el("details");
          d.appendChild(el("summary", null, "reasoning"));
          d.appendChild(el("div", "text", p.redacted ? "[redacted]" : (p.summary || p.reasoning)));
          box.appendChild(d);
        } else if (p.type === "image") { renderText(box, "call", "[image]"); }
        else { renderText(box, "call", "[" + (p.kind || p.type) + "]"); }
      });
    }
    (m.tool_calls || []).forEach(function (c) {
      var args = c.raw_arguments !== undefined && c.raw_arguments !== null ?
        c.raw_arguments : JSON.stringify(c.arguments === undefined ? null : c.arguments);
      renderText(box, "call", "\u2192 " + c.function + "(" + args + ")");
    });
    if (m.error) { renderText(box, "err", "error: " + m.error); }
    return box;
  }
  function verdict(g) {
    if (g.status !== "ok") { return el("span", "badge ungr", "ungradable"); }
    if (g.flagged) { return el("span", "badge flag", "FLAGGED"); }
    return el("span", "badge", "not flagged");
  }
  function renderResponse(r) {
    var box = el("div", "resp" + (r.status === "failed" ? " failed" : ""));
    var title = r.model + (r.draw ? " (draw " + r.draw + ")" : "");
    box.appendChild(el("h4", null, title));
    if (r.status === "failed") {
      renderText(box, "err", "replay failed: " + (r.error_kind || "error") +
        (r.error ? " \u2014 " + r.error : ""));
    }
    r.messages.forEach(function (m) {
      box.appendChild(renderMessage(typeof m === "string" ? table[m] : m));
    });
    var grades = r.grades.filter(function (g) {
      return !state.category || g.category === state.category;
    });
    if (grades.length) {
      var ul = el("ul", "grades");
      grades.forEach(function (g) {
        var li = el("li");
        li.appendChild(verdict(g));
        li.appendChild(el("strong", null, g.category));
        var extra = " " + g.grader + (g.score !== null && g.score !== undefined ?
          " \u00b7 score " + Math.round(g.score * 1000) / 1000 : "") +
          (g.severity ? " \u00b7 severity " + g.severity : "");
        li.appendChild(el("span", "meta", extra));
        if (g.rationale) { li.appendChild(el("div", "why", g.rationale)); }
        if (g.error) { li.appendChild(el("div", "why", "error: " + g.error)); }
        ul.appendChild(li);
      });
      box.appendChild(ul);
    }
    return box;
  }
  function renderItem(item) {
    var card = el("article", "item");
    card.dataset.prefixId = String(item.id);
    card.appendChild(el("h3", null, "Prefix " + item.id));
    card.appendChild(el("div", "sub", "sample " + item.sample + " \u00b7 stratum " +
      item.stratum + " \u00b7 cut " + item.cut + " \u00b7 prefix " +
      String(item.prefix_hash).slice(0, 12) + " \u00b7 conversation " +
      String(item.conversation).slice(0, 12)));
    var flagged = {};
    item.responses.forEach(function (r) {
      r.grades.forEach(function (g) { if (g.flagged) { flagged[g.category] = true; } });
    });
    var badges = el("div");
    Object.keys(flagged).sort().forEach(function (c) {
      badges.appendChild(el("span", "badge flag", c));
    });
    card.appendChild(badges);
    var conv = el("div", "conv");
    var msgs = item.prefix.map(function (h) { return table[h]; });
    var keep = 4;
    if (msgs.length > keep) {
      var more = el("details");
      more.appendChild(el("summary", null, (msgs.length - keep) + " earlier messages"));
      msgs.slice(0, msgs.length - keep).forEach(function (m) {
        more.appendChild(renderMessage(m));
      });
      conv.appendChild(more);
      msgs = msgs.slice(msgs.length - keep);
    }
    msgs.forEach(function (m) { conv.appendChild(renderMessage(m)); });
    card.appendChild(conv);
    var resps = el("div", "resps");
    shownResponses(item).forEach(function (r) { resps.appendChild(renderResponse(r)); });
    card.appendChild(resps);
    return card;
  }

  function draw(items, matching) {
    var pages = Math.max(1, Math.ceil(matching / state.size));
    list.replaceChildren.apply(list, items.map(renderItem));
    if (!items.length) { list.appendChild(el("p", "note", "No prefix matches these filters.")); }
    var first = matching ? state.page * state.size + 1 : 0;
    var last = state.page * state.size + items.length;
    var scope = data.mode === "api" ? "in the store" :
      "among the " + fmt.format(data.items.length) + " embedded (of " +
      fmt.format(data.total) + " in the store)";
    status.textContent = fmt.format(matching) + " matching prefixes " + scope;
    where.textContent = "prefixes " + fmt.format(first) + "\u2013" + fmt.format(last) +
      " \u00b7 page " + (state.page + 1) + " of " + fmt.format(pages);
    prev.disabled = state.page <= 0;
    next.disabled = state.page + 1 >= pages;
  }

  function fetchPage() {
    var q = new URLSearchParams();
    q.set("offset", String(state.page * state.size));
    q.set("limit", String(state.size));
    if (state.category) { q.set("category", state.category); }
    if (state.model) { q.set("model", state.model); }
    if (state.flagged) { q.set("flagged", "1"); }
    var mine = ++seq;
    status.textContent = "loading\u2026";
    fetch("api/prefixes?" + q.toString(), { headers: { Accept: "application/json" } })
      .then(function (resp) {
        if (!resp.ok) { throw new Error("HTTP " + resp.status); }
        return resp.json();
      })
      .then(function (page) {
        if (mine !== seq) { return; }
        merge(page.messages);
        var pages = Math.max(1, Math.ceil(page.total / state.size));
        if (state.page >= pages && page.total > 0) { state.page = pages - 1; fetchPage(); return; }
        draw(page.items, page.total);
      })
      .catch(function (e) { status.textContent = "could not load: " + e.message; });
  }

  function update() {
    if (data.mode === "api") { fetchPage(); return; }
    var matching = data.items.filter(matches);
    var pages = Math.max(1, Math.ceil(matching.length / state.size));
    state.page = Math.max(0, Math.min(state.page, pages - 1));
    draw(matching.slice(state.page * state.size, (state.page + 1) * state.size),
      matching.length);
  }

  merge(data.messages);
  update();
})();
"""
