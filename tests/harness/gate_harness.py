"""Evidence for the regression gate on real measurements: an A/A check and deliberately slowed variants.

TEST ONLY. `slowed_variant(fraction)` registers `involution.eager-slowed<pct>`: the eager tap loop
of spec §1 plus `fraction`·K² extra taps' worth of the same multiply-adds (a whole tap, then a
partial tap over a share of each group's channels), whose result is discarded. It never enters
the public registry: it is registered here, at test time, and removed afterwards.

`measure_pair` emulates two runs (A = the code on main, B = the code of a pull request) on this
machine: for every case it builds A's and B's workloads and a same-run reference (depthwise
conv) for each, then samples the four in rounds of random order (A B B A …, STYLE.md), so load
from the other users of this 2-core box hits both runs alike. Each run is written as a results
file (schema v1) that `invobench compare` reads like any other.

    python tests/harness/gate_harness.py --aa-repeats 5 --slowdowns 0.05,0.10,0.15,0.20

prints the false-alarm count of repeated A/A checks and the share of cases each slowdown flags.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F

from invobench import registry
from invobench.counting import analytic_counts
from invobench.env import fingerprint
from invobench.ops.involution.variant import involution_variant
from invobench.ops.involution.reference import _tap_slices, involution_reference_backward
from invobench.core import Case
from invobench.core import padding_for
from invobench.results import Record, RunHeader, Stats, SuiteRef, TimerInfo, append_line, case_id
from invobench.workloads.involution import build_for

REFERENCE = "conv.depthwise"
#: rounds of the interleaved sampler: each variant of each run gets this many samples per case
ROUNDS = 81
WARMUP_CALLS = 3


def gate_cases() -> list[Case]:
    """24 fwd cases of ~0.3–3 ms on one core: paper-like C/H pairs at small batch, K 3–7, G from 1 to C/4."""
    cases = []
    for C, H in ((32, 28), (64, 14), (64, 28), (128, 14)):
        for K in (3, 5, 7):
            for G in (1, C // 16):
                cases.append(Case(B=1, C=C, H=H, W=H, K=K, G=G))
    return cases


# ---- the slowed variant ------------------------------------------------------------------------

def involution_slowed(fraction: float) -> Callable:
    """The eager forward (spec §1 tap loop) plus fraction·K² taps' worth of the same multiply-adds, discarded."""

    def forward(x: torch.Tensor, kernel: torch.Tensor, kernel_size: int, stride: int = 1, dilation: int = 1) -> torch.Tensor:
        B, C, H, W = x.shape
        G, Ho, Wo = kernel.shape[1], kernel.shape[3], kernel.shape[4]
        K, p, Cg = kernel_size, padding_for(kernel_size, dilation), C // G
        xg = F.pad(x, (p, p, p, p)).reshape(B, G, Cg, H + 2 * p, W + 2 * p)
        out = x.new_zeros(B, G, Cg, Ho, Wo)
        for i in range(K):
            for j in range(K):
                rows, cols = _tap_slices(i, j, Ho, Wo, stride, dilation)
                out = out + kernel[:, :, i * K + j].unsqueeze(2) * xg[..., rows, cols]
        # the extra work, exactly what a tap costs (one product, one sum, one new tensor each), discarded:
        # whole taps, then one partial tap over the first `share` of each group's channels
        extra = fraction * K * K
        tap = 0
        while extra > 1e-9:
            share = min(1.0, extra)
            channels = max(1, round(share * Cg))
            i, j = divmod(tap % (K * K), K)
            rows, cols = _tap_slices(i, j, Ho, Wo, stride, dilation)
            _discarded = out[:, :, :channels] + kernel[:, :, tap % (K * K)].unsqueeze(2) * xg[:, :, :channels, rows, cols]
            extra -= share
            tap += 1
        return out.reshape(B, C, Ho, Wo)

    return forward


def slowed_name(fraction: float) -> str:
    return f"eager-slowed{round(fraction * 100)}"


#: name -> (registry entry, custom op), made once per process (a torch custom op can't be defined twice)
_SLOWED: dict[str, registry.Variant] = {}


def _slowed(fraction: float) -> registry.Variant:
    """`involution.eager-slowed<pct>`, its custom op defined once per process."""
    name = slowed_name(fraction)
    if name not in _SLOWED:
        declared = involution_variant(
            name, involution_slowed(fraction), involution_reference_backward, devices=("cpu", "cuda"),
            dtypes=("float64", "float32"),
            description=f"TEST ONLY: eager plus {fraction:.0%} extra taps of multiply-adds (regression-gate evidence)",
        )
        _SLOWED[name] = dataclasses.replace(declared, build=build_for(declared))
    return _SLOWED[name]


@contextlib.contextmanager
def slowed_variant(fraction: float) -> Iterator[registry.Variant]:
    """Register `involution.eager-slowed<pct>` for the duration of the block (test processes only)."""
    variant = registry.register(_slowed(fraction))
    try:
        yield variant
    finally:  # gone again: tests that enumerate the registry never see it
        registry.unregister(variant.key)


# ---- the slowed variant inside `invobench run` (a plugin) -----------------------------------------

#: INVOBENCH_SLOW_EAGER=0.20 with INVOBENCH_PLUGINS=tests/harness/gate_harness.py: involution.eager runs the slowed code
SLOW_EAGER_ENV = "INVOBENCH_SLOW_EAGER"


def register_plugin() -> None:
    """Runner/worker plugin hook: pretend a pull request made involution.eager do `$INVOBENCH_SLOW_EAGER` extra work.

    The slowed implementation is registered as `involution.eager-slowed<pct>` and then *also* under
    the name `involution.eager`, in this process only, so its records carry eager's case ids and
    `invobench compare` matches them against an unmodified run.
    """
    fraction = float(os.environ.get(SLOW_EAGER_ENV, "0") or 0)
    if fraction <= 0:
        return
    variant = _slowed(fraction)
    registry.register(dataclasses.replace(variant, name="eager", description=f"TEST ONLY: eager slowed by {fraction:.0%} extra taps"))


# ---- interleaved measurement of two runs -------------------------------------------------------

def _stats(samples: list[float]) -> Stats:
    a = np.asarray(samples)
    q1, median, q3 = np.percentile(a, [25, 50, 75])
    return Stats(n=a.size, median_ms=median, q1_ms=q1, q3_ms=q3, iqr_ms=q3 - q1, min_ms=a.min(), max_ms=a.max(),
                 mean_ms=a.mean(), std_ms=a.std(ddof=1) if a.size > 1 else 0.0)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    # one thread per call: two threads on a shared 2-core box add scheduler noise to every sample
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _record(variant_key: str, case: Case, samples: list[float], implementation: str, method: str) -> Record:
    family, variant = variant_key.split(".", 1)
    counts = analytic_counts(family, variant, case)
    return Record(
        case_id=case_id(family, variant, "fwd", case.as_dict()), family=family, variant=variant, **{"pass": "fwd"},
        case=case.as_dict(), label=case.label(), status="ok", samples_ms=samples, stats=_stats(samples),
        timer=TimerInfo(method=method, threads=1, warmup_calls=WARMUP_CALLS, stop_reason="max_samples"),
        counts=counts.as_dict(), flops=counts.flops_fwd, macs=counts.macs_fwd, params=counts.params,
        info={"implementation": implementation},
    )


#: how each call is timed; both clocks read around the same call, so the two files of a run share every sample's moment
CLOCKS = {
    "wall": ("perf_counter", time.perf_counter_ns),
    # CPU time of the calling thread: with one torch thread all the work runs here, and time spent
    # preempted by the other users of a shared box is left out
    "cpu": ("thread_time", time.thread_time_ns),
}


def measure_pair(out_dir: Path, *, b_variant: str = "involution.eager", cases: Optional[list[Case]] = None,
                 rounds: int = ROUNDS, seed: int = 0, tag: str = "gate") -> dict[str, tuple[Path, Path]]:
    """Measure run A (involution.eager) and run B (`b_variant`, recorded under the name eager) interleaved.

    Both runs also measure conv.depthwise (the same-run reference for --normalize-by). Every call
    is timed by the wall clock and by the thread's CPU clock at once. Returns {clock: (A file, B file)}.
    """
    cases = cases if cases is not None else gate_cases()
    rng = random.Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {(clock, run): out_dir / f"{tag}-{run}.{clock}.jsonl" for clock in CLOCKS for run in "AB"}
    env = fingerprint()
    for (clock, run), path in paths.items():
        if path.exists():
            path.unlink()
        append_line(path, RunHeader(
            run_id=f"{tag}-{run}-{clock}-{uuid.uuid4().hex[:6]}",
            suite=SuiteRef(name="gate-evidence", path="tests/harness/gate_harness.py", sha256="0" * 64,
                           config={"cases": len(cases), "rounds": rounds, "clock": CLOCKS[clock][0]}),
            fingerprint=env,
            options={"interleaved_with": "AB", "implementation": b_variant if run == "B" else "involution.eager"},
        ))
    implementations = {("A", "involution.eager"): "involution.eager", ("B", "involution.eager"): b_variant,
                       ("A", REFERENCE): REFERENCE, ("B", REFERENCE): REFERENCE}
    wall_ns, cpu_ns = time.perf_counter_ns, time.thread_time_ns
    with _one_thread(), torch.inference_mode():
        for case in cases:
            calls = {key: registry.get(impl).build(case, False).fn for key, impl in implementations.items()}
            for fn in calls.values():
                for _ in range(WARMUP_CALLS):
                    fn()
            samples: dict[tuple, dict[str, list[float]]] = {key: {"wall": [], "cpu": []} for key in calls}
            order = list(calls)
            gc_was_enabled = gc.isenabled()
            gc.disable()
            try:
                for _ in range(rounds):
                    rng.shuffle(order)
                    for key in order:
                        fn = calls[key]
                        w0, c0 = wall_ns(), cpu_ns()
                        fn()
                        c1, w1 = cpu_ns(), wall_ns()
                        samples[key]["wall"].append((w1 - w0) / 1e6)
                        samples[key]["cpu"].append((c1 - c0) / 1e6)
            finally:
                if gc_was_enabled:
                    gc.enable()
            for (run, recorded_as), by_clock in samples.items():
                for clock, values in by_clock.items():
                    append_line(paths[(clock, run)], _record(recorded_as, case, values,
                                                             implementations[(run, recorded_as)], CLOCKS[clock][0]))
    return {clock: (paths[(clock, "A")], paths[(clock, "B")]) for clock in CLOCKS}


# ---- two real `invobench run`s, alternating in small shards -------------------------------------

GATE_SUITE = Path(__file__).resolve().parents[2] / "benchmarks" / "gate.yaml"


def run_alternating_shards(out_dir: Path, *, suite: Path = GATE_SUITE, shards: int = 6, slow_b: float = 0.0,
                           threads: int = 1, timeout_s: float = 900) -> tuple[Path, Path]:
    """Two real runs, A and B, of `suite` with `invobench run`, alternating shard by shard (A B, B A, A B, …).

    B runs the slowed eager when `slow_b` > 0 (through this module as an INVOBENCH_PLUGINS plugin).
    Each side's shards are merged with `invobench merge`. Returns the two merged results files.
    """
    import subprocess

    out_dir.mkdir(parents=True, exist_ok=True)
    env_a = {k: v for k, v in os.environ.items() if k not in (SLOW_EAGER_ENV, "INVOBENCH_PLUGINS")}
    env_b = dict(env_a, **({"INVOBENCH_PLUGINS": str(Path(__file__).resolve()), SLOW_EAGER_ENV: str(slow_b)} if slow_b else {}))
    cli = [sys.executable, "-m", "invobench"]
    files: dict[str, list[Path]] = {"A": [], "B": []}
    for k in range(1, shards + 1):
        for side in ("AB" if k % 2 else "BA"):
            out = out_dir / f"{side}-shard{k}.jsonl"
            out.unlink(missing_ok=True)
            subprocess.run(cli + ["run", str(suite), "--shard", f"{k}/{shards}", "--threads", str(threads), "--out", str(out)],
                           env=env_a if side == "A" else env_b, check=True, capture_output=True, timeout=timeout_s)
            files[side].append(out)
    merged = []
    for side in "AB":
        target = out_dir / f"{side}.jsonl"
        target.unlink(missing_ok=True)
        subprocess.run(cli + ["merge", str(target), *map(str, files[side])], check=True, capture_output=True, timeout=300)
        merged.append(target)
    return merged[0], merged[1]


# ---- the evidence sweep ------------------------------------------------------------------------

def _compare(a: Path, b: Path, normalize: bool):
    from invobench.report.compare import compare_runs
    from invobench.results import read_results

    return compare_runs(read_results(a), read_results(b), normalize_by=REFERENCE if normalize else None)


def _line(name: str, pair: dict[str, tuple[Path, Path]], n_cases: int) -> str:
    cells = []
    for clock in CLOCKS:
        a, b = pair[clock]
        plain, norm = _compare(a, b, False), _compare(a, b, True)
        eager = [c for c in plain.cases if c.variant_key == "involution.eager" and c.ratio]
        flagged_plain = sum(c.verdict == "regression" for c in eager)
        flagged_norm = sum(c.verdict == "regression" for c in norm.cases if c.variant_key == "involution.eager")
        false_ref = sum(c.verdict in ("regression", "improvement") for c in plain.cases if c.variant_key == REFERENCE)
        cells.append(f"{flagged_plain:>3}/{n_cases} {flagged_norm:>3}/{n_cases} {false_ref:>3}/{n_cases} "
                     f"{float(np.median([c.ratio for c in eager])):>6.3f}")
    return f"{name:<22} " + "   ".join(cells)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--aa-repeats", type=int, default=5, help="independent A/A checks")
    parser.add_argument("--slowdowns", default="0.05,0.10,0.15,0.20", help="extra-work fractions to sweep")
    parser.add_argument("--out", default="build/gate-evidence", help="where the results files go")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args(argv)
    out = Path(args.out)
    n_cases = len(gate_cases())
    print(f"{n_cases} cases × {args.rounds} interleaved samples per variant and run; threshold 5%, alpha 0.05.")
    print("Per clock: eager cases flagged as regressions (plain, ÷ depthwise), depthwise cases flagged either way "
          "(false alarms), median eager ratio B/A.")
    print(f"{'check':<22} {'wall clock (perf_counter)':<29}   {'thread CPU time':<29}")
    for k in range(args.aa_repeats):
        print(_line(f"A/A #{k + 1}", measure_pair(out, seed=k, rounds=args.rounds, tag=f"aa{k}"), n_cases), flush=True)
    for fraction in [float(f) for f in args.slowdowns.split(",") if f]:
        with slowed_variant(fraction) as variant:
            pair = measure_pair(out, b_variant=variant.key, rounds=args.rounds, tag=f"slow{round(fraction * 100)}")
        print(_line(f"+{fraction:.0%} extra taps", pair, n_cases), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
