"""`invobench run SUITE`: sweep a suite's variants over its cases and append records to a results file."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from invobench.core import DEVICES, DTYPES


def _split(values: tuple[str, ...], option: str = "--variants") -> Optional[list[str]]:
    """Comma-separated lists given with a repeatable option, as one list; None when the option was not given."""
    if not values:
        return None
    out = [v.strip() for text in values for v in text.split(",") if v.strip()]
    if not out:
        raise click.BadParameter(f"{', '.join(map(repr, values))} names nothing; give comma-separated names, "
                                 "or leave the option out for the suite's own list", param_hint=option)
    return out


def parse_dtypes(values: tuple[str, ...]) -> Optional[list[str]]:
    """The --dtype lists as one list (None when not given); an unknown dtype is a usage error naming the valid ones."""
    dtype_list = _split(values, "--dtype")
    for d in dtype_list or []:
        if d not in DTYPES:
            from invobench.bench.suite import did_you_mean

            raise click.BadParameter(f"{d!r} is not a dtype.{did_you_mean(d, tuple(DTYPES))} Valid: {', '.join(DTYPES)}",
                                     param_hint="--dtype")
    return dtype_list


@click.command("run")
@click.argument("suite")
@click.option("--device", type=click.Choice(DEVICES), default=None, help="Run every case on this device (replaces the suite's).")
@click.option("--variants", multiple=True, metavar="LIST",
              help="Comma-separated variants (family.name, or family.* patterns) replacing the suite's lists.")
@click.option("--dtype", "dtypes", multiple=True, metavar="LIST",
              help=f"Comma-separated dtypes replacing the suite's ({', '.join(DTYPES)}).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Results file (JSON Lines). Default: out/<suite>-<UTC time>.jsonl.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out: skip the case ids it holds, "
                                             "drop a partial last line; refuses a file of another suite.")
@click.option("--shard", metavar="K/N", default=None, help="Run only shard K of N (every N-th case group); merge with `invobench merge`.")
@click.option("--mem-budget", metavar="SIZE", default=None,
              help="Skip cases whose estimated peak exceeds this; kill a worker above it; refused when below every "
                   "case's need. Either a share of available memory (60%%, or a fraction up to 1: 0.6) or an amount "
                   "with a unit (8GiB, 512MiB, 8GB, 2000000B); a plain number above 1 is refused. Default: the "
                   "suite's mem_budget, else 60%% of available memory.")
@click.option("--quick", is_flag=True, help="Tiny warm-up and sampling budgets: checks that everything runs, numbers are rough.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch.set_num_threads in the worker (default: torch's default).")
@click.option("--dry-run", is_flag=True, help="List the planned records (and why some would be skipped, the memory guard "
                                              "included) without running. It loads INVOBENCH_PLUGINS too.")
def command(suite, device, variants, dtypes, out, resume, shard, mem_budget, quick, threads, dry_run):
    """Run SUITE (a name such as `smoke` for suites/smoke.yaml, or a path) and write a results file."""
    from rich.console import Console

    from invobench.bench.runner import RunConfig, RunnerError, default_out, run_suite
    from invobench.bench.suite import SuiteError
    from invobench.commands._progress import RunProgress
    from invobench.commands.show import print_summary

    dtype_list = parse_dtypes(dtypes)
    if resume and out is None:
        raise click.BadParameter("--resume needs the results file to continue: pass --out PATH", param_hint="--resume")
    if out is None and not dry_run:
        out = default_out(Path(suite).stem)
    config = RunConfig(suite=suite, out=out, device=device, variants=_split(variants), dtypes=dtype_list, resume=resume,
                       shard=shard, mem_budget=mem_budget, quick=quick, threads=threads, dry_run=dry_run)
    console = Console(stderr=True)

    def on_sigterm(signum, frame):  # a cancelled CI job: stop the worker and leave the file valid, as Ctrl-C does
        raise KeyboardInterrupt

    import signal

    signal.signal(signal.SIGTERM, on_sigterm)
    progress = RunProgress(console)
    try:
        summary = run_suite(config, on_event=None if dry_run else progress)
    except (RunnerError, SuiteError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        progress.close()
        console.print(f"interrupted; every finished record is in {out or 'the results file'}; "
                      "continue with --resume --out <that file>", style="yellow")
        raise SystemExit(130) from None
    finally:
        progress.close()
    if dry_run:
        for item, plan in summary.planned:
            click.echo(f"{item.case_id}  {item.key:<24} {item.pass_:<7} {item.case.label():<48} {plan}")
        click.echo(f"{len(summary.planned)} records planned")
        return
    if summary.repaired:
        click.echo(f"repaired {summary.out}: dropped a partial last line left by an interrupted run", err=True)
    print_summary(summary.records, summary.rooflines)
    click.echo(f"\n{len(summary.records)} records written to {summary.out} in {summary.wall_s:.1f} s"
               + (f" ({summary.already_done} were already there)" if summary.already_done else ""))
