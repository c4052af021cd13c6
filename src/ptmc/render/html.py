"""A counterexample (or a witness trace) as one self-contained HTML page to step through.

One lane per thread, the steps in order down the page, as the kernel docs draw races; the
keyboard (arrows, Home, End) and the buttons select a step, and the panel beside the lanes
shows the whole state after it with what it changed highlighted, the kernel function linked to
its source, and at the end why the property is violated. Nothing is fetched: the CSS, the
script and the data are inline, so the file works offline and on a projector.

Everything shown comes from the Result (``TraceStep.state`` is the state after each step, as
displayed); the page never explores. A step's ``context`` lines (kernel context: locks held,
RCU readers, table states) are shown when the trace carries them.
"""
from __future__ import annotations

import html
import json
import re
from urllib.parse import quote

from ..result import Result, TraceStep
from . import shown_path
from .text import active_threads, headline, step_lines

# A kernel source file; {file} and {function} are replaced (a URL without {file} gets /{file}).
DEFAULT_SOURCE_URL = "https://elixir.bootlin.com/linux/latest/source/{file}"
_ELIXIR = re.compile(r"^(https?://elixir\.bootlin\.com/[^/]+/[^/]+)/source/\{file\}$")


def source_links(template: str, kernel_function: str) -> tuple[str, str]:
    """The URLs of a step's source file and of its function: with ``{function}`` in the
    template both are that URL (e.g. an OpenGrok anchor); on Elixir the function is its
    identifier search (where it is defined and used); elsewhere the file."""
    file, _, function = kernel_function.rpartition(":")
    base = template if "{file}" in template else template.rstrip("/") + "/{file}"
    file_url = base.replace("{file}", quote(file)).replace("{function}", quote(function))
    if "{function}" in template:
        return file_url, file_url
    elixir = _ELIXIR.match(base)
    return file_url, (f"{elixir.group(1)}/C/ident/{quote(function)}" if elixir else file_url)


def render(result: Result, trace: list[TraceStep] | None = None, *, title: str = "",
           ending: tuple[str, str] | None = None, source_url: str = DEFAULT_SOURCE_URL) -> str:
    """The page for ``trace`` (default: the counterexample). ``ending`` is (kind, text) of the
    closing explanation: kind "violation" or "witness"; by default the violation's."""
    trace = result.trace if trace is None else trace
    threads = active_threads(result, trace)
    idle = [t for t in result.threads if t not in threads]
    v = result.violation
    if ending is None and v is not None and v.kind == "reachable":  # worded as the text diagram does
        ending = ("violation", f"witness {v.check} not found: {v.message.removeprefix('witness not found: ')}")
    if ending is None:
        ending = ("violation", f"{v.check} violated: {v.message}") if v else ("witness", result.verdict)
    if not title and v is not None:
        what = f"witness {v.check} not found" if v.kind == "reachable" else f"{v.check} violated"
        title = f"{result.property}: {what}"
    title = title or result.property
    heading = title.removeprefix(f"{result.property}: ")  # the line below names the property
    touched = sorted({name for st in trace for name in st.changes})
    steps = []
    for n, st in enumerate(trace, 1):
        file_url, fn_url = source_links(source_url, st.kernel_function)
        steps.append({"n": n, "thread": st.thread, "step": st.step,
                      "kernel_function": st.kernel_function, "file_url": file_url, "function_url": fn_url,
                      "source": f"{shown_path(st.source[0])}:{st.source[1]}" if st.source else "",
                      "changes": {k: list(ba) for k, ba in st.changes.items() if "._" not in k},
                      "state": st.state, "context": st.context,
                      "events": [{"kind": k, "message": m, "checked": k in result.checked_events}
                                 for k, m in st.events]})
    data = {"title": title, "initial": result.initial, "steps": steps, "groups": _groups(result),
            "touched": touched, "ending": {"kind": ending[0], "text": ending[1]}}
    explanation = _explanation(result, ending)
    return _PAGE.format(
        title=_e(title), css=_CSS, script=_SCRIPT, headline=_e(headline(result)),
        verdict_class="bad" if ending[0] == "violation" else "good",
        heading=_e(heading), total=len(trace), grow=f"{min(1.2 + 0.25 * len(threads), 2.4):.2f}",
        lanes=_lanes(result, trace, threads, explanation, source_url),
        idle=_e(", ".join(idle)),
        data=json.dumps(data, separators=(",", ":")).replace("<", "\\u003c"),  # inert in <script>
        verdict=_explanation(result, ending, short=True))


def _lanes(result: Result, trace, threads, explanation: str, source_url: str) -> str:
    """The race diagram: a grid with a column per thread and a row per step."""
    cols = len(threads)
    out = [f'<div class="lanes" style="grid-template-columns: repeat({cols}, minmax(0, 1fr))">']
    for lane, name in enumerate(threads, 1):
        out.append(f'<div class="lane-bg" style="grid-column:{lane}; grid-row: 1 / span {len(trace) + 2}"></div>')
        out.append(f'<div class="lane-head" data-thread="{_e(name)}" style="grid-column:{lane}">{_e(name)}</div>')
    out.append(f'<div class="card start" data-n="0" style="grid-column: 1 / span {cols}; grid-row: 2">'
               '<span class="num">0.</span> initial state</div>')
    for n, st in enumerate(trace, 1):
        lines = step_lines(result, n, st, context=False)
        _, fn_url = source_links(source_url, st.kernel_function)
        fn = st.kernel_function.rpartition(":")[2]
        sub = "" if st.step == fn else f' <span class="sub">[{_e(st.step)}]</span>'
        body = "".join(f'<div class="{_line_class(line)}">{_e(line.strip())}</div>' for line in lines[1:])
        body += "".join(f'<div class="line ctx">{_e(line)}</div>' for line in st.context)
        bad = " bad" if any(k in result.checked_events for k, _ in st.events) else ""
        out.append(f'<div class="card{bad}" id="step-{n}" data-n="{n}" data-thread="{_e(st.thread)}" '
                   f'style="grid-column:{threads.index(st.thread) + 1}; grid-row:{n + 2}">'
                   f'<div class="head"><span class="num">{n}.</span> <a class="fn" href="{_e(fn_url)}" '
                   f'target="_blank" rel="noopener">{_e(fn)}()</a>{sub}</div>{body}</div>')
    out.append(f'<div class="ending" style="grid-column: 1 / span {cols}; grid-row:{len(trace) + 3}">'
               f'{explanation}</div>')
    out.append("</div>")
    return "\n".join(out)


def _line_class(line: str) -> str:
    text = line.strip()
    if text.startswith("!!"):
        return "line event"
    if text.startswith("note:"):
        return "line note"
    if text.startswith("reads "):
        return "line read"
    return "line"


def _explanation(result: Result, ending: tuple[str, str], short: bool = False) -> str:
    """Why the trace matters: the verdict line; in full, also what the check means and the
    property file's own explanation."""
    kind, text = ending
    parts = [f'<div class="verdict {"bad" if kind == "violation" else "good"}">'
             f'{"==&gt; " if kind == "violation" else ""}{_e(text)}</div>']
    if short:
        return parts[0]
    v = result.violation
    if kind == "violation" and v and result.descriptions.get(v.check):
        parts.append(f'<p class="what"><b>{_e(v.check)}</b>: {_e(result.descriptions[v.check])}</p>')
    if kind == "violation" and result.property_doc:
        paragraphs = [" ".join(p.split()) for p in result.property_doc.split("\n\n")]
        parts.append(f'<details class="doc" open><summary>{_e(result.property)}: what the property says'
                     "</summary>" + "".join(f"<p>{_e(p)}</p>" for p in paragraphs if p) + "</details>")
    return "".join(parts)


def _groups(result: Result) -> list[dict]:
    """How the state panel lays out the variables: the shared globals; objects with the same
    fields (the PTE pages, the data pages) as one table, fields down and objects across; then
    each thread with its locals. Bookkeeping (``._``) is left out."""
    names = [n for n in result.initial if "._" not in n]
    threads = result.threads
    owner = {}
    for n in names:
        head = n.split(".", 1)[0]
        if "." in n and head in threads:
            owner[n] = head
    globals_ = [n for n in names if n not in owner and "." not in n]
    objects: dict[str, list[str]] = {}
    for n in names:
        if n not in owner and "." in n:
            obj, field = n.split(".", 1)
            objects.setdefault(obj, []).append(field)
    tables: dict[tuple, list[str]] = {}
    for obj, fields in objects.items():
        tables.setdefault(tuple(fields), []).append(obj)
    groups = [{"kind": "vars", "title": "shared", "vars": globals_}] if globals_ else []
    for fields, objs in tables.items():
        groups.append({"kind": "table", "title": ", ".join(objs), "objects": objs, "fields": list(fields)})
    for t in threads:
        own = [n for n in names if owner.get(n) == t]
        groups.append({"kind": "thread", "title": t, "vars": own})
    return groups


def _e(text) -> str:
    return html.escape(str(text), quote=True)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<header>
  <div class="titles">
    <h1 class="{verdict_class}">{heading}</h1>
    <div class="run">{headline}</div>
  </div>
  <nav>
    <button id="first" title="the initial state (Home)">&#xAB; first</button>
    <button id="prev" title="previous step (&#x2190;)">&#x25C0; back</button>
    <span class="counter">step <b id="stepno">0</b> / <span id="total">{total}</span></span>
    <button id="next" title="next step (&#x2192;)">next &#x25B6;</button>
    <button id="last" title="the last step (End)">last &#xBB;</button>
  </nav>
</header>
<main>
  <section id="diagram" style="flex-grow: {grow}" aria-label="the steps, one lane per thread">
{lanes}
    <div class="idle">{idle}</div>
  </section>
  <aside id="panel" aria-live="polite">
    <div id="where"></div>
    <div id="ending" hidden>{verdict}</div>
    <div id="context"></div>
    <div id="changed"></div>
    <label class="filter"><input type="checkbox" id="only-touched"> only what this trace changes</label>
    <div id="state"></div>
  </aside>
</main>
<script type="application/json" id="trace-data">{data}</script>
<script>{script}</script>
</body>
</html>
"""

_CSS = """
:root { --bg: #fbfbf8; --ink: #1d1d1d; --muted: #666; --lane: #efefe9; --card: #fff;
  --sel: #1f5fbf; --changed: #ffe27a; --bad: #c62828; --badbg: #fde4e4; --good: #2e7d32; --goodbg: #e3f3e4;
  --mono: "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace;
  --sans: "DejaVu Sans", "Liberation Sans", "Helvetica Neue", Arial, sans-serif; }
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; background: var(--bg); color: var(--ink); font: 16px/1.35 var(--sans); }
header { display: flex; align-items: center; gap: 16px; padding: 6px 14px; border-bottom: 2px solid #ddd;
  background: #fff; height: 64px; }
.titles { flex: 1; min-width: 0; }
h1 { font-size: 21px; margin: 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
h1.bad { color: var(--bad); } h1.good { color: var(--good); }
.run { font-size: 13px; color: var(--muted); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
nav { display: flex; align-items: center; gap: 6px; flex: none; }
nav button { font: 600 16px var(--sans); padding: 7px 12px; border: 1px solid #bbb; border-radius: 6px;
  background: #f4f4f4; cursor: pointer; }
nav button:hover { background: #e8eefb; } nav button:disabled { opacity: .4; cursor: default; }
.counter { font-size: 18px; min-width: 7.5em; text-align: center; }
.counter b { font-size: 22px; color: var(--sel); }
main { display: flex; height: calc(100% - 64px); }
#diagram { flex: 1.7 1 0; overflow: auto; padding: 0 10px 40px; scroll-padding: 60px 0 30px; }
#panel { flex: 1 1 0; overflow: auto; border-left: 2px solid #ddd; background: #fff; padding: 10px 14px 40px;
  min-width: 0; }
.lanes { display: grid; column-gap: 10px; row-gap: 6px; align-items: start; }
.lane-bg { background: var(--lane); border-radius: 8px; align-self: stretch; }
.lane-head { grid-row: 1; position: sticky; top: 0; z-index: 2; text-align: center; font: 700 18px var(--mono);
  padding: 8px 0 6px; background: var(--bg); border-bottom: 3px solid #999; }
.lane-head.active { color: var(--sel); border-bottom-color: var(--sel); }
.card { position: relative; z-index: 1; margin: 0 6px; padding: 5px 8px; background: var(--card); border: 2px solid #ccc;
  border-radius: 7px; font: 15px/1.3 var(--mono); cursor: pointer; overflow-wrap: anywhere; }
.card.start { margin: 4px 6px; color: var(--muted); font-family: var(--sans); }
.card .head { font-weight: 700; } .card .num { color: var(--muted); }
.card .sub { font-weight: 400; color: var(--muted); }
.card a.fn { color: inherit; text-decoration: none; border-bottom: 1px dotted #888; }
.card a.fn:hover { color: var(--sel); }
.card .line { padding-left: 1.2em; text-indent: -0.6em; }
.card .read { color: var(--muted); } .card .note { color: #8a6d00; }
.card .event { color: var(--bad); font-weight: 700; }
.card .ctx { color: #2b5797; font-size: 13px; }
.card.bad { border-color: var(--bad); background: var(--badbg); }
.card.future { opacity: .4; }
.card.selected { border-color: var(--sel); box-shadow: 0 0 0 3px var(--sel); opacity: 1; }
.ending { margin: 10px 6px; }
.ending.future { opacity: .35; }
.verdict { font: 700 17px/1.35 var(--mono); padding: 8px 10px; border-radius: 7px; }
.verdict.bad { color: var(--bad); background: var(--badbg); border: 2px solid var(--bad); }
.verdict.good { color: var(--good); background: var(--goodbg); border: 2px solid var(--good); }
p.what { margin: 8px 2px; }
details.doc { margin: 6px 2px; color: #333; font-size: 15px; } details.doc p { margin: 6px 0; }
details.doc summary { cursor: pointer; font-weight: 600; }
.idle { color: var(--muted); font-size: 13px; margin: 4px 6px; }
.idle:not(:empty)::before { content: "threads that take no step: "; }
#where { font-size: 17px; margin-bottom: 6px; }
#where .who { font: 700 18px var(--mono); color: var(--sel); }
#where a { color: var(--sel); white-space: nowrap; } #where .src { font-size: 13px; color: var(--muted); display: block; }
#ending { margin: 6px 0 10px; }
#context:not(:empty) { margin: 6px 0; padding: 6px 8px; background: #eef3fb; border-radius: 6px; font: 15px var(--mono); }
#changed { margin: 6px 0 10px; }
#changed .none { color: var(--muted); }
.chg { font: 15px/1.5 var(--mono); }
.chg .name { font-weight: 700; } .chg .was { color: var(--muted); text-decoration: line-through; }
.chg .now { background: var(--changed); padding: 0 3px; border-radius: 3px; font-weight: 700; }
h2 { font-size: 14px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); margin: 12px 0 4px; }
.filter { font-size: 13px; color: var(--muted); display: block; margin: 8px 0 0; }
.group { margin: 4px 0 8px; }
.group h3 { font: 700 15px var(--mono); margin: 8px 0 3px; }
.group.active h3 { color: var(--sel); }
.vars { display: flex; flex-wrap: wrap; gap: 4px 6px; }
.var { font: 14px var(--mono); border: 1px solid #ddd; border-radius: 5px; padding: 1px 6px; background: #fafafa; }
.var .k { color: var(--muted); }
.var.changed, td.changed { background: var(--changed); border-color: #d4a800; font-weight: 700; }
table.objs { border-collapse: collapse; font: 14px var(--mono); }
table.objs th, table.objs td { border: 1px solid #ddd; padding: 1px 7px; text-align: left; }
table.objs th { background: #f2f2f2; } table.objs td.k { color: var(--muted); }
[hidden] { display: none !important; }
"""

_SCRIPT = r"""
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("trace-data").textContent);
  const steps = data.steps, total = steps.length;
  const $ = (id) => document.getElementById(id);
  const cards = Array.from(document.querySelectorAll(".card"));
  const heads = Array.from(document.querySelectorAll(".lane-head"));
  const touched = new Set(data.touched);
  let current = 0;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function stateAt(n) { return n === 0 ? data.initial : steps[n - 1].state; }

  function renderWhere(n) {
    const w = $("where");
    w.textContent = "";
    if (n === 0) { w.append(el("span", "who", "initial state"), " before any step"); return; }
    const st = steps[n - 1];
    const [file, fn] = [st.kernel_function.slice(0, st.kernel_function.lastIndexOf(":")),
                        st.kernel_function.slice(st.kernel_function.lastIndexOf(":") + 1)];
    const a = el("a", "", file); a.href = st.file_url; a.target = "_blank"; a.rel = "noopener";
    const b = el("a", "", fn + "()"); b.href = st.function_url; b.target = "_blank"; b.rel = "noopener";
    w.append(el("span", "who", st.thread), " runs ", b, " in ", a, st.step === fn ? "" : " [" + st.step + "]");
    if (st.source) w.append(el("span", "src", "model: " + st.source));
  }

  function renderChanged(n) {
    const c = $("changed");
    c.textContent = "";
    c.append(el("h2", "", n === 0 ? "what changed" : "what step " + n + " changed"));
    const changes = n === 0 ? {} : steps[n - 1].changes;
    const names = Object.keys(changes);
    if (!names.length) { c.append(el("div", "none", n === 0 ? "nothing yet" : "nothing (a read or a check)")); }
    for (const name of names) {
      const row = el("div", "chg");
      row.dataset.var = name;
      row.append(el("span", "name", name), " ", el("span", "was", changes[name][0]), " \u2192 ",
                 el("span", "now", changes[name][1]));
      c.append(row);
    }
  }

  function renderContext(n) {
    const c = $("context");
    c.textContent = "";
    const lines = n === 0 ? [] : (steps[n - 1].context || []);
    for (const line of lines) c.append(el("div", "", line));
  }

  function renderState(n) {
    const s = stateAt(n), changes = n === 0 ? {} : steps[n - 1].changes;
    const only = $("only-touched").checked;
    const box = $("state");
    box.textContent = "";
    box.append(el("h2", "", n === 0 ? "the initial state" : "the whole state after step " + n));
    const who = n === 0 ? "" : steps[n - 1].thread;
    for (const g of data.groups) {
      const grp = el("div", "group" + (g.title === who ? " active" : ""));
      grp.dataset.group = g.title;
      if (g.kind === "table") {
        const fields = g.fields.filter((f) => !only || g.objects.some((o) => touched.has(o + "." + f)));
        if (!fields.length) continue;
        const t = el("table", "objs"), hr = el("tr");
        hr.append(el("th", "", ""));
        for (const o of g.objects) hr.append(el("th", "", o));
        t.append(hr);
        for (const f of fields) {
          const tr = el("tr");
          tr.append(el("td", "k", f));
          for (const o of g.objects) tr.append(cell(o + "." + f, s, changes, "td"));
          t.append(tr);
        }
        grp.append(t);
      } else {
        const vars = g.vars.filter((v) => !only || touched.has(v));
        if (!vars.length) continue;
        if (g.kind === "thread") grp.append(el("h3", "", g.title));
        else grp.append(el("h3", "", "shared"));
        const wrap = el("div", "vars");
        for (const v of vars) {
          const label = g.kind === "thread" ? v.slice(g.title.length + 1) : v;
          const chip = cell(v, s, changes, "span", label);
          wrap.append(chip);
        }
        grp.append(wrap);
      }
      box.append(grp);
    }
  }

  function cell(name, s, changes, tag, label) {
    const changed = Object.prototype.hasOwnProperty.call(changes, name);
    const e = el(tag, (tag === "span" ? "var" : "") + (changed ? " changed" : ""));
    e.dataset.var = name;
    if (changed) e.title = "was " + changes[name][0];
    if (label !== undefined) { e.append(el("span", "k", label + "=")); }
    e.append(document.createTextNode(s[name]));
    return e;
  }

  function select(n, scroll) {
    current = Math.max(0, Math.min(total, n));
    for (const c of cards) {
      const k = Number(c.dataset.n);
      c.classList.toggle("selected", k === current);
      c.classList.toggle("future", k > current);
    }
    document.querySelector(".ending").classList.toggle("future", current < total);
    const who = current === 0 ? "" : steps[current - 1].thread;
    for (const h of heads) h.classList.toggle("active", h.dataset.thread === who);
    $("stepno").textContent = current;
    $("first").disabled = $("prev").disabled = current === 0;
    $("next").disabled = $("last").disabled = current === total;
    $("ending").hidden = current !== total;
    renderWhere(current); renderContext(current); renderChanged(current); renderState(current);
    if (scroll !== false) {
      const target = current === total ? document.querySelector(".ending") : cards.find((c) => Number(c.dataset.n) === current);
      // The selected step in the middle: what led to it above, what comes next below.
      if (target) target.scrollIntoView({block: current === total ? "nearest" : "center"});
      if (current === total && cards.length) cards[cards.length - 1].scrollIntoView({block: "nearest"});
    }
    if (history.replaceState) history.replaceState(null, "", "#step-" + current);
  }

  $("first").addEventListener("click", () => select(0));
  $("prev").addEventListener("click", () => select(current - 1));
  $("next").addEventListener("click", () => select(current + 1));
  $("last").addEventListener("click", () => select(total));
  $("only-touched").addEventListener("change", () => renderState(current));
  for (const c of cards) c.addEventListener("click", (ev) => {
    if (ev.target.closest("a")) return;  // a source link opens; it does not select
    select(Number(c.dataset.n), false);
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const go = {ArrowRight: current + 1, ArrowDown: current + 1, PageDown: current + 1,
                ArrowLeft: current - 1, ArrowUp: current - 1, PageUp: current - 1, Home: 0, End: total}[ev.key];
    if (go === undefined) return;
    ev.preventDefault();
    select(go);
  });
  const m = /^#step-(\d+)$/.exec(location.hash);
  select(m ? Number(m[1]) : 0, !!m);
})();
"""
