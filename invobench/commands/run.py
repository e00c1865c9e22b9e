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
@click.option("--executor", type=click.Choice(["local", "slurm"]), default=None,
              help="Run --shards N shards as jobs through submitit (pip install 'invobench[slurm]'): `slurm` submits "
                   "N SLURM jobs, `local` runs them on this machine, one per GPU; then merges them into --out. "
                   "Shard files and job logs go to <out>.shards/ (docs/cluster.md).")
@click.option("--shards", type=click.IntRange(min=1), default=None, help="How many shards (jobs) --executor splits the run into.")
@click.option("--partition", default=None, help="SLURM partition of the jobs (--executor slurm).")
@click.option("--gpus-per-job", type=click.IntRange(min=0), default=None,
              help="GPUs each SLURM job asks for (default: 1 when the run has CUDA cases, else 0).")
@click.option("--time-min", type=click.IntRange(min=1), default=None,
              help="Time limit of each job in minutes (default: 60 on SLURM, none locally). A shard that runs out of "
                   "time keeps its records: --resume continues it.")
@click.option("--slurm", "slurm_options", multiple=True, metavar="KEY=VALUE",
              help="Another sbatch option for every job, without its dashes: --slurm account=proj --slurm "
                   "cpus-per-task=8 --slurm exclusive.")
@click.option("--parallel", is_flag=True, help="--executor local on CPU: run the shards at once, although timings that "
                                               "share cores disturb each other (by default they run one after another).")
def command(suite, device, variants, dtypes, out, resume, shard, mem_budget, quick, threads, dry_run, executor, shards,
            partition, gpus_per_job, time_min, slurm_options, parallel):
    """Run SUITE (a name such as `smoke` for suites/smoke.yaml, or a path) and write a results file.

    With --executor and --shards N the run is split into N jobs (SLURM, or this machine's GPUs) whose
    files are merged into --out; --resume after an interruption or a failed job resubmits only the
    shards that are not complete.
    """
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
    cluster_only = {"--shards": shards, "--partition": partition, "--gpus-per-job": gpus_per_job, "--time-min": time_min,
                    "--slurm": slurm_options, "--parallel": parallel}
    if executor is None and any(v not in (None, (), False) for v in cluster_only.values()):
        given = next(k for k, v in cluster_only.items() if v not in (None, (), False))
        raise click.BadParameter("applies only to a run split into jobs: add --executor local|slurm (to run one "
                                 "shard in this process, use --shard k/n)", param_hint=given)
    if executor is not None and shards is None:
        raise click.BadParameter("--executor needs --shards N, the number of jobs to split the run into",
                                 param_hint="--shards")

    def on_sigterm(signum, frame):  # a cancelled CI job: stop the worker and leave the file valid, as Ctrl-C does
        raise KeyboardInterrupt

    import signal

    signal.signal(signal.SIGTERM, on_sigterm)
    if executor is not None:
        _run_sharded(config, executor, shards, partition, gpus_per_job, time_min, list(slurm_options), parallel, console)
        return
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


def _run_sharded(config, executor, shards, partition, gpus_per_job, time_min, slurm_options, parallel, console) -> None:
    """--executor: the shards as jobs, their states as they change, the merge; exit 1 when a shard failed."""
    from invobench.bench.cluster import (
        ClusterConfig, JobSubmitted, ShardEnded, ShardsInterrupted, ShardsPlanned, ShardsProgress, run_cluster,
    )
    from invobench.bench.runner import RunnerError
    from invobench.bench.suite import SuiteError

    # a line when a shard's state changes; the record count on a live status line (on a terminal only, so that
    # a CI log does not get a line per record)
    status = console.status("starting") if console.is_terminal else None
    last_counts: dict = {}

    def on_event(event) -> None:
        nonlocal last_counts
        if isinstance(event, ShardsPlanned):
            kept = f"; {len(event.complete)} complete already" if event.complete else ""
            console.print(f"{event.shards} shards in {event.folder}: {len(event.to_run)} to run{kept}", highlight=False)
            if event.note:
                console.print(f"note: {event.note}", style="yellow", highlight=False)
        elif isinstance(event, JobSubmitted):
            what = "waiting for job" if event.reattached else "submitted job"
            gpu = f" on GPU {event.gpu}" if event.gpu is not None else ""
            console.print(f"shard {event.shard}: {what} {event.job_id}{gpu}, log {event.log}", highlight=False)
        elif isinstance(event, ShardsProgress):
            text = " · ".join(f"{v} {k}" for k, v in event.counts().items()) + f" · {event.records}/{event.total} records"
            if event.counts() != last_counts:
                console.print(f"shards: {text}", highlight=False)
                last_counts = event.counts()
            if status is not None:
                status.update(f"shards: {text}")
        elif isinstance(event, ShardEnded):
            o = event.outcome
            if o.state == "done":
                console.print(f"shard {o.shard}: done, {o.records} records" + (f" on {o.host}" if o.host else ""),
                              style="green", highlight=False)
            else:
                console.print(f"shard {o.shard}: failed ({o.reason}); log {o.stdout}", style="red", highlight=False,
                              markup=False)

    cluster = ClusterConfig(executor=executor, shards=shards, partition=partition, gpus_per_job=gpus_per_job,
                            time_min=time_min, slurm=slurm_options, parallel=parallel)
    if status is not None:
        status.start()
    try:
        summary = run_cluster(config, cluster, on_event=on_event)
    except (RunnerError, SuiteError) as exc:
        raise click.ClickException(str(exc)) from None
    except ShardsInterrupted as exc:
        console.print(str(exc), style="yellow", highlight=False, markup=False)
        raise SystemExit(130) from None
    finally:
        if status is not None:
            status.stop()
    if summary.merged:
        from invobench.commands.show import print_summary
        from invobench.results import read_results

        merged = read_results(summary.out)
        print_summary(merged.records, merged.rooflines)
    for w in summary.warnings:
        click.echo(f"warning: {w}", err=True)
    if summary.merged:
        click.echo(f"merged {sum(s.state == 'done' for s in summary.shards)} of {shards} shards, "
                   f"{summary.merged_records} records, into {summary.out} in {summary.wall_s:.1f} s")
    if summary.failed:
        for o in summary.failed:
            click.echo(f"shard {o.shard} failed: {o.reason}\n  log:    {o.stdout}\n  errors: {o.stderr}", err=True)
        click.echo(f"{len(summary.failed)} of {shards} shards failed; continue with the same command and --resume "
                   f"(it resubmits only those)", err=True)
        raise SystemExit(1)
