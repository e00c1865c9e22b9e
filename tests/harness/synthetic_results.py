"""Realistic results files (schema v1) made with the pydantic models, for the report and compare tests.

Latencies follow a simple model (time = FLOPs / variant throughput + launch cost) with
log-normal noise, so charts and comparisons see plausible numbers; statuses include skipped
(with the registry's kind of reason), error (with HTML in the message, to test escaping),
oom and crashed (with a stderr tail).
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np

from invobench.counting import analytic_counts
from invobench.registry import Case
from invobench.results import (
    MemoryInfo, Record, Roofline, RooflineFields, RunHeader, Stats, SuiteRef, TimerInfo, append_line, case_id,
)

#: FLOP/s each variant reaches on the synthetic machine (speed=1)
THROUGHPUT = {
    "involution.eager": 2.0e9, "involution.unfold": 1.2e9, "involution.compile": 5.0e9,
    "conv.depthwise": 6.0e9, "conv.dense": 8.0e10, "conv.grouped": 3.0e10, "attention.unfold": 1.0e9,
}
DEFAULT_VARIANTS = ("involution.eager", "involution.unfold", "conv.depthwise", "conv.dense")
HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'


def paper_cases(batch: Iterable[int] = (1,)) -> list[Case]:
    """RedNet-50 bottleneck shapes (C = 64..512 at 56..7), K = 7, G = C/16, plus G and K sweeps at C = 256, 14×14."""
    cases = []
    for B in batch:
        for C, H in ((64, 56), (128, 28), (256, 14), (512, 7)):
            cases.append(Case(B=B, C=C, H=H, W=H, K=7, G=C // 16))
        for G in (1, 4, 64):
            cases.append(Case(B=B, C=256, H=14, W=14, K=7, G=G))
        for K in (3, 5, 9):
            cases.append(Case(B=B, C=256, H=14, W=14, K=K, G=16))
    return cases


def fingerprint(hostname: str, cpu: str) -> dict:
    return {
        "invobench": "0.1.0", "time_utc": "2025-01-01T00:00:00+00:00", "git": {"commit": "0123456789abcdef", "dirty": False},
        "python": "3.12.0", "os": "Linux 6.1", "platform": "Linux-6.1-x86_64", "hostname": hostname,
        "cpu": {"model": cpu, "machine": "x86_64", "logical_cores": 2, "affinity_cores": 2},
        "torch": {"version": "2.13.0", "threads": 2, "interop_threads": 2, "mkldnn": True, "openmp": True},
        "cuda": {"available": False, "torch_cuda": None, "devices": []},
        "packages": {"numpy": "2.4"}, "env": {},
    }


def _samples(rng: np.random.Generator, median_ms: float, n: int, sigma: float) -> list[float]:
    return [float(v) for v in median_ms * np.exp(rng.normal(0.0, sigma, n))]


def _stats(samples: list[float]) -> Stats:
    a = np.asarray(samples)
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return Stats(n=a.size, median_ms=med, q1_ms=q1, q3_ms=q3, iqr_ms=q3 - q1, min_ms=a.min(), max_ms=a.max(),
                 mean_ms=a.mean(), std_ms=a.std(ddof=1) if a.size > 1 else 0.0)


def make_record(variant_key: str, case: Case, pass_: str, *, rng: np.random.Generator, speed: float = 1.0,
                slowdown: float = 1.0, n_samples: int = 30, sigma: float = 0.03, status: str = "ok",
                reasons: Optional[list[str]] = None, error: Optional[str] = None, keep_samples: bool = True,
                bandwidth_gbps: float = 12.5, peak_flops: float = 1.5e11, median_ms: Optional[float] = None) -> Record:
    """One record; `median_ms` replaces the latency model (with sigma=0 every sample equals it exactly)."""
    family, variant = variant_key.split(".", 1)
    counts = analytic_counts(family, variant, case)
    flops = counts.flops_fwd if pass_ == "fwd" else counts.flops_bwd if pass_ == "bwd" else counts.flops_fwd + counts.flops_bwd
    min_bytes = counts.min_bytes_fwd if pass_ == "fwd" else (counts.min_bytes_fwd or 0) + (counts.min_bytes_bwd or 0)
    record = Record(
        case_id=case_id(family, variant, pass_, case.as_dict()), family=family, variant=variant, **{"pass": pass_},
        case=case.as_dict(), label=case.label(), status=status, reasons=reasons or [], error=error,
        counts=counts.as_dict(), flops=flops, macs=flops // 2, params=counts.params,
        started_utc="2025-01-01T00:00:01+00:00",
    )
    if status != "ok":
        if status == "crashed":
            record.stderr_tail = "Fatal Python error: Segmentation fault\n  File <worker>, line 1"
        return record
    if median_ms is None:
        median_ms = (flops / (THROUGHPUT.get(variant_key, 2e9) * speed) * 1e3 + 0.02) * slowdown
    median = median_ms
    samples = _samples(rng, median, n_samples, sigma)
    record.stats = _stats(samples)
    record.samples_ms = samples if keep_samples else []
    record.timer = TimerInfo(method="perf_counter", overhead_ms=0.0004, threads=2, warmup_calls=3, stop_reason="converged")
    e = 4
    record.memory = MemoryInfo(peak_bytes=int(case.B * case.C * case.H * case.W * e * (case.K ** 2 if variant == "unfold" else 2)),
                               peak_method="profiler allocator events",
                               saved_for_backward_bytes=int(case.B * case.C * case.H * case.W * e * 2) if pass_ != "fwd" else None,
                               min_bytes=min_bytes)
    med_s = record.stats.median_ms * 1e-3
    bound_s = max(min_bytes / (bandwidth_gbps * 1e9), flops / peak_flops) if min_bytes else None
    record.roofline = RooflineFields(
        intensity_flop_per_byte=flops / min_bytes if min_bytes else None,
        achieved_gbps=min_bytes / med_s / 1e9 if min_bytes else None, achieved_flops=flops / med_s,
        bound_ms=bound_s * 1e3 if bound_s else None,
        bound_by=("memory" if min_bytes / (bandwidth_gbps * 1e9) > flops / peak_flops else "compute") if min_bytes else None,
        pct_of_roofline=100 * bound_s / med_s if bound_s else None,
    )
    return record


def write_run(
    path: Path, *, run_id: str = "run-a", hostname: str = "box-a", cpu: str = "Synthetic CPU @ 2.0GHz",
    variants: Iterable[str] = DEFAULT_VARIANTS, cases: Optional[list[Case]] = None, passes: Iterable[str] = ("fwd", "fwd+bwd"),
    speed: float = 1.0, slow: Optional[dict[str, float]] = None, n_samples: int = 30, sigma: float = 0.03, seed: int = 0,
    failures: bool = True, keep_samples: bool = True, suite: str = "synthetic",
    latency: Optional[Callable[[str, Case, str], float]] = None,
) -> Path:
    """Write one results file; `slow` multiplies chosen variants' latencies ({"involution.eager": 1.2});
    `latency(variant, case, pass)` gives the median in ms instead of the model (exact with sigma=0)."""
    rng = np.random.default_rng(seed)
    cases = cases if cases is not None else paper_cases()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    append_line(path, RunHeader(run_id=run_id, suite=SuiteRef(name=suite, path=f"suites/{suite}.yaml", sha256="ab" * 32),
                                fingerprint=fingerprint(hostname, cpu), options={"shard": None}))
    lines = [Roofline(device="cpu", dtype="float32", copy_bandwidth_gbps=12.5 * speed, matmul_peak_flops=1.5e11 * speed,
                      copy_bytes=1 << 28, matmul_n=2048, samples_copy_ms=[42.0, 43.0], samples_matmul_ms=[110.0, 111.0], threads=2)]
    for variant_key, case, pass_ in itertools.product(variants, cases, passes):
        lines.append(make_record(variant_key, case, pass_, rng=rng, speed=speed, slowdown=(slow or {}).get(variant_key, 1.0),
                                 n_samples=n_samples, sigma=sigma, keep_samples=keep_samples,
                                 median_ms=latency(variant_key, case, pass_) if latency else None))
    if failures:
        case = cases[0]
        lines += [
            make_record("involution.compile", case, "fwd", rng=rng, status="skipped",
                        reasons=["no C++ compiler for inductor (cc not found)"]),
            make_record("involution.unfold", case.replace(B=64), "fwd+bwd", rng=rng, status="oom",
                        reasons=["estimated peak 9.1 GiB exceeds --mem-budget 4.0 GiB"]),
            make_record("attention.unfold", case, "fwd", rng=rng, status="error", error=f"RuntimeError: bad value {HOSTILE}"),
            make_record("involution.eager", case.replace(B=3), "bwd", rng=rng, status="crashed"),
        ]
    with path.open("a") as fh:  # one write per line is the runner's job; here speed matters (10,000-record files)
        for line in lines:
            fh.write(line.model_dump_json(by_alias=True) + "\n")
    return path


def write_large_run(path: Path, n_records: int = 10_000, n_samples: int = 50, seed: int = 0) -> Path:
    """A run of `n_records` ok records over a wide sweep (B, C, H, K, G × 7 variants × 3 passes), written fast.

    One validated record per (variant, pass) is the template; per case only the parameters, counts,
    samples and stats change (samples and their quartiles computed for all records at once).
    `read_results` validates every line when the file is read.
    """
    import json

    rng = np.random.default_rng(seed)
    passes = ("fwd", "bwd", "fwd+bwd")
    items = []
    for B, C, H, K, g in itertools.product((1, 2, 4, 8, 16, 32), (64, 128, 256, 512), (7, 14, 28, 56), (3, 5, 7, 9), (1, 16)):
        case = Case(B=B, C=C, H=H, W=H, K=K, G=1 if g == 1 else C // g)
        items += [(v, case, p) for v in THROUGHPUT for p in passes]
    items = items[:n_records]
    templates = {(v, p): make_record(v, items[0][1], p, rng=rng, n_samples=3).model_dump(by_alias=True)
                 for v in THROUGHPUT for p in passes}
    noise = np.exp(rng.normal(0.0, 0.03, (len(items), n_samples)))
    medians = np.empty(len(items))
    counts_cache: dict = {}
    for i, (v, case, p) in enumerate(items):
        if (v, case) not in counts_cache:
            counts_cache[(v, case)] = analytic_counts(*v.split(".", 1), case)
        counts = counts_cache[(v, case)]
        flops = counts.flops_fwd if p == "fwd" else counts.flops_bwd if p == "bwd" else counts.flops_fwd + counts.flops_bwd
        medians[i] = flops / THROUGHPUT[v] * 1e3 + 0.02
    samples = noise * medians[:, None]
    q1, q2, q3 = np.percentile(samples, [25, 50, 75], axis=1)
    lines = [RunHeader(run_id="large", suite=SuiteRef(name="large", sha256="cd" * 32),
                       fingerprint=fingerprint("box-l", "Large CPU")).model_dump_json(by_alias=True),
             Roofline(device="cpu", dtype="float32", copy_bandwidth_gbps=12.5, matmul_peak_flops=1.5e11,
                      threads=2).model_dump_json(by_alias=True)]
    case_dicts: dict = {}
    for i, (v, case, p) in enumerate(items):
        family, variant = v.split(".", 1)
        counts = counts_cache[(v, case)]
        flops = counts.flops_fwd if p == "fwd" else counts.flops_bwd if p == "bwd" else counts.flops_fwd + counts.flops_bwd
        case_dict = case_dicts.setdefault(case, case.as_dict())
        row = dict(templates[(v, p)])
        row.update(case_id=case_id(family, variant, p, case_dict), case=case_dict, label=case.label(),
                   samples_ms=samples[i].round(6).tolist(), flops=flops, macs=flops // 2, params=counts.params,
                   counts=counts.as_dict(),
                   stats={"n": n_samples, "median_ms": q2[i], "q1_ms": q1[i], "q3_ms": q3[i], "iqr_ms": q3[i] - q1[i],
                          "min_ms": samples[i].min(), "max_ms": samples[i].max(), "mean_ms": samples[i].mean(),
                          "std_ms": samples[i].std(ddof=1)})
        row["memory"] = dict(row["memory"], peak_bytes=case.B * case.C * case.H * case.W * 8)
        row["roofline"] = None
        lines.append(json.dumps(row))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
