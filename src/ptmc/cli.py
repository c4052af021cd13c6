"""Command line: click commands only. Loading is in properties/model, exploring in explore/,
formatting in render/.

Exit codes: 0 holds, 1 violated, 2 usage or input error, 3 inconclusive.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from . import ablation, docgen, limits, regress, workflow
from . import matrix as configuration_matrix
from .errors import PtmcError, from_user_code
from .model import load_model_class
from .render import ablation as render_ablation
from .render import events as render_events
from .render import matrix as render_matrix
from .render import html as render_html
from .render import json as render_json
from .render import progress as render_progress
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
@click.option("--without", "without", multiple=True, metavar="GUARD",
              help="Switch off one of the model's guards (a lock, recheck, flush or grace period; repeatable).")
@click.option("--witness", "witnesses", multiple=True, metavar="NAME",
              help="Also print the shortest trace reaching this witness, and write it as an HTML page (repeatable).")
@click.option("--store", type=click.Choice(["exact", "fingerprint"]), default="exact", show_default=True,
              help="Visited states: exact, or 64-bit fingerprints (~30 bytes a state; the chance that "
                   "a collision hid a state is printed).")
@click.option("--workers", type=click.IntRange(min=1), metavar="N",
              help="Explore on N workers (a local Ray instance, or N of --cluster's): the same result.")
@click.option("--cluster", metavar="ADDRESS",
              help="Explore on the Ray cluster at ADDRESS (HEAD:6379, or auto); see docs/cluster.md.")
@click.option("--symmetry", is_flag=True,
              help="Explore interchangeable threads (the model's ``symmetric`` kinds) up to permutation; "
                   "counterexamples stay concrete traces of the same length.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option("--events", is_flag=True,
              help="Print the run as JSON lines instead: progress, violation, files, result (docs/events.md).")
@click.option("--sarif", "sarif_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write the result as SARIF 2.1.0, for code scanning.")
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write the result as JUnit XML, one test case per check.")
@click.option("--source-url", default=render_html.DEFAULT_SOURCE_URL, show_default=True, metavar="TEMPLATE",
              help="Where the HTML viewer links a step's kernel function ({file}, {function} are replaced).")
@click.pass_context
def check(ctx, property_file, model_path, variants, settings, max_states, out_dir, timeout, max_memory,
          without, witnesses, store, workers, cluster, symmetry, as_json, events, sarif_file, junit_file,
          source_url):
    """Explore every interleaving of the model and check PROPERTY_FILE (and its z3 obligations)."""
    if as_json and events:
        raise click.UsageError("--json and --events both print on stdout: choose one")
    values = workflow.parse_settings(settings)
    stream = render_events.EventStream(click.echo) if events else None
    progress = stream or render_progress.ProgressLine()
    if stream:
        stream.start("check", property_file)
    result = workflow.check(property_file, model_path=model_path, variants=variants, settings=values,
                            max_states=max_states, max_memory=max_memory, progress=progress,
                            timeout=timeout, witnesses=witnesses, store=store, without=without,
                            reductions=["symmetry"] if symmetry else [], workers=workers, cluster=cluster)
    progress.finish(result.states, result.transitions, result.depth, result.seconds)
    if stream:
        stream.verdict(result)
    else:
        click.echo((render_json if as_json else render_text).render(result), nl=False)
    # The verdict is out before any file is written: a full or unwritable --out cannot lose it.
    written = workflow.write_counterexample(result, out_dir, values, source_url=source_url)
    written += workflow.write_reports(result, sarif=sarif_file, junit=junit_file)
    if stream:
        stream.files(written)
        stream.result(result)
    elif not as_json:
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
@click.option("--view", type=click.Choice(["full", "trace", "pcs", "project"]),
              help="full: every state; trace: the counterexample's neighbourhood; pcs: quotient by "
                   "where each thread is; project: quotient by --project, as SVG too (default: project "
                   "with --project, else pcs).")
@click.option("--project", metavar="ITEMS|NAME",
              help="The project view's node labels: comma-separated cells, THREAD.pc and ptN.state (a "
                   "table's lifecycle), e.g. pmd,pt0.state,zap.pc; or a projection the model names.")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), help="Model file (default: the property's).")
@click.option("--variant", "variants", multiple=True, metavar="NAME", help="Check this variant (repeatable).")
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE", help="Set a model parameter (repeatable).")
@click.option("--max-states", type=click.IntRange(min=1), help="Stop exploring after this many states.")
@click.option("--out", "out_dir", default="out", show_default=True, type=click.Path(file_okay=False))
@MAX_MEMORY
@click.pass_context
def graph(ctx, property_file, view, project, model_path, variants, settings, max_states, out_dir, max_memory):
    """Export the state graph of PROPERTY_FILE's model as GraphML and DOT (networkx)."""
    view = view or ("project" if project else "pcs")
    if project and view != "project":
        raise click.UsageError(f"--project labels the project view, not --view {view}")
    progress = render_progress.ProgressLine()
    summary, paths, reason = workflow.graph(property_file, view, out_dir, project=project, model_path=model_path,
                                            variants=variants, settings=workflow.parse_settings(settings),
                                            max_states=max_states, max_memory=max_memory,
                                            progress=progress)
    progress.finish()
    click.echo(summary)
    for path in paths:
        click.echo(f"wrote {path}")
    if reason:
        click.echo(f"inconclusive: the graph is only what was explored: {reason}")
        ctx.exit(3)


@main.command()
@click.argument("property_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--model", "model_path", type=click.Path(dir_okay=False), help="Model file (default: the properties').")
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE", help="Set a model parameter (repeatable).")
@click.option("--sweep", multiple=True, metavar="NAME",
              help="Also try every value of this boolean or choice parameter, e.g. split_ptlocks (repeatable).")
@click.option("--pairs", is_flag=True, help="Also switch off every pair of guards.")
@click.option("--jobs", type=click.IntRange(min=1), help="Runs at once (default: one per core).")
@click.option("--out", "out_dir", default="out", show_default=True, type=click.Path(file_okay=False),
              help="Where the counterexamples are written.")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
@click.pass_context
def ablate(ctx, property_files, model_path, settings, sweep, pairs, jobs, out_dir, as_json):
    """Switch off each guard of the model in turn and check PROPERTY_FILES: which guard protects what."""
    plan, runs = ablation.plan(property_files, model_path=model_path, settings=workflow.parse_settings(settings),
                               sweep=sweep, pairs=pairs)

    def done(i, n, r, result):
        without = ",".join(r.without) or "(all guards on)"
        config = " ".join(f"{k}={v}" for k, v in r.settings)
        click.echo(f"  [{i}/{n}] {result.property} without {without}{' ' + config if config else ''}: "
                   f"{result.verdict}, {result.states:,} states, {result.seconds:.1f}s", err=True)
    ablation.run(plan, runs, jobs=jobs, progress=done, out_dir=out_dir)
    click.echo((render_ablation.render_json if as_json else render_ablation.render)(plan), nl=False)
    incomplete = plan.interrupted or any(r.verdict == "inconclusive" for r in plan.results.values())
    ctx.exit(3 if incomplete else 0)


@main.command()
@click.argument("property_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--model", "model_path", type=click.Path(dir_okay=False), help="Model file (default: the properties').")
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE", help="Set a model parameter (repeatable).")
@click.option("--variant", "variants", multiple=True, metavar="NAME", help="Also check this variant (repeatable).")
@click.option("--without", "without", multiple=True, metavar="GUARD",
              help="Also check with this guard switched off (repeatable).")
@click.option("--jobs", type=click.IntRange(min=1), help="Runs at once (default: one per core).")
@click.option("--json", "as_json", is_flag=True, help="Print the matrix as JSON.")
@click.pass_context
def matrix(ctx, property_files, model_path, settings, variants, without, jobs, as_json):
    """Check PROPERTY_FILES in every kernel configuration Kconfig allows (and the variants and
    guard ablations named)."""
    plan, runs = configuration_matrix.plan(property_files, model_path=model_path,
                                           settings=workflow.parse_settings(settings),
                                           variants=variants, without=without)

    def done(i, n, r, result):
        click.echo(f"  [{i}/{n}] {result.property} {r.label()}: {result.verdict}, {result.states:,} states, "
                   f"{result.seconds:.1f}s", err=True)
    configuration_matrix.run(plan, runs, jobs=jobs, progress=done)
    click.echo((render_matrix.render_json if as_json else render_matrix.render)(plan), nl=False)
    incomplete = plan.interrupted or any(r.verdict == "inconclusive" for r in plan.results.values())
    ctx.exit(3 if incomplete else 0)


@main.command(name="list")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--verdicts", is_flag=True,
              help="Check every property on every model and variant; print a markdown table.")
@click.pass_context
def list_(ctx, file, verdicts):
    """List models and properties, or the parameters, variants and checks of FILE."""
    if verdicts:
        def done(i, n, run, r):
            click.echo(f"  [{i}/{n}] {r.property} on {r.model} {run.label()}: {r.verdict}, "
                       f"{r.states:,} states, {r.seconds:.1f}s", err=True)
        results, stopped = configuration_matrix.verdict_table(Path.cwd(), progress=done)
        if results:
            click.echo(render_table.render(results), nl=False)
        if stopped:
            click.echo(f"inconclusive: {stopped}")
            ctx.exit(3)
        return
    click.echo(workflow.describe(Path(file)) if file else workflow.catalogue(Path.cwd()), nl=False)


@main.command(name="regress")
@click.argument("corpus_dir", required=False, default="corpus", type=click.Path(file_okay=False))
@click.pass_context
def regress_(ctx, corpus_dir):
    """Run the known-bug corpus (CORPUS_DIR, default corpus/): one row per entry; exit 0 only if every entry matches."""
    entries = regress.load(corpus_dir)

    def done(row):
        click.echo(f"  {row.entry.name}: {row.result.verdict}, {row.result.states:,} states, "
                   f"{row.seconds:.1f}s{'' if row.ok else ' MISMATCH'}", err=True)
    rows, stopped = regress.run(entries, done=done)
    if rows:
        click.echo(regress.render(rows), nl=False)
    if stopped:
        click.echo(f"inconclusive: {stopped}")
        ctx.exit(3)
    ctx.exit(0 if all(row.ok for row in rows) else 1)


@main.command()
@click.argument("model_file", type=click.Path(dir_okay=False))
def doc(model_file):
    """Print MODEL_FILE's reference: every thread's steps with their kernel functions."""
    click.echo(docgen.model_reference(load_model_class(model_file)), nl=False)
