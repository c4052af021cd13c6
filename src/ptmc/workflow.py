"""What the commands do: load a property and its model, check, write the counterexample files."""
from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from urllib.parse import quote

import graphviz
import networkx as nx

from .errors import Interrupted, OutputError, PtmcError
from .explore import check_model, explore_model
from .explore import graph as state_graphs
from .limits import MemoryLimit
from .model import Model, load_model_class, load_module
from .properties import load_property
from .render import dot as render_dot
from .render import html as render_html
from .render import json as render_json
from .render import junit as render_junit
from .render import sarif as render_sarif
from .render import stategraph as render_stategraph
from .render import text as render_text
from .result import HOLDS, INCONCLUSIVE, VIOLATED, Result
from .smt.obligations import known_params
from .smt.obligations import verdict as smt_verdict


def parse_settings(settings) -> dict:
    out = {}
    for item in settings:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise PtmcError(f"--set takes NAME=VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def instantiate(model_path, params: dict, variants) -> Model:
    return load_model_class(model_path)(params, variants)


def check(property_file, *, model_path=None, variants=(), settings=None, max_states=None,
          max_memory=None, progress=None, timeout=None, explore=True, witnesses=(), exclude=(),
          store="exact", without=(), reductions=(), workers=None, cluster=None) -> Result:
    """Explore the property's model against its checks (unless ``explore`` is false; without
    the checks named in ``exclude``) and prove its z3 obligations; the verdict is violated if
    either fails, inconclusive if either could not finish (state or memory limit, Ctrl-C,
    solver time-out) and nothing failed. ``reductions``: names of ptmc.reduce to explore under.
    ``workers``, ``cluster``: explore on that many Ray workers, of a local instance or of the
    cluster at that address (explore/cluster.py)."""
    prop = load_property(property_file)
    prop.checks = [c for c in prop.checks if c.name not in exclude]
    model_file = model_path or prop.model_path or None
    model_cls = load_model_class(model_file) if model_file else None
    obligations = prop.obligations
    model_settings, obligation_settings = _split_settings(prop, model_cls, obligations, settings or {})
    for o in obligations:
        o.bind(base=Path(prop.path).parent, model_path=model_file, model_params=model_settings)
    all_variants = [*prop.variants, *variants]
    model_variants = _split_variants(prop, model_cls, obligations, all_variants)
    if without and not (explore and prop.checks):
        raise PtmcError("--without switches off a guard of the explored model; this run explores none")
    if explore and prop.checks:
        model = model_cls(model_settings, model_variants, without=without)
        distributed = None
        if workers or cluster:
            distributed = _distributed(workers, cluster, prop, model_file, model_settings, model_variants,
                                       without, exclude, store)
        result = check_model(model, prop.checks, property_name=prop.name, max_states=max_states,
                             progress=progress, limit=MemoryLimit(max_memory), witness_traces=witnesses,
                             store=store, reductions=reductions, distributed=distributed)
    else:
        result = Result(property=prop.name, model=model_cls.name if model_cls else "",
                        variants=sorted(set(all_variants)), params={}, threads=[], verdict=HOLDS,
                        states=0, transitions=0, depth=0, seconds=0.0, explored=False)
    result.property_file, result.model_file, result.property_doc = str(property_file), model_file or "", prop.doc
    result.descriptions = {c.name: c.description for c in
                           (c.bind(model_cls) if model_cls else c for c in prop.checks)}
    if obligations:
        result.explored_verdict = result.verdict
        try:
            for o in obligations:
                result.obligations.append(o.run(obligation_settings, variants=all_variants, timeout=timeout))
        except KeyboardInterrupt:  # what was proved so far is still reported
            result.verdict = _combine(result.verdict, INCONCLUSIVE)
            done = f"interrupted: {len(result.obligations)} of {len(obligations)} z3 obligations done"
            result.reason = "; ".join(filter(None, [result.reason, done]))
        result.verdict = _combine(result.verdict, smt_verdict(result.obligations))
    return result


def _distributed(workers, cluster, prop, model_file, params, variants, without, exclude, store):
    """The Ray backend and the job its workers rebuild the run from (the same files, checked
    by digest, and the same ptmc)."""
    from .explore.partition import Job, file_digest, source_digest
    from .explore.ray_backend import RayCluster
    files = [str(Path(prop.path).resolve()), str(Path(model_file).resolve())]
    job = Job(property_file=files[0], model_file=files[1], params=dict(params), variants=tuple(variants),
              without=tuple(without), exclude=tuple(exclude), store=store,
              files={file_digest(f): f for f in files}, source=source_digest())
    return RayCluster(workers, cluster), job


def prove(property_file, *, variants=(), settings=None, timeout=None) -> Result:
    """Only the property's z3 obligations."""
    prop = load_property(property_file)
    if not prop.obligations:
        raise PtmcError(f"{prop.path}: declares no OBLIGATIONS")
    return check(property_file, variants=variants, settings=settings, timeout=timeout, explore=False)


def _split_settings(prop, model_cls, obligations, settings) -> tuple[dict, dict]:
    """``--set`` values (over the property's PARAMS that apply to this model:
    Property.params_for) for the model and for the obligations; a name neither takes is an
    error."""
    model_known = set(model_cls.params()) if model_cls else set()
    obligation_known = known_params(obligations)
    merged = {**prop.params_for(model_cls, also=obligation_known), **settings}
    unknown = [n for n in merged if n not in model_known and n not in obligation_known]
    if unknown:
        known = sorted(model_known | set(obligation_known))
        raise PtmcError(f"unknown parameter {unknown[0]!r} for {_what(prop, model_cls, obligations)}"
                        f" (known: {', '.join(known) or 'none'})")
    return ({n: v for n, v in merged.items() if n in model_known},
            {n: v for n, v in merged.items() if n in obligation_known})


def _split_variants(prop, model_cls, obligations, variants) -> list:
    """The variants the explored model takes; a variant that neither the model nor an
    obligation's model knows is an error."""
    model_known = set(model_cls.variants()) if model_cls else set()
    known = set(model_known)
    for name in variants:
        if name not in known:
            known |= {v for o in obligations for v in o.variants_known()}
        if name not in known:
            raise PtmcError(f"unknown variant {name!r} for {_what(prop, model_cls, obligations)}"
                            f" (known: {', '.join(sorted(known)) or 'none'})")
    return [v for v in variants if v in model_known]


def _what(prop, model_cls, obligations) -> str:
    if model_cls is None:
        return f"the obligations of {prop.name}"
    return f"model {model_cls.name}" + (f" or the obligations of {prop.name}" if obligations else "")


def _combine(a: str, b: str) -> str:
    if VIOLATED in (a, b):
        return VIOLATED
    return INCONCLUSIVE if INCONCLUSIVE in (a, b) else HOLDS


def write_counterexample(result: Result, out_dir, settings=None,
                         source_url: str = render_html.DEFAULT_SOURCE_URL) -> list[Path]:
    """The violation as text diagram, DOT, SVG (when graphviz's dot is installed), JSON and an
    HTML page to step through, and each witness trace asked for as an HTML page, named after
    the run (see output_stem). A failure to write keeps the verdict's exit code."""
    stem = output_stem(result.property, result.model, *result.variants,
                       *(f"without-{g}" for g in result.without), settings=settings)
    files = {}
    if result.violation:
        dot = render_dot.render(result)
        files = {f"{stem}.txt": render_text.render(result), f"{stem}.json": render_json.render(result),
                 f"{stem}.dot": dot, f"{stem}.html": render_html.render(result, source_url=source_url)}
        try:
            files[f"{stem}.svg"] = render_dot.render_svg(dot)
        except graphviz.ExecutableNotFound:
            pass  # DOT is still there; README's set-up installs graphviz
    for w in result.witnesses:
        if w.trace is not None:
            files[f"{stem}-witness-{quote(w.name, safe='=')}.html"] = render_html.render(
                result, w.trace, title=f"{result.property}: witness {w.name}", source_url=source_url,
                ending=("witness", f"witness {w.name} reached in {w.length} steps: {w.description}"))
    return write_files(out_dir, files, exit_code=result.exit_code) if files else []


def write_reports(result: Result, *, sarif=None, junit=None) -> list[Path]:
    """The CI formats asked for: SARIF 2.1.0 and JUnit XML, each at the path given."""
    reports = [(path, renderer) for path, renderer in ((sarif, render_sarif), (junit, render_junit)) if path]
    written = []
    for path, renderer in reports:
        path = Path(path)
        written += write_files(path.parent, {path.name: renderer.render(result)}, exit_code=result.exit_code)
    return written


def output_stem(*names: str, settings=None) -> str:
    """A file name for one run: the property, model, variants and ``--set`` values, so that two
    different runs never write the same file; readable, deterministic and filesystem-safe (any
    character that is not is %-escaped, so different runs stay different names)."""
    parts = [*names, *(f"{k}={v}" for k, v in sorted((settings or {}).items()))]
    return "-".join(quote(part, safe="=") for part in parts)


def write_files(out_dir, files: dict, exit_code: int = 2) -> list[Path]:
    """Write every file of ``files`` (name -> text or bytes) into ``out_dir``, or raise
    OutputError naming the one that failed. Each is written under a temporary name in the same
    directory and renamed over its target, so no truncated file is ever left, not even after a
    full disk or a kill; signals wait while the complete files are renamed into place."""
    out = Path(out_dir)
    temps, target = [], out
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            target = out / name
            temps.append((out / f".{name}.{os.getpid()}.tmp", target))
            with open(temps[-1][0], "wb") as f:
                f.write(data.encode() if isinstance(data, str) else data)
                f.flush()
                os.fsync(f.fileno())
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            for tmp, target in temps:
                os.replace(tmp, target)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    except BaseException as e:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OutputError(f"cannot write {target}: {e.strerror or e}", exit_code) from None
        raise
    return [t for _, t in temps]


def catalogue(root: Path) -> str:
    """Every model and property under ``root``, one line each."""
    lines = []
    for kind, folder in (("models", "model"), ("properties", "properties")):
        files = [f for f in sorted((root / folder).glob("*.py")) if not f.name.startswith("_")]
        width = max((len(f.stem) for f in files), default=0) + 2
        lines.append(f"{kind} ({folder}/):")
        for f in files:
            doc = (load_module(f, kind).__doc__ or "").strip().splitlines()
            lines.append(f"  {f.stem:<{width}}{doc[0] if doc else ''}")
        lines.append("")
    return "\n".join(lines)


def describe(path: Path) -> str:
    """A model's parameters, variants and threads; or a property's model and checks."""
    module = load_module(path, "model or property")
    if hasattr(module, "CHECKS") or hasattr(module, "OBLIGATIONS"):
        prop = load_property(path)
        lines = [f"property {prop.name}: {prop.doc.splitlines()[0] if prop.doc else ''}",
                 f"  model: {os.path.relpath(prop.model_path) if prop.model_path else '-'}"]
        if prop.params:
            lines.append("  parameters: " + ", ".join(f"{k}={v}" for k, v in prop.params.items()))
        if prop.variants:
            lines.append("  variants: " + ", ".join(prop.variants))
        for c in prop.checks:
            lines.append(f"  check {c.name}: {c.description}")
        for o in prop.obligations:
            lines.append(f"  obligation {o.name}: {o.description}")
        return "\n".join(lines) + "\n"
    cls = load_model_class(path)
    model = cls()
    doc = (cls.__doc__ or "").strip().splitlines()
    lines = [f"model {cls.name}: {doc[0] if doc else ''}", "  parameters:"]
    for name, p in cls.params().items():
        lines.append(f"    {f'{name}={p.default!r}':<24} {p.help}")
    lines.append("  variants:" if cls.variants() else "  variants: none")
    for name, v in cls.variants().items():
        lines.append(f"    {name:<22} {v.help}")
    lines.append("  threads:")
    for t in model.threads():
        tdoc = (type(t).__doc__ or "").strip().splitlines()
        lines.append(f"    {t.name:<22} {tdoc[0] if tdoc else ''}")
    return "\n".join(lines) + "\n"


def graph(property_file, view: str, out_dir, *, project=None, model_path=None, variants=(), settings=None,
          max_states=None, max_memory=None, progress=None) -> tuple[str, list[Path], str]:
    """Explore, then export a networkx view of the state graph as GraphML and DOT (and, for
    the ``project`` view, SVG): the summary line, the files written, and why exploration was
    cut short ("" if it was not; the title then says the graph is incomplete). ``project``: the
    projection of the ``project`` view (a name the model gives, or comma-separated items)."""
    prop = load_property(property_file)
    model_file = model_path or prop.model_path
    if not model_file:
        raise PtmcError(f"{prop.path}: declares only z3 OBLIGATIONS, no model to explore "
                        "(ptmc prove proves them; --model names a model to draw)")
    settings = settings or {}
    model_cls = load_model_class(model_file)
    model = model_cls({**prop.params_for(model_cls), **settings}, [*prop.variants, *variants])
    system, ex = explore_model(model, prop.checks, max_states=max_states, progress=progress,
                               limit=MemoryLimit(max_memory))
    if view == "project" and not project:
        named = list(model.projections())
        if not named:
            raise PtmcError(f"--view project: model {model.name} names no projection; give --project "
                            "with cells, THREAD.pc or ptN.state items, e.g. --project pmd,pt0.state")
        project = named[0]
    try:
        g = (state_graphs.projected_graph(system, ex, project) if view == "project"
             else state_graphs.VIEWS[view](system, ex))
    except KeyboardInterrupt:
        raise Interrupted(f"while drawing the {view} view of {len(ex.store.states)} explored states: "
                          "no files written") from None
    shown = view if view != "project" else re.sub(r"[^a-z0-9]+", "_", project.lower()).strip("_")
    stem = output_stem(prop.name, model.name, *model.variant_names, shown, settings=settings)
    title = f"{prop.name} on {model.name}: " + (f"{view} view" if view != "project" else f"projected on {project}")
    if ex.reason:
        title += f" (INCOMPLETE: {ex.reason})"
    elif ex.found is not None:  # exploration ends at the first violation's depth
        title += f" (explored until {ex.found.check.name} failed at depth {ex.found.length})"
    dot = render_stategraph.render(g, title)
    files = {f"{stem}.graphml": "\n".join(nx.generate_graphml(g)), f"{stem}.dot": dot}
    if view == "project":
        try:
            files[f"{stem}.svg"] = render_dot.render_svg(dot).decode()
        except graphviz.ExecutableNotFound:
            pass  # the DOT is there; README's set-up installs graphviz
    paths = write_files(out_dir, files)
    return f"{title}: {state_graphs.summary(g)}", paths, ex.reason
