"""`invobench profile`: one case under torch.profiler (top-ops table + Chrome trace), or `--static` ptxas figures."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import click

from invobench.core import DEVICES, DTYPES, LEVELS, PASSES


def _static_table(archs: tuple[int, ...], dtypes: tuple[str, ...]) -> None:
    import pandas as pd

    from invobench.ops.involution.static_profile import collect

    profiles, notes = collect(list(archs), list(dtypes))
    if profiles:
        df = pd.DataFrame([p.as_dict() for p in profiles])
        cols = ["backend", "kernel", "config", "arch", "dtype", "registers", "shared_bytes", "spill_store_bytes",
                "spill_load_bytes", "stack_bytes", "error"]
        df = df[[c for c in cols if c in df.columns]].sort_values(["backend", "kernel", "config", "arch", "dtype"])
        df = df.astype(object).where(df.notna(), "")
        with pd.option_context("display.max_rows", None, "display.width", 250, "display.max_colwidth", 60):
            click.echo(df.to_string(index=False, na_rep=""))
    else:
        click.echo("no static profiles (no provider could run here)")
    for note in notes:
        click.echo(f"note: {note}", err=True)


def ncu_command(argv: list[str], kernel_regex: Optional[str], report: str) -> str:
    """The Nsight Compute command line that profiles the same case (one warm-up, one profiled iteration)."""
    rerun = [a for a in argv if a not in ("--no-trace",)]
    for flag in ("--iters", "--warmup", "--trace"):  # drop the user's values, set ours below
        while flag in rerun:
            i = rerun.index(flag)
            del rerun[i:i + 2]
    cmd = ["ncu", "--set", "full", "--target-processes", "all", "--launch-count", "20", "-o", report]
    if kernel_regex:
        cmd += ["-k", f"regex:{kernel_regex}"]
    cmd += [sys.executable, "-m", "invobench", "profile", *rerun, "--iters", "1", "--warmup", "1", "--no-trace"]
    return shlex.join(cmd)


@click.command("profile")
@click.option("--variant", default="involution.eager", show_default=True, help="family.name of the variant to profile.")
@click.option("--B", "B", type=int, default=1, show_default=True)
@click.option("--C", "C", type=int, default=64, show_default=True)
@click.option("--size", type=int, default=56, show_default=True, help="H = W = size (unless --H/--W).")
@click.option("--H", "H", type=int, default=None)
@click.option("--W", "W", type=int, default=None)
@click.option("--K", "K", type=int, default=7, show_default=True)
@click.option("--G", "G", type=int, default=None, help="Groups / heads (default C / group_channels).")
@click.option("--group-channels", type=int, default=16, show_default=True)
@click.option("--stride", type=int, default=1, show_default=True)
@click.option("--dilation", type=int, default=1, show_default=True)
@click.option("--dtype", type=click.Choice(list(DTYPES)), default="float32", show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default="cpu", show_default=True)
@click.option("--level", type=click.Choice(LEVELS), default="op", show_default=True)
@click.option("--pass", "pass_", type=click.Choice(PASSES), default="fwd", show_default=True)
@click.option("--warmup", type=int, default=3, show_default=True, help="Unprofiled calls first (the first may compile).")
@click.option("--iters", type=int, default=5, show_default=True, help="Profiled calls.")
@click.option("--rows", type=int, default=25, show_default=True, help="Rows of the top-ops table.")
@click.option("--trace", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Chrome trace file (open in chrome://tracing or Perfetto). Default: out/profile-<variant>-<pass>.json")
@click.option("--no-trace", is_flag=True, help="Do not write a trace file.")
@click.option("--static", is_flag=True, help="Instead: registers, shared memory and spills of the GPU kernels from ptxas.")
@click.option("--arch", "archs", type=int, multiple=True, help="--static: SM architectures (default 80 and 90).")
def command(variant, B, C, size, H, W, K, G, group_channels, stride, dilation, dtype, device, level, pass_, warmup, iters,
            rows, trace, no_trace, static, archs):
    """Profile one case of one variant: the top operators by self time and a Chrome trace.

    On CUDA it also prints the Nsight Compute (ncu) command line that profiles the same case.
    With --static it prints the ptxas figures of every Triton/CUDA kernel configuration instead.
    """
    if static:
        _static_table(archs or (80, 90), (dtype,))
        return
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    from invobench.bench.worker import PassCall
    from invobench.core import Case
    from invobench.registry import get

    try:
        spec = get(variant)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--variant") from None
    if G is None:
        if C % group_channels:
            raise click.BadParameter(f"C={C} is not divisible by group_channels={group_channels}", param_hint="--group-channels")
        G = C // group_channels
    case = Case(B=B, C=C, H=H or size, W=W or size, K=K, G=G, stride=stride, dilation=dilation, dtype=dtype,
                device=device, level=level)
    reasons = spec.why_not(case, backward=pass_ != "fwd")
    if reasons:
        raise click.ClickException(f"{spec.key} cannot run {case.label()}: " + "; ".join(reasons))
    grad = torch.no_grad() if pass_ == "fwd" else torch.enable_grad()
    with grad:
        call = PassCall(spec, case, pass_)
        if call.skip_reason:
            raise click.ClickException(call.skip_reason)
        sync = (lambda: torch.cuda.synchronize()) if device == "cuda" else (lambda: None)
        for _ in range(warmup):
            call.call()
        sync()
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
        with profile(activities=activities, record_shapes=True, profile_memory=True) as prof:
            for i in range(iters):
                with record_function(f"{spec.key} {pass_} #{i}"):
                    call.call()
                sync()
    sort = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
    click.echo(f"{spec.key} {pass_} {case.label()}: {iters} profiled calls after {warmup} warm-up calls, "
               f"{torch.get_num_threads()} threads")
    click.echo(prof.key_averages().table(sort_by=sort, row_limit=rows))
    if not no_trace:
        path = trace or Path("out") / f"profile-{spec.key}-{pass_.replace('+', '_')}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        prof.export_chrome_trace(str(path))
        click.echo(f"Chrome trace: {path} (chrome://tracing or https://ui.perfetto.dev)")
    if device == "cuda":
        regex = "involution" if spec.family == "involution" else None
        click.echo("Nsight Compute, same case:\n  " + ncu_command(sys.argv[2:], regex,
                                                                   f"out/ncu-{spec.key}-{pass_.replace('+', '_')}"))
