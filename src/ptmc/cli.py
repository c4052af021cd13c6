"""Command line: click commands only. Loading is in properties/model, exploring in explore/,
formatting in render/.

Exit codes: 0 holds, 1 violated, 2 usage or input error, 3 inconclusive.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from . import docgen, limits, workflow
from .errors import PtmcError, from_user_code
from .model import load_model_class
from .render import json as render_json
from .render import table as render_table
from .render import text as render_text
from .smt.obligations import DEFAULT_TIMEOUT


INTERRUPTED = "interrupted: the run did not finish"  # where no partial result can be shown


class _Group(click.Group):
    """The exit-code contract for whatever a command ends in: bad usage or input is one line on
    stderr and exit 2; an interrupt, SIGTERM or running out of memory outside exploration is
    exit 3; never a traceback (PTMC_DEBUG=1 shows one for ptmc's own bugs)."""

    def main(self, *args, **kwargs):
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Abort:  # Ctrl-C while click parsed the command line
            code = _stop(INTERRUPTED)
        except click.exceptions.NoArgsIsHelpError as e:  # bare `ptmc`: its help
            e.show()
            code = 2
        except click.ClickException as e:
            hint = f" (see '{e.ctx.command_path} --help')" if getattr(e, "ctx", None) else ""
            code = _stop(f"error: {' '.join(e.format_message().split()).rstrip('.')}{hint}", 2)
        sys.exit(code)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except PtmcError as e:
            ctx.exit(_stop(f"error: {e}", e.exit_code))
        except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM where no partial result can be shown
            ctx.exit(_stop(f"interrupted {e}" if str(e) else INTERRUPTED))
        except MemoryError:
            limits.release_reserve()
            ctx.exit(_stop("out of memory: the run did not finish (a smaller instance, or a lower "
                           "--max-memory to stop exploration in time)"))
        except BrokenPipeError:  # e.g. piped into head: nothing more to say
            sys.stderr.close()
            ctx.exit(1)
        except (Exception, SystemExit) as e:  # noqa: BLE001 - SystemExit: a model called sys.exit()
            if os.environ.get("PTMC_DEBUG"):
                raise
            error = from_user_code(e)
            ctx.exit(_stop(f"error: {error}" if error else
                           f"internal error: {type(e).__name__}: {e} (PTMC_DEBUG=1 shows where)", 2))


def _stop(message: str, code: int = 3) -> int:
    click.echo(f"ptmc: {message}", err=True)
    return code


class _Size(click.ParamType):
    name = "size"

    def convert(self, value, param, ctx):
        try:
            return limits.parse_size(value) if isinstance(value, str) else value
        except ValueError as e:
            self.fail(str(e), param, ctx)


MAX_MEMORY = click.option(
    "--max-memory", type=_Size(), metavar="SIZE",
    help="Stop exploring as inconclusive when resident memory reaches SIZE (e.g. 800M, 2G; "
         f"default: {limits.SHARE:.0%} of physical memory, cgroup memory.max or RLIMIT_AS, the least).")


@click.group(cls=_Group)
def main():
    """ptmc: a model checker for the Linux kernel's page-table reclaim protocol."""


_last_line = [float("-inf")]


def _progress(states, transitions, depth, frontier, seconds):
    tty = sys.stderr.isatty()
    if not tty and seconds - _last_line[0] < 10:
        return  # a log, not a terminal: a first line after a second, then one every ten
    _last_line[0] = seconds
    end = "\r" if tty else "\n"
    click.echo(f"  {states:,} states  {states / max(seconds, 1e-9):,.0f} states/s  frontier {frontier:,}"
               f"  depth {depth}  {seconds:.0f}s", err=True, nl=False)
    click.echo(end, err=True, nl=False)


@main.command()
@click.argument("property_file", type=click.Path(dir_okay=False))
@click.option("--model", "model_path", type=click.Path(dir_okay=False), help="Model file (default: the property's).")
@click.option("--variant", "variants", multiple=True, metavar="NAME", help="Check this variant (repeatable).")
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE", help="Set a model parameter (repeatable).")
@click.option("--max-states", type=click.IntRange(min=1), help="Stop as inconclusive after this many states.")
@click.option("--out", "out_dir", default="out", show_default=True, type=click.Path(file_okay=False),
              help="Where counterexamples are written.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_TIMEOUT,
              show_default=True, help="Solver time-out per z3 obligation, seconds (a time-out is inconclusive).")
@MAX_MEMORY
@click.option("--witness", "witnesses", multiple=True, metavar="NAME",
              help="Also print the shortest trace reaching this witness (repeatable).")
@click.option("--store", type=click.Choice(["exact", "fingerprint"]), default="exact", show_default=True,
              help="Visited states: exact, or 64-bit fingerprints (~30 bytes a state; the chance that "
                   "a collision hid a state is printed).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.pass_context
def check(ctx, property_file, model_path, variants, settings, max_states, out_dir, timeout, max_memory,
          witnesses, store, as_json):
    """Explore every interleaving of the model and check PROPERTY_FILE (and its z3 obligations)."""
    values = workflow.parse_settings(settings)
    result = workflow.check(property_file, model_path=model_path, variants=variants, settings=values,
                            max_states=max_states, max_memory=max_memory, progress=_progress,
                            timeout=timeout, witnesses=witnesses, store=store)
    if as_json:
        click.echo(render_json.render(result), nl=False)
    else:
        click.echo(render_text.render(result), nl=False)
    # The verdict is out before any file is written: a full or unwritable --out cannot lose it.
    written = workflow.write_counterexample(result, out_dir, values) if result.violation else []
    if not as_json:
        for path in written:
            click.echo(f"wrote {path}")
    ctx.exit(result.exit_code)


@main.command()
@click.argument("property_file", type=click.Path(dir_okay=False))
@click.option("--variant", "variants", multiple=True, metavar="NAME",
              help="Reason about this variant of the obligations' models (repeatable).")
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE",
              help="Set an obligation parameter, e.g. ptrs_per_pte=2048 (repeatable).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_TIMEOUT,
              show_default=True, help="Solver time-out per obligation, seconds (a time-out is inconclusive).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.pass_context
def prove(ctx, property_file, variants, settings, timeout, as_json):
    """Prove only the z3 obligations of PROPERTY_FILE (no exploration)."""
    result = workflow.prove(property_file, variants=variants, settings=workflow.parse_settings(settings),
                            timeout=timeout)
    click.echo((render_json if as_json else render_text).render(result), nl=False)
    if result.reason and not as_json:
        click.echo(f"inconclusive: {result.reason}")
    ctx.exit(result.exit_code)


@main.command()
@click.argument("property_file", type=click.Path(dir_okay=False))
@click.option("--view", type=click.Choice(["full", "trace", "pcs"]), default="pcs", show_default=True,
              help="full: every state; trace: the counterexample's neighbourhood; pcs: quotient by "
                   "where each thread is.")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), help="Model file (default: the property's).")
@click.option("--variant", "variants", multiple=True, metavar="NAME", help="Check this variant (repeatable).")
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE", help="Set a model parameter (repeatable).")
@click.option("--max-states", type=click.IntRange(min=1), help="Stop exploring after this many states.")
@click.option("--out", "out_dir", default="out", show_default=True, type=click.Path(file_okay=False))
@MAX_MEMORY
@click.pass_context
def graph(ctx, property_file, view, model_path, variants, settings, max_states, out_dir, max_memory):
    """Export the state graph of PROPERTY_FILE's model as GraphML and DOT (networkx)."""
    summary, paths, reason = workflow.graph(property_file, view, out_dir, model_path=model_path,
                                            variants=variants, settings=workflow.parse_settings(settings),
                                            max_states=max_states, max_memory=max_memory,
                                            progress=_progress)
    click.echo(summary)
    for path in paths:
        click.echo(f"wrote {path}")
    if reason:
        click.echo(f"inconclusive: the graph is only what was explored: {reason}")
        ctx.exit(3)


@main.command(name="list")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--verdicts", is_flag=True,
              help="Check every property on every model and variant; print a markdown table.")
@click.pass_context
def list_(ctx, file, verdicts):
    """List models and properties, or the parameters, variants and checks of FILE."""
    if verdicts:
        def done(r):
            click.echo(f"  {r.property} on {r.model} {','.join(r.variants)} "
                       f"{r.params.get('split_ptlocks', '')}: {r.verdict}, {r.states} states, "
                       f"{r.seconds:.1f}s", err=True)
        results, stopped = workflow.verdict_matrix(Path.cwd(), progress=done)
        if results:
            click.echo(render_table.render(results), nl=False)
        if stopped:
            click.echo(f"inconclusive: {stopped}")
            ctx.exit(3)
        return
    click.echo(workflow.describe(Path(file)) if file else workflow.catalogue(Path.cwd()), nl=False)


@main.command()
@click.argument("model_file", type=click.Path(dir_okay=False))
def doc(model_file):
    """Print MODEL_FILE's reference: every thread's steps with their kernel functions."""
    click.echo(docgen.model_reference(load_model_class(model_file)), nl=False)
