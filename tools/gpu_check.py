"""The Python half of the GPU check (tools/gpu_check.sh runs it; docs/gpu.md says what the check does).

    python tools/gpu_check.py estimate [--suite gpu-quick]     # the suite's expected duration on an H100
    python tools/gpu_check.py available                        # which CUDA-capable op variants can run here
    python tools/gpu_check.py precompile [--arch 90]           # NVRTC: every dtype and K the check uses, in parallel
    python tools/gpu_check.py check --out FILE                 # invobench check on CUDA, one process per variant/dtype
    python tools/gpu_check.py prewarm --dir DIR                # the suite once, quick and sharded: fills the compile caches
    python tools/gpu_check.py kernels --case small|main        # each CUDA kernel once (compute-sanitizer, ncu)
    python tools/gpu_check.py summary --results R --steps S --out summary.md [--ncu CSV] [--check FILE]

Each subcommand prints what it did and exits non-zero with a message naming what failed.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: the checkout's package
    sys.path.insert(0, str(ROOT))

SUITE = "gpu-quick"

# ---------------------------------------------------------------------------------------------
# The suite's duration on an H100
# ---------------------------------------------------------------------------------------------

#: what the estimate assumes of the GPU machine and of the runner (docs/gpu.md, "How long it takes")
BANDWIDTH_BPS = 3.0e12            # an H100's measured device-to-device copy, bytes read + written per second
MODEL_FLOPS = 20e12               # whole networks (no byte model): FLOPs at this rate, a low share of the bf16 peak
SAMPLE_OVERHEAD_S = 1.0e-4        # per sample: the L2 flush (2 × 50 MB written), two events, a synchronize
ITEM_OVERHEAD_S = 0.1             # per variant and case: inputs, the memory measurement's bookkeeping, gc, replies
GROUP_OVERHEAD_S = 0.05           # per case group: the timer's own overhead measured, heap released
START_S = 20.0                    # the runner and its worker: import torch and the registry, start CUDA
ROOFLINE_MATMUL_FIRST_N = 1024    # invobench.bench.roofline's ladder on a GPU starts here
#: first-call costs once the caches are warm (the check's prewarm step): seconds per (variant, case)
#: (Triton: 3 kernels × its autotune configurations, each timed once; RedNet-50: 8 involution layer shapes)
WARM_FIRST_CALL_S = {"involution.compile": 2 * 2.0, "attention.flex-compile": 2 * 3.0,  # dynamo + cached graphs
                     "involution.triton": 3 * 4 * 0.1, "involution.triton-simple": 3 * 2 * 0.1,
                     "model.rednet50-triton": 8 * 3 * 4 * 0.1, "model.rednet50-cuda": 2.0, "model.resnet50": 2.0}
#: the same with cold caches (no prewarm): inductor and Triton compiles per (variant, shape, dtype)
COLD_FIRST_CALL_S = {"involution.compile": 10.0 + 20.0, "attention.flex-compile": 10.0 + 25.0,
                     "involution.triton": 3 * 4 * 1.0, "involution.triton-simple": 3 * 2 * 1.0,
                     "involution.cuda": 3.0, "involution.cuda-simple": 3.0,
                     "model.rednet50-triton": 8 * 3 * 4 * 1.0, "model.rednet50-cuda": 2 * 3.0, "model.resnet50": 2.0}


@dataclass
class Estimate:
    suite: str
    items: int = 0
    runnable: int = 0
    groups: int = 0
    start_s: float = START_S
    roofline_s: float = 0.0
    sampling_s: float = 0.0      # warm-up, samples and memory calls of every runnable item, from the byte model
    overhead_s: float = 0.0      # per-item and per-group bookkeeping
    warm_compile_s: float = 0.0  # first calls with warm caches (dynamo, cached graphs, autotune)
    cold_compile_s: float = 0.0  # the same with cold caches
    by_variant: dict = field(default_factory=dict)

    @property
    def formula_s(self) -> float:
        """The issue's estimate: minimum bytes at 3 TB/s, the sampling budget, worker start-up (and the roofline)."""
        return self.start_s + self.roofline_s + self.sampling_s + self.overhead_s

    @property
    def total_s(self) -> float:
        return self.formula_s + self.warm_compile_s

    def lines(self) -> list[str]:
        out = [f"suite {self.suite}: {self.items} records, {self.runnable} measured on an H100, {self.groups} case groups;"
               " sampling per variant (minimum bytes at 3 TB/s, the suite's budget):"]
        for key, seconds in sorted(self.by_variant.items(), key=lambda kv: -kv[1]):
            out.append(f"    {key:28s} {seconds:6.1f} s")
        out += [f"start-up {self.start_s:.0f} s + roofline {self.roofline_s:.0f} s + sampling {self.sampling_s:.0f} s + "
                f"bookkeeping {self.overhead_s:.0f} s = {self.formula_s:.0f} s; first calls: {self.warm_compile_s:.0f} s "
                f"with warm caches, {self.cold_compile_s:.0f} s cold",
                f"estimate: {self.total_s:.0f} s ({self.total_s / 60:.1f} min) with the caches warmed by the prewarm"]
        return out


def call_seconds(item) -> float:
    """A lower bound of one call of an item on an H100: its minimum bytes at BANDWIDTH_BPS (models: FLOPs)."""
    from invobench.bench.records import analytic_counts_or_none, pass_counts

    counts = analytic_counts_or_none(item)
    macs, min_bytes = pass_counts(counts, item.pass_)
    if min_bytes:
        return min_bytes / BANDWIDTH_BPS
    if macs:
        passes = 3 if item.pass_ == "train" else 1  # a training step: forward + backward (twice the forward)
        return passes * 2 * macs / MODEL_FLOPS
    return 0.0


def sampling_seconds(t: float, budget) -> float:
    """Time the sampler spends on one variant of a case when it never converges early (an upper bound):
    the first call, warm-up, samples until case_s after min_samples (at most max_samples), two memory calls."""
    per_sample = t + SAMPLE_OVERHEAD_S
    samples = min(budget.max_samples * per_sample, max(budget.case_s, budget.min_samples * per_sample))
    return t + max(budget.warmup_s, t) + samples + 2 * t


def runs_on_gpu(variant, case) -> bool:
    """Whether a variant runs a case on an H100: its declared levels, devices and dtypes (not this machine's)."""
    return case.level in variant.levels and case.device in variant.devices and case.dtype in variant.dtypes


def estimate(suite: str = SUITE) -> Estimate:
    from invobench.bench.cases import expand_suite, group_items
    from invobench.bench.suite import load_suite
    from invobench.registry import all_variants, get

    known = [v.key for v in all_variants()]
    loaded = load_suite(suite, known)
    items = expand_suite(loaded, known)
    budget, roof = loaded.suite.budget, loaded.suite.roofline
    est = Estimate(loaded.name, items=len(items), groups=len(group_items(items)))
    seen_compiles: set = set()
    for item in items:
        variant = get(item.key)
        if not runs_on_gpu(variant, item.case):
            continue
        est.runnable += 1
        seconds = sampling_seconds(call_seconds(item), budget)
        est.sampling_s += seconds
        est.overhead_s += ITEM_OVERHEAD_S
        est.by_variant[item.key] = est.by_variant.get(item.key, 0.0) + seconds
        shape = (item.key, item.case.replace(level="op").as_dict().__repr__())  # compiled once per shape and dtype
        if shape not in seen_compiles:
            seen_compiles.add(shape)
            est.warm_compile_s += WARM_FIRST_CALL_S.get(item.key, 0.0)
            est.cold_compile_s += COLD_FIRST_CALL_S.get(item.key, 0.0)
    est.overhead_s += est.groups * GROUP_OVERHEAD_S
    dtypes = {item.case.dtype for item in items if item.case.device == "cuda"}
    ladder = max(1, int(math.log2(max(roof.matmul_max_n, ROOFLINE_MATMUL_FIRST_N) / ROOFLINE_MATMUL_FIRST_N)) + 1)
    est.roofline_s = len(dtypes) * (1 + ladder) * (roof.time_s + 0.1)
    return est


def available_line() -> str:
    """Which op variants can run on CUDA here, and why the others cannot (the `env and list` step's last line)."""
    from invobench.core import Case
    from invobench.registry import all_variants

    rows = [v for v in all_variants() if "cuda" in v.devices and v.family != "model"]
    reasons = {v.key: v.why_not(Case(B=1, C=16, H=28, W=28, K=3, G=1, dtype=v.dtypes[0], device="cuda",
                                     level=v.levels[0])) for v in rows}
    ok = [k for k, r in reasons.items() if not r]
    line = f"{len(ok)} of {len(rows)} op variants can run on CUDA here"
    if len(ok) < len(rows):
        first = next(r for r in reasons.values() if r)[0]
        line += f"; not: {', '.join(k for k, r in reasons.items() if r)} ({first})"
    return line


# ---------------------------------------------------------------------------------------------
# NVRTC: compile every module the check needs before the tests and the suite ask for them
# ---------------------------------------------------------------------------------------------

#: K of every CUDA launch in the check: the gpu tests (1, 3, 5, 7, 11), invobench check (1, 3, 5, 7), the suite
#: and RedNet-50 (3, 7)
PRECOMPILE_K = (1, 3, 5, 7, 11)


def _compile_one(job: tuple[str, int, int]) -> tuple[str, float, str]:
    from invobench.ops.involution.cuda_nvrtc import compile_module

    dtype, k, arch = job
    t0 = time.perf_counter()
    try:
        path = compile_module(dtype, k, arch)
        return f"{dtype} K={k} sm_{arch}", time.perf_counter() - t0, path.name
    except Exception as exc:  # reported per module; the caller fails the step
        return f"{dtype} K={k} sm_{arch}", time.perf_counter() - t0, f"FAILED: {type(exc).__name__}: {exc}"


def device_arch() -> Optional[int]:
    import torch

    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability(0)
    return major * 10 + minor


def precompile(arch: Optional[int], jobs: int) -> int:
    """NVRTC-compile every (dtype, K) for `arch` (this GPU's by default) into the loader's disk cache."""
    from concurrent.futures import ProcessPoolExecutor

    from invobench.ops.involution.cuda_nvrtc import DTYPES, cuda_cache_dir, requirements

    reasons = requirements()
    if reasons and any("NVRTC" in r or "CuPy" in r or "headers" in r for r in reasons):
        print("cannot compile: " + "; ".join(reasons))
        return 1
    arch = arch or device_arch() or 90
    work = [(dtype, k, arch) for dtype in DTYPES for k in PRECOMPILE_K]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, min(jobs, len(work)))) as pool:
        results = list(pool.map(_compile_one, work))
    failed = [r for r in results if r[2].startswith("FAILED")]
    for what, seconds, outcome in results:
        print(f"{what:28s} {seconds:6.1f} s  {outcome}")
    print(f"{len(results) - len(failed)} of {len(results)} modules in {cuda_cache_dir()} "
          f"({time.perf_counter() - t0:.1f} s with {jobs} processes)")
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------------
# invobench check on CUDA, one process per (variant, dtype), and its verdict
# ---------------------------------------------------------------------------------------------

#: the project's own GPU kernels, each checked per dtype in a process of its own (Triton compiles every
#: autotune configuration of every specialisation on first use: the longest part)
KERNEL_VARIANTS = ("involution.triton", "involution.triton-simple", "involution.cuda", "involution.cuda-simple")
#: PyTorch-op variants, cheap on a GPU, checked together
TORCH_VARIANTS = ("involution.eager", "involution.unfold", "conv.dense", "conv.grouped", "conv.depthwise",
                  "attention.unfold", "attention.flex")
#: left to the suite and the gpu tests: torch.compile compiles each of check's 7 shapes × 3 dtypes anew (minutes)
NOT_CHECKED = {"involution.compile": "torch.compile per shape: the suite and the gpu tests run it",
               "attention.flex-compile": "torch.compile per shape: the suite runs it"}
CHECK_DTYPES = ("float64", "float32", "bfloat16", "float16")


def check_jobs(dtypes: tuple[str, ...] = CHECK_DTYPES) -> list[tuple[str, str]]:
    """(variants, dtypes) of each check process: a kernel variant and one dtype it supports; the torch ops together."""
    from invobench.registry import get

    jobs = [(key, dtype) for key in KERNEL_VARIANTS for dtype in dtypes if dtype in get(key).dtypes]
    jobs.append((",".join(TORCH_VARIANTS), ",".join(dtypes)))
    return jobs


def check_verdict(results: list[dict], dtypes: tuple[str, ...] = CHECK_DTYPES) -> tuple[list[str], list[str]]:
    """(table lines, problems) of invobench check's JSON results: every expected (variant, dtype) must have been
    compared (an unavailable or skipped variant is a problem here: the GPU check exists to run them) and pass."""
    from invobench.registry import get

    by: dict[tuple[str, str], list[dict]] = {}
    problems = []
    for r in results:
        if r["dtype"] == "-":
            problems.append(f"{r['variant']}: {r['detail']}")
            continue
        by.setdefault((r["variant"], r["dtype"]), []).append(r)
    lines = [f"{'variant':26s} {'dtype':9s} {'compared':>8s} {'max rel err':>11s}  verdict"]
    for key in (*KERNEL_VARIANTS, *TORCH_VARIANTS):
        for dtype in dtypes:
            if dtype not in get(key).dtypes:
                continue
            rs = by.get((key, dtype), [])
            measured = [r for r in rs if r["max_abs"] is not None]
            bad = [r for r in rs if not r["ok"]]
            if bad:
                verdict = f"MISMATCH: {bad[0]['shape']} {bad[0]['layout']} {bad[0]['tensor']}: {bad[0]['detail']}"
                problems.append(f"{key} {dtype}: {len(bad)} mismatches, first {verdict}")
            elif not measured:
                skipped = next((r["detail"] for r in rs if r["detail"]), "no result")
                verdict = f"NOT RUN: {skipped}"
                problems.append(f"{key} {dtype}: not compared ({skipped})")
            else:
                verdict = "ok"
            worst = max((r["max_rel"] for r in measured), default=None)
            worst_text = "-" if worst is None else f"{worst:.2e}"
            lines.append(f"{key:26s} {dtype:9s} {len(measured):8d} {worst_text:>11}  {verdict}")
    for key, why in NOT_CHECKED.items():
        lines.append(f"{key:26s} {'-':9s} {'-':>8s} {'-':>11s}  not checked here: {why}")
    return lines, problems


def check_json(stdout: str) -> list[dict]:
    """The JSON list `invobench check --json` printed, even with other lines (a library's message) before it."""
    start = stdout.find("[")
    while start != -1:
        try:
            parsed, _ = json.JSONDecoder().raw_decode(stdout[start:])
            if isinstance(parsed, list):
                return parsed
        except json.JSONDecodeError:
            pass
        start = stdout.find("[", start + 1)
    return []


def run_check(out: Path, jobs: int, python: str = sys.executable) -> int:
    def one(job: tuple[str, str]) -> tuple[tuple[str, str], int, float, list[dict], str]:
        variants, dtypes = job
        t0 = time.perf_counter()
        proc = subprocess.run([python, "-m", "invobench", "check", "--device", "cuda", "--json", "--family",
                               "involution,conv,attention", "--variants", variants, "--dtype", dtypes],
                              capture_output=True, text=True, cwd=ROOT)
        parsed = check_json(proc.stdout)
        return job, proc.returncode, time.perf_counter() - t0, parsed, proc.stderr[-2000:]

    work = check_jobs()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        done = list(pool.map(one, work))
    results: list[dict] = []
    crashed = []
    for (variants, dtypes), rc, seconds, parsed, err in done:
        print(f"check {variants} [{dtypes}]: exit {rc}, {len(parsed)} comparisons, {seconds:.0f} s")
        if not parsed:
            crashed.append(f"{variants} [{dtypes}]: exit {rc}, no JSON; stderr ends:\n{err}")
        results += parsed
    out.write_text(json.dumps(results, indent=1))
    lines, problems = check_verdict(results)
    print("\n".join(lines))
    problems = crashed + problems
    for p in problems:
        print(f"problem: {p}")
    print(f"{sum(1 for r in results if r['ok'] and r['max_abs'] is not None)} comparisons passed, "
          f"{len(problems)} problem(s); every comparison in {out}")
    return 1 if problems else 0


# ---------------------------------------------------------------------------------------------
# Prewarm: the suite once, quick and sharded over processes, so the timed run finds its compiles cached
# ---------------------------------------------------------------------------------------------

def prewarm(directory: Path, jobs: int, suite: str = SUITE, mem_budget: str = "6GiB", python: str = sys.executable) -> int:
    """`invobench run SUITE --quick --shard k/jobs` for every k at once. Inductor's FX graph and autograd caches,
    Triton's cache and the NVRTC cache are on disk, so the timed run loads what these compiled. Their numbers
    are thrown away (contended GPU, tiny budget)."""
    directory.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TORCHINDUCTOR_COMPILE_THREADS": "1"}  # the shards are the parallelism
    t0 = time.perf_counter()
    procs = []
    for k in range(1, jobs + 1):
        log = open(directory / f"prewarm-{k}.log", "w")
        cmd = [python, "-m", "invobench", "run", suite, "--quick", "--shard", f"{k}/{jobs}", "--mem-budget", mem_budget,
               "--out", str(directory / f"prewarm-{k}.jsonl")]
        procs.append((k, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env), log))
    failed = 0
    for k, proc, log in procs:
        rc = proc.wait()
        log.close()
        if rc:
            failed += 1
            tail = (directory / f"prewarm-{k}.log").read_text()[-600:]
            print(f"shard {k}/{jobs}: exit {rc}; its log ends:\n{tail}")
    print(f"prewarm: {jobs - failed} of {jobs} shards finished in {time.perf_counter() - t0:.0f} s")
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------------
# Each CUDA kernel once: for compute-sanitizer (small) and ncu (main shape)
# ---------------------------------------------------------------------------------------------

#: (variant, case) pairs whose launches cover all nine entry points: the tiled kernels take `_unit` at
#: stride 1 and the general form at stride 2; cuda-simple the simple ones. Borders (13×11) included.
SMALL_CASES = (("cuda", dict(B=2, C=32, H=13, W=11, K=7, G=2, stride=1)),
               ("cuda", dict(B=2, C=32, H=13, W=11, K=7, G=2, stride=2)),
               ("cuda-simple", dict(B=2, C=32, H=13, W=11, K=7, G=2, stride=1)))
#: the main shape (docs/triton.md's static profile, docs/cpu.md at B = 32): RedNet's 56×56 stage at C = 256
MAIN_CASE = dict(B=32, C=256, H=56, W=56, K=7, G=16, stride=1)
MAIN_VARIANTS = ("cuda", "cuda-simple", "triton", "triton-simple")


def planned_kernels(pairs) -> set[str]:
    """The CUDA entry points the loader's planner launches for (variant, shape) pairs, forward and backward."""
    from invobench.core import Case
    from invobench.ops.involution.cuda import launch_info

    names = set()
    for variant, shape in pairs:
        if variant.startswith("cuda"):
            info = launch_info("simple" if variant == "cuda-simple" else "tiled", Case(**shape, device="cuda"))
            names |= {info[op]["kernel"] for op in ("fwd", "bwd_input", "bwd_kernel")}
    return names


def kernels(which: str, profile: bool) -> int:
    """Run forward and backward of the CUDA kernels once (small: all nine entry points, checked against the
    float64 reference; main: the main shape, each variant warmed up first, the second call inside
    cudaProfilerStart/Stop for `ncu --profile-from-start off`)."""
    import torch

    from invobench.core import Case
    from invobench.ops.involution import APPLY, make_inputs
    from invobench.ops.involution.cuda_nvrtc import _ENTRY_POINTS
    from invobench.ops.involution.reference import involution_reference, involution_reference_backward
    from invobench.testing import assert_close

    if not torch.cuda.is_available():
        print("no CUDA device: nothing to run")
        return 1
    pairs = SMALL_CASES if which == "small" else tuple((v, MAIN_CASE) for v in MAIN_VARIANTS)
    for variant, shape in pairs:
        case = Case(**shape, dtype="float32", device="cuda")
        x, w = make_inputs(case, requires_grad=True)
        K, s = case.K, case.stride

        def step():
            out = APPLY[variant](x, w, K, s, 1)
            gx, gw = torch.autograd.grad(out, (x, w), torch.ones_like(out))
            return out, gx, gw

        out, gx, gw = step()  # compiles, autotunes
        torch.cuda.synchronize()
        if profile:
            torch.cuda.profiler.start()
            step()
            torch.cuda.synchronize()
            torch.cuda.profiler.stop()
        if which == "small":
            x64, w64 = x.detach().double(), w.detach().double()
            ones = torch.ones_like(out, dtype=torch.float64)
            ref_gx, ref_gw = involution_reference_backward(ones, x64, w64, K, s, 1)
            assert_close(f"{variant} {case.label()} out", out, involution_reference(x64, w64, K, s, 1))
            assert_close(f"{variant} {case.label()} grad_x", gx, ref_gx)
            assert_close(f"{variant} {case.label()} grad_w", gw, ref_gw)
        print(f"{variant:14s} {case.label()}: forward and backward ran" + (" and match the reference" if which == "small" else ""))
    if which == "small":
        missing = sorted(set(_ENTRY_POINTS) - planned_kernels(pairs))
        if missing:
            print(f"entry points not launched: {', '.join(missing)}")
            return 1
        print(f"all {len(_ENTRY_POINTS)} CUDA entry points launched")
    return 0


# ---------------------------------------------------------------------------------------------
# ncu: one line per kernel
# ---------------------------------------------------------------------------------------------

#: metrics asked of ncu, and the columns of the summary
NCU_METRICS = {
    "gpu__time_duration.sum": "time",
    "dram__bytes_read.sum": "DRAM read",
    "dram__bytes_write.sum": "DRAM write",
    "dram__throughput.avg.pct_of_peak_sustained_elapsed": "DRAM % peak",
    "sm__throughput.avg.pct_of_peak_sustained_elapsed": "SM % peak",
    "sm__warps_active.avg.pct_of_peak_sustained_active": "occupancy %",
    "launch__registers_per_thread": "registers",
}


def parse_ncu_csv(text: str) -> list[dict]:
    """Rows of `ncu --csv --page raw` output: one dict per profiled launch (kernel name, metrics with units).

    Lines before the header (ncu's ==PROF== messages, the program's output) are skipped; the row after the
    header holds the units."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith('"ID"') and "Kernel Name" in line), None)
    if start is None:
        return []
    reader = csv.reader(io.StringIO("\n".join(lines[start:])))
    header = next(reader)
    units = next(reader, None)
    rows = []
    for values in reader:
        if len(values) != len(header) or not values[0].strip().isdigit():
            continue
        row = dict(zip(header, values))
        rows.append({"kernel": row.get("Kernel Name", "?"),
                     **{m: (row.get(m, ""), dict(zip(header, units or [])).get(m, "")) for m in NCU_METRICS}})
    return rows


def _number(text: str) -> Optional[float]:
    try:
        return float(text.replace(",", ""))
    except (TypeError, ValueError):
        return None


_SCALE = {"": 1, "byte": 1, "kbyte": 1e3, "mbyte": 1e6, "gbyte": 1e9, "nsecond": 1e-9, "usecond": 1e-6,
          "msecond": 1e-3, "second": 1, "%": 1, "register/thread": 1}


def ncu_table(rows: list[dict]) -> list[str]:
    """One Markdown line per profiled kernel: time (µs), DRAM MB read/written, achieved GB/s, % of peaks."""
    out = ["| kernel | time µs | DRAM MB read | DRAM MB written | DRAM GB/s | DRAM % peak | SM % peak | occupancy % | registers |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        def value(metric: str) -> Optional[float]:
            text, unit = r[metric]
            v = _number(text)
            return None if v is None else v * _SCALE.get(unit.strip().lower(), 1)

        t, rd, wr = value("gpu__time_duration.sum"), value("dram__bytes_read.sum"), value("dram__bytes_write.sum")
        gbps = (rd + wr) / t / 1e9 if t and rd is not None and wr is not None else None

        def fmt(v: Optional[float], scale: float = 1, digits: int = 1) -> str:
            return "–" if v is None else f"{v * scale:,.{digits}f}"

        name = r["kernel"].split("(")[0]
        out.append(f"| {name} | {fmt(t, 1e6)} | {fmt(rd, 1e-6)} | {fmt(wr, 1e-6)} | {fmt(gbps, 1, 0)} | "
                   f"{fmt(value('dram__throughput.avg.pct_of_peak_sustained_elapsed'))} | "
                   f"{fmt(value('sm__throughput.avg.pct_of_peak_sustained_elapsed'))} | "
                   f"{fmt(value('sm__warps_active.avg.pct_of_peak_sustained_active'))} | "
                   f"{fmt(value('launch__registers_per_thread'), 1, 0)} |")
    return out


# ---------------------------------------------------------------------------------------------
# summary.md
# ---------------------------------------------------------------------------------------------

STAGES = ((64, 56), (128, 28), (256, 14), (512, 7))
BATCH = 32
TARGETS = {"bandwidth_pct": 70.0, "vs_unfold": 10.0, "fwd_bwd_ratio": 3.0, "rednet_resnet": 1.5}
#: published context for the RedNet ÷ ResNet row (TensorRT on a V100, from the issue); not measured here
ANCHOR = ("published TensorRT figures on a V100 put RedNet-50 at 3.2× ResNet-50's latency at batch 1 and 7.3× at "
          "batch 8")


def _md(rows: list[list], head: list[str]) -> list[str]:
    if not rows:
        return []
    numeric = [all(isinstance(row[i], (int, float)) or row[i] is None for row in rows) for i in range(len(head))]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for row in rows:
        out.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return out


def _cell(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        return v.replace("|", "\\|")
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def _ms(record) -> Optional[float]:
    return record.stats.median_ms if record is not None and record.status == "ok" and record.stats else None


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b else None


def _mark(value: Optional[float], target: float, higher_is_better: bool) -> str:
    if value is None:
        return "–"
    met = value >= target if higher_is_better else value <= target
    return f"{_cell(value)} {'✓' if met else '✗'}"


def summary_lines(run, steps: list[dict], ncu_rows: list[dict], check_lines: list[str], estimate_s: Optional[float],
                  pytest_line: str = "") -> list[str]:
    """summary.md: the steps, then the issue's figures from the run's records (ratios within this one run)."""
    from invobench.report.views import models_view, run_facts

    out = ["# GPU check summary", ""]
    if run is not None:
        fp = run.header.fingerprint
        gpus = ", ".join(d.name or "?" for d in fp.cuda.devices) or "no CUDA device"
        out += [f"- machine: {gpus}; torch {fp.torch.version}, CUDA {fp.cuda.torch_cuda or '–'}, "
                f"triton {fp.packages.get('triton') or '–'}, cupy {fp.packages.get('cupy-cuda13x') or '–'}; "
                f"python {fp.python}", f"- run: {run_facts(run)}"]
    failed = [s for s in steps if s["status"] not in ("ok", "skipped")]
    total = sum(s["seconds"] for s in steps)
    out += [f"- steps: {len(steps)} ({sum(s['status'] == 'ok' for s in steps)} ok, "
            f"{sum(s['status'] == 'skipped' for s in steps)} skipped, {len(failed)} not ok), {total:.0f} s in all"
            + (f"; failed: {', '.join(s['name'] for s in failed)}" if failed else ""), ""]
    out += _md([[s["name"], s["status"], f"{s['seconds']:.0f}", s["note"]] for s in steps],
               ["step", "status", "seconds", "note"]) + [""]
    quick = next((s for s in steps if s["name"] == "gpu-quick"), None)
    if quick is not None and quick["status"] == "ok" and estimate_s is not None:
        out += [f"gpu-quick took {quick['seconds']:.0f} s; estimated {estimate_s:.0f} s (tools/gpu_check.py estimate).", ""]
    if pytest_line:
        out += [f"pytest -m gpu: {pytest_line}", ""]
    if run is None:
        return out + ["No results file: the suite did not run (see the log).", ""]

    recs = {}  # the suite's B = 32 records by (variant, pass, dtype, C, H, level)
    for r in run.records:
        c = r.case
        if c.get("B") == BATCH:
            recs[(f"{r.family}.{r.variant}", r.pass_, c.get("dtype"), c.get("C"), c.get("H"), c.get("level"))] = r
    copy = {roof.dtype: roof.copy_bandwidth_gbps for roof in run.rooflines if roof.device == "cuda"}
    measured = [r for r in run.records if r.status == "ok"]
    if not measured:
        reasons = sorted({(r.reasons or [r.error or r.status])[0] for r in run.records})
        return out + [f"No measured records ({len(run.records)} records, none ok): {'; '.join(reasons[:3])}", ""]

    def get(variant: str, pass_: str, dtype: str, C: int, H: int, level: str = "op"):
        return recs.get((variant, pass_, dtype, C, H, level))

    # 1. Triton and CUDA forward, fp32, B = 32: bandwidth, × unfold, × cuda-simple
    rows = []
    for C, H in STAGES:
        unfold = _ms(get("involution.unfold", "fwd", "float32", C, H))
        simple = _ms(get("involution.cuda-simple", "fwd", "float32", C, H))
        for v in ("involution.triton", "involution.cuda"):
            rec = get(v, "fwd", "float32", C, H)
            ms = _ms(rec)
            gbps = rec.roofline.achieved_gbps if ms and rec.roofline else None
            pct = 100 * gbps / copy["float32"] if gbps and copy.get("float32") else None
            rows.append([f"C{C} {H}×{H}", v.split(".")[1], ms, gbps, _mark(pct, TARGETS["bandwidth_pct"], True),
                         _mark(_ratio(unfold, ms), TARGETS["vs_unfold"], True), _ratio(simple, ms),
                         None if ms else (rec.status + ": " + ((rec.reasons or [rec.error or ""])[0] or ""))[:60] if rec else "no record"])
    out += [f"## Triton and CUDA forward, B = 32, float32 (copy bandwidth of this run: "
            f"{copy.get('float32', 0) or 0:,.0f} GB/s)", "",
            f"Targets: ≥ {TARGETS['bandwidth_pct']:.0f} % of the copy bandwidth, ≥ {TARGETS['vs_unfold']:.0f}× faster "
            "than unfold; × cuda-simple is the paper's design (one thread per output, no reuse).", ""]
    out += _md(rows, ["stage", "variant", "ms", "GB/s", "% copy BW", "× unfold", "× cuda-simple", "note"]) + [""]

    # 2. fwd+bwd ÷ fwd
    rows = []
    for dtype in ("float32", "bfloat16"):
        for C, H in STAGES:
            row = [f"C{C} {H}×{H}", dtype]
            for v in ("involution.triton", "involution.cuda"):
                row.append(_mark(_ratio(_ms(get(v, "fwd+bwd", dtype, C, H)), _ms(get(v, "fwd", dtype, C, H))),
                                 TARGETS["fwd_bwd_ratio"], False))
            rows.append(row)
    out += [f"## fwd+bwd ÷ fwd (target ≤ {TARGETS['fwd_bwd_ratio']:.0f})", ""]
    out += _md(rows, ["stage", "dtype", "triton", "cuda"]) + [""]

    # 3. best involution ÷ depthwise conv (same MACs)
    rows = []
    for dtype in ("float32", "bfloat16"):
        for pass_ in ("fwd", "fwd+bwd"):
            for C, H in STAGES:
                candidates = {k[0]: _ms(r) for k, r in recs.items() if k[0].startswith("involution.") and
                              k[1:] == (pass_, dtype, C, H, "op") and _ms(r)}
                best = min(candidates, key=candidates.get) if candidates else None
                dw = _ms(get("conv.depthwise", pass_, dtype, C, H))
                rows.append([f"C{C} {H}×{H}", dtype, pass_, best.split(".")[1] if best else None,
                             candidates.get(best), dw, _ratio(candidates.get(best), dw)])
    out += ["## Best involution ÷ depthwise convolution (same MACs), B = 32", ""]
    out += _md(rows, ["stage", "dtype", "pass", "best involution", "ms", "depthwise ms", "÷ depthwise"]) + [""]

    # 4. RedNet-50 ÷ ResNet-50
    models = models_view(run)
    rows = [[f"{r['pass']}", r["RedNet"], r["B"], r["ResNet ms"], r["RedNet ms"],
             _mark(r["RedNet ÷ ResNet"], TARGETS["rednet_resnet"], False)] for _, r in models.iterrows()] \
        if not models.empty else []
    out += [f"## RedNet-50 ÷ ResNet-50, bfloat16, channels_last (goal ≤ {TARGETS['rednet_resnet']} at B = 32)", "",
            f"For scale: {ANCHOR}.", ""]
    out += (_md(rows, ["pass", "RedNet on", "B", "ResNet-50 ms", "RedNet-50 ms", "÷ ResNet-50"]) or ["(no model records)"]) + [""]

    if ncu_rows:
        out += ["## ncu, one line per kernel at the main shape (B32 C256 56×56 K7 G16, float32)", ""]
        out += ncu_table(ncu_rows) + [""]
    if check_lines:
        out += ["## invobench check on CUDA", "", "```", *check_lines, "```", ""]
    bad = [r for r in run.records if r.status not in ("ok", "skipped")]
    skipped = [r for r in run.records if r.status == "skipped"]
    out += [f"## Records: {len(measured)} ok, {len(skipped)} skipped, {len(bad)} failed", ""]
    for r in bad[:20]:
        out.append(f"- {r.family}.{r.variant} {r.pass_} {r.label}: {r.status}: {(r.error or '; '.join(r.reasons))[:160]}")
    return out + [""]


def read_steps(path: Path) -> list[dict]:
    steps = []
    if path.exists():
        for line in path.read_text(errors="replace").replace("\ufffd", "").splitlines():
            parts = line.split("\t")
            if len(parts) >= 3:
                steps.append({"name": parts[0], "status": parts[1], "seconds": float(parts[2] or 0),
                              "note": parts[3] if len(parts) > 3 else ""})
    return steps


def write_summary(results: Optional[Path], steps_file: Path, out: Path, ncu: Optional[Path] = None,
                  check_log: Optional[Path] = None, estimate_s: Optional[float] = None, pytest_line: str = "") -> None:
    from invobench.results import ResultsFileError, read_results

    run = None
    note = []
    if results is not None and results.exists() and results.stat().st_size:
        try:
            run = read_results(results, repair=True)
        except ResultsFileError as exc:
            note = [f"The results file could not be read: {exc}", ""]
    ncu_rows = parse_ncu_csv(ncu.read_text(errors="replace")) if ncu and ncu.exists() else []
    check_lines = []
    if check_log and check_log.exists():
        check_lines = [line for line in check_log.read_text().splitlines()
                       if line.startswith(("involution.", "conv.", "attention.", "variant ", "problem:"))]
    lines = summary_lines(run, read_steps(steps_file), ncu_rows, check_lines, estimate_s, pytest_line)
    out.write_text("\n".join(lines[:2] + note + lines[2:]))


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/gpu_check.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("estimate")
    e.add_argument("--suite", default=SUITE)
    e.add_argument("--seconds", action="store_true", help="print only the estimate in seconds")
    sub.add_parser("available")
    p = sub.add_parser("precompile")
    p.add_argument("--arch", type=int, default=None, help="e.g. 90 (default: this GPU's; sm_90 without one)")
    p.add_argument("--jobs", type=int, default=min(16, os.cpu_count() or 1))
    c = sub.add_parser("check")
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--jobs", type=int, default=min(8, os.cpu_count() or 1))
    w = sub.add_parser("prewarm")
    w.add_argument("--dir", type=Path, required=True)
    w.add_argument("--jobs", type=int, default=8)
    w.add_argument("--suite", default=SUITE)
    k = sub.add_parser("kernels")
    k.add_argument("--case", choices=["small", "main"], required=True)
    k.add_argument("--profile", action="store_true", help="main: the measured call inside cudaProfilerStart/Stop")
    s = sub.add_parser("summary")
    s.add_argument("--results", type=Path)
    s.add_argument("--steps", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--ncu", type=Path)
    s.add_argument("--check-log", type=Path)
    s.add_argument("--estimate-s", type=float)
    s.add_argument("--pytest-line", default="")
    args = parser.parse_args(argv)
    if args.command == "estimate":
        est = estimate(args.suite)
        print(f"{est.total_s:.0f}" if args.seconds else "\n".join(est.lines()))
        return 0
    if args.command == "available":
        print(available_line())
        return 0
    if args.command == "precompile":
        return precompile(args.arch, args.jobs)
    if args.command == "check":
        return run_check(args.out, args.jobs)
    if args.command == "prewarm":
        return prewarm(args.dir, args.jobs, args.suite)
    if args.command == "kernels":
        return kernels(args.case, args.profile)
    write_summary(args.results, args.steps, args.out, args.ncu, args.check_log, args.estimate_s, args.pytest_line)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
