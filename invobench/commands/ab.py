"""`invobench ab SUITE --base REF`: measure git revision REF and this checkout in one run, interleaved, and compare."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import click

from invobench.commands.run import _split, parse_dtypes
from invobench.core import DEVICES


@click.command("ab")
@click.argument("suite")
@click.option("--base", "base_ref", required=True, metavar="REF",
              help="Git revision to measure against this checkout (branch, tag or commit), e.g. origin/main.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where base.jsonl, new.jsonl and the combined ab.jsonl go. Default: out/ab-<suite>-<UTC time>/.")
@click.option("--device", type=click.Choice(DEVICES), default=None, help="Run every case on this device.")
@click.option("--variants", multiple=True, metavar="LIST", help="Comma-separated variants replacing the suite's lists.")
@click.option("--dtype", "dtypes", multiple=True, metavar="LIST", help="Comma-separated dtypes replacing the suite's.")
@click.option("--quick", is_flag=True, help="Tiny budgets: checks that everything runs; too few samples to gate on.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch.set_num_threads in the worker.")
@click.option("--threshold", default=0.05, show_default=True, type=float, help="As for `invobench compare`.")
@click.option("--alpha", default=0.05, show_default=True, type=float, help="As for `invobench compare`.")
@click.option("--format", "fmt", type=click.Choice(["table", "md", "json"]), default="table", show_default=True,
              help="Format of the comparison, as for `invobench compare`.")
@click.option("--fail-on-regression", is_flag=True, help="Exit 1 when any case of NEW regresses against BASE.")
@click.pass_context
def command(ctx, suite, base_ref, out_dir, device, variants, dtypes, quick, threads, threshold, alpha, fmt,
            fail_on_regression):
    """Run SUITE with the variants of git revision BASE and of this checkout side by side, then compare.

    Every case group measures BASE's and NEW's variants in the same worker process, in interleaved
    rounds, so both sides see the same machine at the same moments: on a shared, noisy runner this
    is what makes a 5-20 % change visible, where two separate runs differ by more (docs/gate.md).
    Writes OUT_DIR/base.jsonl and OUT_DIR/new.jsonl (ordinary results files) and prints
    `invobench compare OUT_DIR/base.jsonl OUT_DIR/new.jsonl`.
    """
    from rich.console import Console

    from invobench.bench import ab
    from invobench.bench.runner import RunConfig, RunnerError, default_out, run_suite
    from invobench.bench.suite import SuiteError
    from invobench.commands import compare as compare_command
    from invobench.commands._progress import RunProgress
    from invobench.registry import PLUGINS_ENV

    dtype_list = parse_dtypes(dtypes)  # before anything is extracted or run
    console = Console(stderr=True)
    if out_dir is None:
        out_dir = default_out(f"ab-{Path(suite).stem}").with_suffix("")
    combined = out_dir / "ab.jsonl"
    if combined.exists():
        raise click.ClickException(f"{combined} exists: give a new --out-dir (an A/B run is not resumable)")
    scratch = Path(tempfile.mkdtemp(prefix="invobench-ab-"))
    try:
        try:
            commit = ab.prepare_base(base_ref, scratch)
        except ab.ABError as exc:
            raise click.ClickException(str(exc)) from None
        console.print(f"BASE = {base_ref} ({commit[:12]}), NEW = this checkout; results in {out_dir}/")
        plugins = [p for p in os.environ.get(PLUGINS_ENV, "").split(os.pathsep) if p]
        os.environ.update({ab.BASE_ENV: str(scratch), ab.BASE_REF_ENV: f"{base_ref} {commit[:12]}",
                           PLUGINS_ENV: os.pathsep.join([ab.PLUGIN, *plugins])})
        config = RunConfig(suite=suite, out=combined, device=device, variants=_split(variants), dtypes=dtype_list,
                           quick=quick, threads=threads, ab=True)
        progress = RunProgress(console)
        try:
            summary = run_suite(config, on_event=progress)
        except (RunnerError, SuiteError, ab.ABError) as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            progress.close()
            console.print(f"interrupted; the finished records are in {combined}", style="yellow")
            raise SystemExit(130) from None
        finally:
            progress.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    base_out, new_out = out_dir / "base.jsonl", out_dir / "new.jsonl"
    from invobench.results import ResultsFileError, ResultsLockedError, ResultsWriteError

    try:
        n_base, n_new = ab.split(combined, base_out, new_out, commit)
    except (ResultsFileError, ResultsLockedError, ResultsWriteError) as exc:
        raise click.ClickException(f"splitting {combined} into {base_out} and {new_out}: {exc}") from None
    click.echo(f"{n_base} BASE and {n_new} NEW records in {summary.wall_s:.1f} s: {base_out}, {new_out}", err=True)
    if n_base == 0:
        raise click.ClickException(f"BASE ({base_ref}) has none of the suite's variants: nothing to compare")
    click.echo(f"invobench compare {base_out} {new_out}", err=True)
    ctx.invoke(compare_command.command, base=str(base_out), new=str(new_out), threshold=threshold, alpha=alpha,
               fmt=fmt, fail_on_regression=fail_on_regression)
