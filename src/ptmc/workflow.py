"""What the commands do: load a property and its model, check, write the counterexample files."""
from __future__ import annotations

from pathlib import Path

import graphviz

from .errors import PtmcError
from .explore import check_model
from .model import Model, load_model_class, load_module
from .properties import load_property
from .render import dot as render_dot
from .render import json as render_json
from .render import text as render_text
from .result import Result


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
          progress=None) -> Result:
    prop = load_property(property_file)
    model = instantiate(model_path or prop.model_path, {**prop.params, **(settings or {})},
                        [*prop.variants, *variants])
    return check_model(model, prop.checks, property_name=prop.name, max_states=max_states,
                       progress=progress)


def write_counterexample(result: Result, out_dir) -> list[Path]:
    """The violation as text diagram, DOT, SVG (when graphviz's dot is installed) and JSON."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = "-".join([result.property, result.model, *result.variants])
    written = []
    for suffix, text in ((".txt", render_text.render(result)), (".json", render_json.render(result)),
                         (".dot", render_dot.render(result))):
        path = out / f"{stem}{suffix}"
        path.write_text(text)
        written.append(path)
    try:
        svg = out / f"{stem}.svg"
        svg.write_bytes(render_dot.render_svg(written[-1].read_text()))
        written.append(svg)
    except graphviz.ExecutableNotFound:
        pass  # DOT is still there; README's set-up installs graphviz
    return written


def catalogue(root: Path) -> str:
    """Every model and property under ``root``, one line each."""
    lines = []
    for kind, folder in (("models", "model"), ("properties", "properties")):
        files = sorted((root / folder).glob("*.py"))
        lines.append(f"{kind} ({folder}/):")
        for f in files:
            if f.name.startswith("_"):
                continue
            doc = (load_module(f, kind).__doc__ or "").strip().splitlines()
            lines.append(f"  {f.stem:<20} {doc[0] if doc else ''}")
        lines.append("")
    return "\n".join(lines)


def describe(path: Path) -> str:
    """A model's parameters, variants and threads; or a property's model and checks."""
    module = load_module(path, "file")
    if hasattr(module, "CHECKS") or hasattr(module, "OBLIGATIONS"):
        prop = load_property(path)
        lines = [f"property {prop.name}: {prop.doc.splitlines()[0] if prop.doc else ''}",
                 f"  model: {prop.model_path or '-'}"]
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
