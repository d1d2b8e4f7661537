"""The episode report's page: template, CSS and script (no external resources, no framework).

The script reads the JSON document of `report.gather` from the page and builds everything
with DOM calls; text from the log goes in as text nodes only (never innerHTML).
"""

from __future__ import annotations

TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'sha256-__SCRIPT_HASH__'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>__TITLE__</title>
<style>__CSS__</style>
</head>
<body>
<header id="head"></header>
<section class="top">
  <div class="card" id="plotcard"><h2>Progression over the episode</h2><div id="legend"></div><div id="plot"></div><div id="readout">&nbsp;</div></div>
  <div class="card" id="auditcard"><h2>Audit</h2><div id="audit"></div></div>
</section>
<main>
  <nav class="card col" id="timeline-card"><h2>Timeline <span class="hint">click a step · j/k or ↑/↓</span></h2><div id="timeline" tabindex="0"></div></nav>
  <section class="card col" id="step"></section>
  <section class="card col" id="memory"></section>
</main>
<noscript><p class="noscript">This report needs JavaScript to display the episode (its data is embedded in the page).</p></noscript>
<script type="application/json" id="data">__DATA__</script>
<script>__JS__</script>
</body>
</html>
"""

CSS = """
:root {
  --bg: #f6f6f4; --fg: #1c1c1e; --muted: #6b6b72; --line: #e3e3df; --card: #fff; --soft: #fafaf8;
  --accent: #2563eb; --sel: #e8effd; --prog: #2563eb; --ret: #c77700;
  --add: #e3f5e8; --addfg: #166534; --del: #fdeaea; --delfg: #b42318;
  --failure: #d92d20; --mistake: #ea7a00; --chain: #7c4dff;
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace;
}
* { box-sizing: border-box; }
html, body { margin: 0; background: var(--bg); color: var(--fg); }
body { font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { padding: 14px 20px 6px; }
h1 { font-size: 18px; font-weight: 600; margin: 0 0 8px; }
h1 .id { font-family: var(--mono); font-size: 16px; }
.chips span { display: inline-block; margin: 0 6px 6px 0; padding: 2px 9px; background: var(--card);
  border: 1px solid var(--line); border-radius: 11px; font-size: 12px; color: var(--muted); }
.chips b { color: var(--fg); font-weight: 600; }
.top { display: grid; grid-template-columns: minmax(0, 3fr) minmax(300px, 2fr); gap: 12px; padding: 0 20px; }
main { display: grid; grid-template-columns: 270px minmax(0, 1fr) minmax(0, 1fr); gap: 12px; padding: 12px 20px 20px;
  height: max(480px, calc(100vh - 40px)); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; min-width: 0; }
.card h2 { font-size: 11.5px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted);
  margin: 0 0 8px; font-weight: 600; }
.card h3 { font-size: 12.5px; margin: 14px 0 6px; font-weight: 600; }
.hint { text-transform: none; letter-spacing: 0; font-weight: 400; float: right; }
.col { overflow: auto; display: flex; flex-direction: column; }
#timeline-card { padding: 10px 0 0; }
#timeline-card h2 { padding: 0 12px; }
#timeline { overflow-y: auto; flex: 1; outline: none; border-top: 1px solid var(--line); }
.row { display: grid; grid-template-columns: 38px minmax(0, 1fr) auto; gap: 6px; align-items: center;
  padding: 3px 10px 3px 9px; border-left: 3px solid transparent; border-bottom: 1px solid #f1f1ee; cursor: pointer; }
.row:hover { background: #f3f3f0; }
.row.sel { background: var(--sel); border-left-color: var(--accent); }
.row .n { color: var(--muted); font-family: var(--mono); font-size: 11.5px; text-align: right; }
.row .a { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.row .a.invalid { color: var(--delfg); font-style: italic; }
.row .b { display: flex; gap: 4px; align-items: center; font-size: 11px; color: var(--muted); white-space: nowrap; }
.rw { font-family: var(--mono); font-size: 11px; padding: 0 4px; border-radius: 4px; }
.rw.pos { color: var(--addfg); background: var(--add); } .rw.neg { color: var(--delfg); background: var(--del); }
.tag { display: inline-block; padding: 0 5px; border-radius: 4px; background: #f0f0ec; color: var(--muted); font-size: 11px; }
.tag.w { background: #eef2ff; color: #3b4fc4; }
.tag.star { background: #fff4d6; color: #8a5a00; }
.tag.bad { background: var(--del); color: var(--delfg); }
.mark { width: 9px; height: 9px; border-radius: 50%; display: inline-block; }
.mark.failure { background: var(--failure); } .mark.mistake { background: var(--mistake); }
.mark.chain { background: var(--chain); }
#legend { display: flex; flex-wrap: wrap; gap: 14px; font-size: 12px; color: var(--muted); margin-bottom: 2px; }
#legend i { display: inline-block; width: 14px; height: 3px; vertical-align: middle; margin-right: 5px; border-radius: 2px; }
#plot svg { display: block; width: 100%; cursor: crosshair; }
#plot text { font: 10.5px system-ui, sans-serif; }
#plot text:not([fill]) { fill: var(--muted); }
#readout { font-size: 12px; color: var(--muted); min-height: 18px; font-family: var(--mono); }
#auditcard { max-height: 360px; overflow: auto; }
#audit .none { color: var(--muted); }
.audit-line { margin: 0 0 6px; }
.audit-line .lbl { font-weight: 600; }
ol.chain { margin: 4px 0 0; padding-left: 22px; }
ol.chain li { margin: 2px 0; }
a.link { color: var(--accent); text-decoration: none; cursor: pointer; }
a.link:hover { text-decoration: underline; }
.kind { display: inline-block; min-width: 58px; font-size: 11px; padding: 0 5px; border-radius: 4px; text-align: center;
  color: #fff; background: var(--chain); margin-right: 4px; }
.kind.failure { background: var(--failure); } .kind.write { background: var(--mistake); }
.kind.read { background: #0e9384; } .kind.decision { background: #475467; }
.stephead { display: flex; align-items: baseline; gap: 10px; flex-wrap: wrap; margin-bottom: 6px; }
.stephead .big { font-size: 17px; font-weight: 600; }
.stephead .act { font-size: 15px; }
.callout { border-left: 3px solid var(--chain); background: #f5f1ff; padding: 5px 9px; margin: 6px 0; border-radius: 0 6px 6px 0; }
.callout.failure { border-color: var(--failure); background: #fff1f0; }
.callout.mistake { border-color: var(--mistake); background: #fff6eb; }
dl.facts { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 1px 10px; margin: 4px 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
pre { font: 12px/1.42 var(--mono); white-space: pre-wrap; overflow-wrap: anywhere; margin: 4px 0 8px;
  background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; max-height: 320px; overflow: auto; }
details > summary { cursor: pointer; color: var(--muted); font-size: 12px; }
.call { margin: 6px 0 10px; }
.callhead { font-size: 11.5px; color: var(--muted); }
.callhead b { color: var(--fg); text-transform: uppercase; font-size: 11px; }
.err { color: var(--delfg); }
table.ops { border-collapse: collapse; width: 100%; font-size: 12px; }
table.ops td, table.ops th { text-align: left; padding: 3px 6px; border-bottom: 1px solid #f0f0ec; vertical-align: top; }
table.ops th { color: var(--muted); font-weight: 500; }
table.ops td.args { font-family: var(--mono); font-size: 11.5px; overflow-wrap: anywhere; white-space: pre-wrap; }
table.ops tr.w td.k { font-weight: 600; color: #3b4fc4; }
table.ops tr.failed td { color: var(--delfg); } table.ops tr.failed td.k { text-decoration: line-through; }
.memtools { font-size: 12px; color: var(--muted); margin: -2px 0 8px; display: flex; gap: 14px; align-items: center; }
.file { border: 1px solid var(--line); border-radius: 6px; margin: 0 0 10px; }
.file.changed, .file.new { border-color: #9ad2ab; } .file.deleted { border-color: #f0a8a2; }
.file.flash { box-shadow: 0 0 0 3px var(--chain); }
.filehead { display: flex; gap: 8px; align-items: baseline; padding: 5px 8px; background: var(--soft);
  border-bottom: 1px solid var(--line); border-radius: 6px 6px 0 0; flex-wrap: wrap; }
.filehead .name { font-family: var(--mono); font-weight: 600; }
.filehead .st { font-size: 11px; padding: 0 5px; border-radius: 4px; background: #f0f0ec; color: var(--muted); }
.file.changed .st, .file.new .st { background: var(--add); color: var(--addfg); }
.file.deleted .st { background: var(--del); color: var(--delfg); }
.filehead .meta { font-size: 11px; color: var(--muted); margin-left: auto; }
.lines { position: relative; font: 12px/1.42 var(--mono); max-height: 360px; overflow: auto; padding: 3px 0; }
.ln { display: grid; grid-template-columns: 36px 14px minmax(0, 1fr); white-space: pre-wrap; overflow-wrap: anywhere; }
.ln .no { color: #a0a0a6; text-align: right; padding-right: 6px; user-select: none; }
.ln .sg { color: var(--muted); user-select: none; }
.ln.add { background: var(--add); } .ln.add .sg { color: var(--addfg); }
.ln.del { background: var(--del); color: var(--delfg); text-decoration: line-through; text-decoration-color: #e9a8a2; }
.empty { color: var(--muted); font-style: italic; padding: 2px 8px; }
.noscript { padding: 20px; }
@media (max-width: 1100px) {
  .top { grid-template-columns: 1fr; }
  main { grid-template-columns: 220px minmax(0, 1fr); height: auto; }
  #memory { grid-column: 1 / -1; }
  .col { max-height: 80vh; }
}
"""

JS = r"""
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("data").textContent);
  const S = D.steps, E = D.episode, A = D.audit;
  const $ = (id) => document.getElementById(id);
  const SVGNS = "http://www.w3.org/2000/svg";

  function el(tag, attrs, ...kids) {
    const n = document.createElement(tag);
    for (const k in attrs || {}) {
      const v = attrs[k];
      if (v == null || v === false) continue;
      if (k === "class") n.className = v;
      else if (typeof v === "function") n.addEventListener(k.slice(2), v);
      else n.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of kids.flat(Infinity)) if (c != null && c !== false) n.append(c instanceof Node ? c : String(c));
    return n;
  }
  function sv(tag, attrs, text) {
    const n = document.createElementNS(SVGNS, tag);
    for (const k in attrs) n.setAttribute(k, String(attrs[k]));
    if (text != null) n.textContent = String(text);
    return n;
  }
  const num = (x) => (Math.round(x * 1000) / 1000).toString();
  const pct = (x) => (100 * x).toFixed(x > 0 && x < 0.1 ? 2 : 1) + "%";
  const signed = (x) => (x > 0 ? "+" : "") + num(x);

  // ---------------------------------------------------------------- audit marks
  const marks = new Map(); // step -> [{cls, text}]
  function mark(step, cls, text) {
    if (step == null || step < 0) return;
    if (!marks.has(step)) marks.set(step, []);
    marks.get(step).push({ cls, text });
  }
  if (A) {
    if (A.failure) mark(A.failure.step, "failure", "failure (" + A.failure.rule + "): " + A.failure.detail);
    if (A.first_mistake) {
      const m = A.first_mistake;
      mark(m.step, "mistake", "first mistake (" + m.kind + "): " + m.op + " " + m.file + " — " + m.evidence);
    }
    for (const l of A.chain || []) mark(l.step, "chain", "chain · " + l.kind + (l.file ? " " + l.file : "") + ": " + l.detail);
  }

  // ---------------------------------------------------------------- memory
  const FILES = Object.keys(D.files).sort();
  function contentAt(name, step) { // undefined: the file did not exist after that step
    let c;
    for (const [s, e] of D.files[name]) {
      if (s > step) break;
      if (e === null) c = undefined;
      else { const o = c || ""; c = o.slice(0, e[0]) + e[2] + o.slice(o.length - e[1]); }
    }
    return c;
  }
  function lines(t) {
    if (!t) return [];
    const a = t.split("\n");
    if (a[a.length - 1] === "") a.pop();
    return a;
  }
  function lineDiff(a, b) { // [[sign, text, newLineNo|null]]
    let p = 0;
    while (p < a.length && p < b.length && a[p] === b[p]) p++;
    let s = 0;
    while (s < a.length - p && s < b.length - p && a[a.length - 1 - s] === b[b.length - 1 - s]) s++;
    const X = a.slice(p, a.length - s), Y = b.slice(p, b.length - s);
    const out = [];
    for (let i = 0; i < p; i++) out.push([" ", b[i], i + 1]);
    if (X.length && Y.length && X.length * Y.length <= 2e6) { // LCS on the changed middle
      const n = X.length, m = Y.length, L = new Int32Array((n + 1) * (m + 1));
      for (let i = n - 1; i >= 0; i--)
        for (let j = m - 1; j >= 0; j--)
          L[i * (m + 1) + j] = X[i] === Y[j] ? L[(i + 1) * (m + 1) + j + 1] + 1
            : Math.max(L[(i + 1) * (m + 1) + j], L[i * (m + 1) + j + 1]);
      let i = 0, j = 0;
      while (i < n || j < m) {
        if (i < n && j < m && X[i] === Y[j]) { out.push([" ", Y[j], p + j + 1]); i++; j++; }
        else if (i < n && (j === m || L[(i + 1) * (m + 1) + j] >= L[i * (m + 1) + j + 1])) { out.push(["-", X[i], null]); i++; }
        else { out.push(["+", Y[j], p + j + 1]); j++; }
      }
    } else {
      for (const x of X) out.push(["-", x, null]);
      Y.forEach((y, j) => out.push(["+", y, p + j + 1]));
    }
    for (let i = b.length - s; i < b.length; i++) out.push([" ", b[i], i + 1]);
    return out;
  }
  const bytes = (t) => new TextEncoder().encode(t).length;

  // ---------------------------------------------------------------- header
  function header() {
    const chip = (k, v) => el("span", null, k + " ", el("b", null, v));
    const models = Object.entries(E.models || {}).map(([r, m]) => r + ": " + m).join(", ");
    const kids = [
      chip("env", (E.env || "?") + (E.task ? " / " + E.task : "")),
      chip("seed", E.seed),
      chip("steps", S.length + (E.max_steps ? " of " + E.max_steps : "")),
      chip("return", E.return != null ? num(E.return) : num(S.length ? S[S.length - 1].ret : 0)),
    ];
    if (E.progression != null) kids.push(chip("progression", pct(E.progression)));
    if (E.memory_ops != null) kids.push(chip("memory ops", E.memory_ops));
    kids.push(chip("status", E.status + (E.cause ? " (" + E.cause + ")" : "")));
    kids.push(chip("structure", E.structure || "?"));
    if (models) kids.push(chip("models", models));
    if (E.parent) kids.push(chip("forked from", E.parent + " @ step " + E.fork_step));
    $("head").append(el("h1", null, "Episode ", el("span", { class: "id" }, E.id || "?")), el("div", { class: "chips" }, kids));
  }

  // ---------------------------------------------------------------- plot
  const PLOT = { L: 46, R: 54, T: 10, B: 24, H: 190 };
  let plotX = null, cursor = null;
  function niceMax(v, steps) { // the smallest "round" number >= v
    if (!(v > 0)) return 1;
    const e = Math.pow(10, Math.floor(Math.log10(v))), f = v / e;
    return (steps || [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]).find((k) => f <= k + 1e-9) * e;
  }
  function plot() {
    const box = $("plot");
    box.textContent = "";
    const n = S.length;
    if (!n) { box.append(el("div", { class: "empty" }, "no steps recorded")); return; }
    const { L, R, T, B } = PLOT, W = Math.max(360, box.clientWidth || 800);
    const side = $("auditcard"), card = $("plotcard");
    const chrome = [...card.children].filter((c) => c !== box).reduce((h, c) => h + c.offsetHeight, 0) + 30;
    const H = side.offsetLeft > card.offsetLeft // beside the audit: as tall as the row allows
      ? Math.max(PLOT.H, Math.min(300, side.offsetHeight - chrome)) : PLOT.H;
    const hasProg = S.some((s) => s.prog != null);
    const x = (i) => L + (n === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (n - 1));
    plotX = (px) => (n === 1 ? 0 : Math.round(((px - L) * (n - 1)) / (W - L - R)));
    const pMax = hasProg ? Math.min(1, niceMax(Math.max(0.05, ...S.map((s) => s.prog || 0)) * 1.1, [1, 2, 2.5, 5, 10])) : 1;
    const yp = (v) => T + (H - T - B) * (1 - v / pMax);
    const rets = S.map((s) => s.ret);
    let rMin = Math.min(0, ...rets), rMax = Math.max(0, ...rets);
    if (rMin < 0) rMin = -niceMax(-rMin * 1.05);
    rMax = rMax > 0 ? niceMax(rMax * 1.05) : rMin < 0 ? 0 : 1;
    const yr = (v) => T + (H - T - B) * (1 - (v - rMin) / (rMax - rMin));
    const svg = sv("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img",
      "aria-label": "progression and cumulative reward over the steps" });
    for (let k = 0; k <= 4; k++) { // grid + left axis (progression)
      const v = (pMax * k) / 4, y = yp(v);
      svg.append(sv("line", { x1: L, x2: W - R, y1: y, y2: y, stroke: k ? "#eeeeea" : "#cfcfca" }));
      if (hasProg) svg.append(sv("text", { x: L - 6, y: y + 3.5, "text-anchor": "end", fill: "#2563eb" }, pct(v)));
    }
    for (let k = 0; k <= 4; k++) { // right axis (cumulative reward)
      const v = rMin + ((rMax - rMin) * k) / 4;
      svg.append(sv("text", { x: W - R + 6, y: yr(v) + 3.5, fill: "#c77700" }, num(v)));
    }
    const every = Math.max(1, niceMax((n - 1) / 8, [1, 2, 5, 10]));
    for (let i = 0; i < n; i += every) { // x axis: steps
      svg.append(sv("line", { x1: x(i), x2: x(i), y1: H - B, y2: H - B + 4, stroke: "#bdbdb8" }));
      svg.append(sv("text", { x: x(i), y: H - B + 15, "text-anchor": "middle" }, i));
    }
    svg.append(sv("text", { x: W - R + 8, y: H - B + 15 }, "step"));
    for (const [step, ms] of marks) { // audit: failure and first mistake as vertical rules, chain as ticks
      for (const m of ms) {
        if (m.cls === "chain") svg.append(sv("line", { x1: x(step), x2: x(step), y1: H - B - 7, y2: H - B, stroke: "#7c4dff", "stroke-width": 3 }));
        else svg.append(sv("line", { x1: x(step), x2: x(step), y1: T, y2: H - B, stroke: m.cls === "failure" ? "#d92d20" : "#ea7a00",
          "stroke-width": 1.6, "stroke-dasharray": "4 3" }));
      }
    }
    let d = "M" + x(0) + " " + yr(S[0].ret);
    for (let i = 1; i < n; i++) d += "L" + x(i) + " " + yr(S[i].ret);
    svg.append(sv("path", { d, fill: "none", stroke: "#c77700", "stroke-width": 1.5, "stroke-linejoin": "round" }));
    if (hasProg) {
      let p = "M" + x(0) + " " + yp(S[0].prog || 0);
      for (let i = 1; i < n; i++) p += "H" + x(i) + "V" + yp(S[i].prog || 0);
      svg.append(sv("path", { d: p, fill: "none", stroke: "#2563eb", "stroke-width": 2.2 }));
    }
    S.forEach((s, i) => { // achievements (and other good outcomes) as dots on the progression line
      const good = s.outcomes.filter((o) => o.kind === "achievement" || (o.kind === "level" && o.value > 0));
      if (!good.length) return;
      const c = sv("circle", { cx: x(i), cy: hasProg ? yp(s.prog || 0) : yr(s.ret), r: 4, fill: "#fff", stroke: "#2563eb", "stroke-width": 2 });
      c.append(sv("title", {}, "step " + i + ": " + good.map((o) => o.detail).join(", ")));
      svg.append(c);
    });
    cursor = sv("line", { x1: 0, x2: 0, y1: T, y2: H - B, stroke: "#1c1c1e", "stroke-width": 1, opacity: 0.55 });
    svg.append(cursor);
    const at = (ev) => {
      const r = svg.getBoundingClientRect();
      return Math.max(0, Math.min(n - 1, plotX(((ev.clientX - r.left) * W) / r.width)));
    };
    svg.addEventListener("click", (ev) => select(at(ev)));
    svg.addEventListener("mousemove", (ev) => readout(at(ev)));
    svg.addEventListener("mouseleave", () => readout(current));
    box.append(svg);
    if (current >= 0) moveCursor(current);
  }
  function moveCursor(i) {
    if (!cursor || !S.length) return;
    const { L, R } = PLOT, W = Number(cursor.ownerSVGElement.getAttribute("width"));
    const xx = L + (S.length === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (S.length - 1));
    cursor.setAttribute("x1", xx); cursor.setAttribute("x2", xx);
  }
  function readout(i) {
    const s = S[i];
    if (!s) return;
    $("readout").textContent = "step " + i + " · " + (s.action || "(no action)") + " · reward " + num(s.reward) +
      " · return " + num(s.ret) + (s.prog != null ? " · progression " + pct(s.prog) : "");
  }
  function legend() {
    const item = (color, text) => el("span", null, el("i", { style: "background:" + color }), text);
    const kids = [];
    if (D.progression) kids.push(item("#2563eb", "progression: " + D.progression));
    kids.push(item("#c77700", "cumulative reward"));
    const has = (cls) => [...marks.values()].some((ms) => ms.some((m) => m.cls === cls));
    if (has("failure")) kids.push(item("#d92d20", "failure"));
    if (has("mistake")) kids.push(item("#ea7a00", "first mistake"));
    if (has("chain")) kids.push(item("#7c4dff", "evidence chain"));
    $("legend").append(...kids);
  }

  // ---------------------------------------------------------------- audit
  function stepLink(step, text, file) {
    return el("a", { class: "link", href: "#step-" + step, onclick: (ev) => { ev.preventDefault(); select(step, file); } }, text);
  }
  function audit() {
    const box = $("audit");
    if (!A) { box.append(el("div", { class: "none" }, D.audit_note || "audit not run")); return; }
    const line = (lbl, ...kids) => el("div", { class: "audit-line" }, el("span", { class: "lbl" }, lbl + " "), kids);
    if (A.failure) box.append(line("Failure:", stepLink(A.failure.step, "step " + A.failure.step), " · " + A.failure.rule + " — " + A.failure.detail));
    else box.append(line("Failure:", "none found"));
    const m = A.first_mistake;
    if (m) box.append(line("First mistake:", stepLink(m.step, "step " + m.step, m.file), " · " + m.phase + "/" + m.turn + " " +
      m.op.toUpperCase() + " " + m.file + " — " + m.kind + ": " + m.evidence, el("pre", null, m.content)));
    else box.append(line("First mistake:", "none found"));
    if (A.reason) box.append(line("Reason:", A.reason));
    if ((A.chain || []).length) {
      box.append(el("div", { class: "lbl" }, "Evidence chain"));
      box.append(el("ol", { class: "chain" }, A.chain.map((l) => el("li", null,
        el("span", { class: "kind " + l.kind }, l.kind), stepLink(l.step, "step " + l.step, l.file || null),
        " · " + l.phase + "/" + l.turn + (l.file ? " · " + l.file + (l.version ? "@" + l.version.slice(0, 8) : "") : "") + " — " + l.detail))));
    }
    const c = A.counterfactual;
    if (c) box.append(line("Counterfactual:", "fork " + c.episode + " at step " + c.fork_step + ", " + c.steps + "/" + c.horizon +
      " steps: failure " + (c.failure_recurs === null ? "undetermined" : c.failure_recurs ? "recurs" : "does not recur") +
      " — " + c.detail));
  }

  // ---------------------------------------------------------------- timeline
  const rows = [];
  function timeline() {
    const box = $("timeline");
    const frag = document.createDocumentFragment();
    S.forEach((s, i) => {
      const writes = s.ops.filter((o) => o.write && o.ok).length;
      const badges = [];
      if (s.reward) badges.push(el("span", { class: "rw " + (s.reward > 0 ? "pos" : "neg") }, signed(s.reward)));
      for (const o of s.outcomes) {
        if (o.kind === "achievement") badges.push(el("span", { class: "tag star", title: o.detail }, "★"));
        else if (o.kind === "death") badges.push(el("span", { class: "tag bad", title: o.detail }, "✝"));
      }
      if (writes) badges.push(el("span", { class: "tag w", title: writes + " memory write(s)" }, "✎" + writes));
      if (s.score != null) badges.push(el("span", { class: "rw " + (s.score > 0 ? "pos" : s.score < 0 ? "neg" : ""),
        title: "memory decisions' rule score, summed (" + D.scorer + ")" }, "σ" + signed(s.score)));
      const ms = marks.get(i) || [];
      for (const cls of ["mistake", "failure", "chain"]) {
        const these = ms.filter((m) => m.cls === cls);
        if (these.length) badges.push(el("span", { class: "mark " + cls, title: these.map((m) => m.text).join("\n") }));
      }
      const act = s.taken ? s.action : "(not taken)";
      const row = el("div", { class: "row", "data-step": i, title: s.raw && s.raw !== s.action ? "raw: " + s.raw : null,
        onclick: () => select(i) },
        el("span", { class: "n" }, i), el("span", { class: "a" + (s.valid && s.taken ? "" : " invalid") }, act), el("span", { class: "b" }, badges));
      rows.push(row);
      frag.append(row);
    });
    box.append(frag);
    box.addEventListener("keydown", (ev) => { // arrows while the timeline has the focus
      const to = { ArrowDown: current + 1, ArrowUp: current - 1, Home: 0, End: S.length - 1 }[ev.key];
      if (to != null) { ev.preventDefault(); ev.stopPropagation(); select(to); }
    });
    document.addEventListener("keydown", (ev) => { // j/k anywhere but in a form field
      if (ev.ctrlKey || ev.metaKey || ev.altKey || /^(INPUT|TEXTAREA|SELECT)$/.test(ev.target.tagName)) return;
      if (ev.key === "j") select(current + 1);
      else if (ev.key === "k") select(current - 1);
    });
  }

  // ---------------------------------------------------------------- step detail
  function stepPane(i) {
    const s = S[i], box = $("step");
    box.textContent = "";
    box.append(el("h2", null, "Step"));
    box.append(el("div", { class: "stephead" }, el("span", { class: "big" }, "Step " + i),
      el("span", { class: "act" + (s.valid ? "" : " err") }, s.taken ? s.action : "(no step taken)"),
      s.raw && s.raw !== s.action ? el("span", { class: "tag", title: "what the model asked for" }, "raw: " + s.raw) : null,
      s.valid ? null : el("span", { class: "tag bad" }, "invalid action"),
      el("span", { class: "rw " + (s.reward > 0 ? "pos" : s.reward < 0 ? "neg" : "") }, "reward " + signed(s.reward)),
      el("span", { class: "tag" }, "return " + num(s.ret)),
      s.prog != null ? el("span", { class: "tag" }, "progression " + pct(s.prog)) : null,
      s.done ? el("span", { class: "tag bad" }, "episode done") : null));
    for (const m of marks.get(i) || []) box.append(el("div", { class: "callout " + m.cls }, m.text));
    for (const o of s.outcomes) box.append(el("div", null, el("span", { class: "tag " + (o.kind === "achievement" ? "star" : "") }, o.kind), " " + o.detail));
    const f = s.facts || {}, dl = el("dl", { class: "facts" });
    const put = (k, v) => { if (v != null && v !== "" && !(Array.isArray(v) && !v.length)) dl.append(el("dt", null, k), el("dd", null, v)); };
    if (f.position) put("position", f.position.join(", "));
    put("health", f.health);
    put("depth", f.depth); put("level", f.level); put("facing", f.facing);
    put("inventory", Object.entries(f.inventory || {}).map(([k, v]) => k + " " + v).join(", "));
    put("achievements", (f.achievements || []).join(", "));
    for (const [k, v] of Object.entries(f.extra || {})) put(k, v);
    const known = ["position", "health", "depth", "level", "facing", "inventory", "achievements", "extra", "view"];
    for (const [k, v] of Object.entries(f)) if (!known.includes(k)) put(k, typeof v === "object" ? JSON.stringify(v) : v);
    if (dl.childNodes.length) box.append(el("h3", null, "Facts after the step"), dl);
    if (Array.isArray(f.view) && f.view.length) box.append(el("details", null, el("summary", null, "Terrain in view (facts)"), el("pre", null, f.view.join("\n"))));
    if (s.obs) box.append(el("details", { open: true }, el("summary", null, "Observation after the step"), el("pre", null, s.obs)));
    box.append(el("h3", null, "Model calls (" + s.calls.length + ")"));
    if (!s.calls.length) box.append(el("div", { class: "empty" }, "none"));
    for (const c of s.calls) {
      const tk = c.tokens && (c.tokens[0] || c.tokens[1]) ? " · " + c.tokens[0] + "→" + c.tokens[1] + " tokens" : "";
      box.append(el("div", { class: "call" },
        el("div", { class: "callhead" }, el("b", null, c.phase), " turn " + c.turn + " · " + c.role + " · " + c.model + tk + (c.ms ? " · " + c.ms + " ms" : ""),
          c.score != null ? el("span", { class: "rw " + (c.score > 0 ? "pos" : c.score < 0 ? "neg" : ""), title: "rule score (" + D.scorer + ")" }, " score " + signed(c.score)) : null),
        el("pre", null, c.response), c.error ? el("div", { class: "err" }, "error: " + c.error) : null));
    }
    box.append(el("h3", null, "Memory operations (" + s.ops.length + ")"));
    if (!s.ops.length) box.append(el("div", { class: "empty" }, "none"));
    else box.append(el("table", { class: "ops" }, el("tr", null, el("th", null, "phase"), el("th", null, "op"), el("th", null, "file"), el("th", null, "arguments"), el("th", null, "score"), el("th", null, "")),
      s.ops.map((o) => el("tr", { class: (o.write ? "w" : "") + (o.ok ? "" : " failed") },
        el("td", null, o.phase + "/" + o.turn), el("td", { class: "k" }, o.kind.toUpperCase()), el("td", null, o.file),
        el("td", { class: "args" }, o.args.join(" | ")), el("td", null, o.score != null ? signed(o.score) : ""),
        el("td", null, o.ok ? "" : "failed")))));
    const probes = s.probes || [];
    if (probes.length) box.append(el("h3", null, "Memory probes (" + probes.length + ")"));
    for (const p of probes) {
      const verdict = p.error ? "failed: " + p.error : p.correct ? "right" : "wrong";
      box.append(el("div", { class: "call" },
        el("div", { class: "callhead" }, el("b", null, p.arm), " · " + p.reader + " · " + p.kind + " · about step " + p.about,
          el("span", { class: "rw " + (p.error ? "neg" : p.correct ? "pos" : "neg") }, " " + verdict)),
        el("div", null, p.question),
        p.lookups.length ? el("pre", null, p.lookups.join("\n")) : null,
        el("div", null, "answer: " + p.answer + " · key: " + p.key)));
    }
  }

  // ---------------------------------------------------------------- memory pane
  let changedOnly = false, flashFile = null;
  function memoryPane(i) {
    const box = $("memory"), s = S[i];
    box.textContent = "";
    box.append(el("h2", null, "Memory after step " + i));
    const toggle = el("input", { type: "checkbox", id: "changed-only", onchange: (ev) => { changedOnly = ev.target.checked; memoryPane(i); } });
    toggle.checked = changedOnly;
    const nChanged = s.changed.length;
    box.append(el("div", { class: "memtools" }, el("span", null, nChanged ? nChanged + " file(s) changed in this step" : "no change in this step"),
      el("label", null, toggle, " changed files only")));
    const opsBy = {};
    for (const o of s.ops) if (o.write && o.ok) (opsBy[o.file] = opsBy[o.file] || []).push(o.kind.toUpperCase());
    let shown = 0;
    for (const name of FILES) {
      const now = contentAt(name, i), before = contentAt(name, i - 1);
      if (now === undefined && before === undefined) continue;
      const st = now === undefined ? "deleted" : before === undefined ? "new" : now !== before ? "changed" : "unchanged";
      if (changedOnly && st === "unchanged") continue;
      const body = el("div", { class: "lines" });
      const rowsOf = st === "unchanged" ? lines(now).map((t, k) => [" ", t, k + 1])
        : st === "new" ? lines(now).map((t, k) => ["+", t, k + 1])
        : st === "deleted" ? lines(before).map((t) => ["-", t, null]) : lineDiff(lines(before), lines(now));
      for (const [sg, t, no] of rowsOf)
        body.append(el("div", { class: "ln" + (sg === "+" ? " add" : sg === "-" ? " del" : "") },
          el("span", { class: "no" }, no == null ? "" : no), el("span", { class: "sg" }, sg === " " ? "" : sg), el("span", null, t)));
      if (!rowsOf.length) body.append(el("div", { class: "empty" }, "(empty file)"));
      const nl = now === undefined ? 0 : lines(now).length;
      const meta = now === undefined ? "" : nl + (nl === 1 ? " line · " : " lines · ") + bytes(now) + " bytes";
      const card = el("div", { class: "file " + st, "data-file": name },
        el("div", { class: "filehead" }, el("span", { class: "name" }, name), el("span", { class: "st" }, st),
          opsBy[name] ? el("span", { class: "tag w" }, "by " + opsBy[name].join(", ")) : null, el("span", { class: "meta" }, meta)), body);
      box.append(card);
      shown++;
      if (st === "changed") { // bring the first change into view inside the file
        const first = body.querySelector(".add, .del");
        if (first) requestAnimationFrame(() => { body.scrollTop = Math.max(0, first.offsetTop - 40); });
      }
      if (flashFile === name) {
        card.classList.add("flash");
        requestAnimationFrame(() => scrollWithin(box, card));
      }
    }
    if (!shown) box.append(el("div", { class: "empty" }, changedOnly ? "no file changed in this step" : "no memory files"));
  }

  // ---------------------------------------------------------------- selection
  let current = -1;
  function scrollWithin(box, child) { // only that pane scrolls, never the page; an item out of view comes to its upper third
    const b = box.getBoundingClientRect(), r = child.getBoundingClientRect();
    if (r.top < b.top || r.bottom > b.bottom) box.scrollTop += r.top - b.top - Math.max(4, b.height / 3 - r.height);
  }
  function select(i, file) {
    if (!S.length) return;
    i = Math.max(0, Math.min(S.length - 1, i | 0));
    if (rows[current]) rows[current].classList.remove("sel");
    current = i;
    flashFile = file || null;
    rows[i].classList.add("sel");
    scrollWithin($("timeline"), rows[i]);
    stepPane(i);
    memoryPane(i);
    moveCursor(i);
    readout(i);
    try { history.replaceState(null, "", "#step-" + i); } catch (e) { /* some file:// contexts refuse it */ }
  }

  header();
  legend();
  audit();
  timeline();
  plot();
  let resizeTimer = 0;
  window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(plot, 120); });
  const fromHash = /^#step-(\d+)$/.exec(location.hash);
  const start = fromHash ? Number(fromHash[1])
    : A && A.first_mistake ? A.first_mistake.step : A && A.failure ? A.failure.step : 0;
  if (S.length) select(start);
  else { $("step").append(el("div", { class: "empty" }, "no steps recorded")); }
  document.body.dataset.ready = "1";
})();
"""
