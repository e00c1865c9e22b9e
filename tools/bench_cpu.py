"""Standalone CPU measurement of the involution apply variants (issue 9), until `invobench run` takes over.

    .venv/bin/python tools/bench_cpu.py                 # main shape + RedNet-50 paper shapes
    .venv/bin/python tools/bench_cpu.py --quick         # main shape only
    .venv/bin/python tools/bench_cpu.py --json out.json # also keep every sample
    .venv/bin/python tools/bench_cpu.py --in-cache      # kernel throughput per CPU-second vs matmul
    .venv/bin/python tools/bench_cpu.py --blocks        # RedNet-50 vs ResNet-50 bottleneck, per stage

For each case it times eager, unfold, compile (main shape only unless --compile-all: ~1 min of
compilation per shape), the depthwise conv with the same MACs, and `cpu` at 1 and at all threads;
forward, and backward over a retained graph with a fixed grad_out (spec §6). Variants are interleaved
in a fresh random order every round; latency is the median of the rounds. The roofline is measured
in the same run: copy bandwidth (fastest copy of a 256 MiB buffer, bytes = read + write) and matmul
peak; bound = max(min_bytes / bandwidth, FLOPs / peak) with min_bytes of spec §1.
"""
from __future__ import annotations

import os
import sys

from invobench.env import WORKER_ENV_DEFAULTS, worker_environment

# Measure in the environment of every `invobench run` worker (invobench.env.WORKER_ENV_DEFAULTS: huge
# pages and large blocks kept on the heap): glibc reads GLIBC_TUNABLES at process start and torch
# THP_MEM_ALLOC_ENABLE at import, so where they are missing the script starts itself again with them.
if any(k not in os.environ for k in WORKER_ENV_DEFAULTS):
    os.execve(sys.executable, [sys.executable, *sys.argv], worker_environment())

import argparse
import ctypes
import json
import random
import statistics
import time

import torch
import torch.nn.functional as F

from invobench.counting.formulas import (
    conv_min_bytes_bwd, conv_min_bytes_fwd, involution_apply_macs, involution_min_bytes_bwd, involution_min_bytes_fwd,
)
from invobench.env import fingerprint
from invobench.ops.involution import APPLY
from invobench.ops.involution import cpu as cpu_variant
from invobench.shapes import padding_for

from cpu_ab import declare_c_abi  # tools/cpu_ab.py, beside this script

MAIN = (8, 256, 56, 7, 16)  # B, C, H=W, K, G
PAPER = [(B, C, H, 7, C // 16) for B in (1, 8) for C, H in ((64, 56), (128, 28), (256, 14), (512, 7))]


def measure_roofline(threads: int, reps: int) -> tuple[float, float]:
    """(copy GB/s, matmul FLOP/s) at `threads`, fastest of `reps` samples each."""
    torch.set_num_threads(threads)
    src = torch.ones(64 * 2**20)
    dst = torch.empty_like(src)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    copy_s, mm_s = [], []
    for _ in range(reps):
        copy_s.append(_time(lambda: dst.copy_(src)))
        mm_s.append(_time(lambda: a @ b))
    return 2 * src.numel() * 4 / min(copy_s) / 1e9, 2 * 1024**3 / min(mm_s)


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def make_calls(name: str, B: int, C: int, H: int, K: int, G: int):
    """(forward, backward) zero-argument callables for one variant at one case; backward reuses one graph."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(B, C, H, H, generator=gen).requires_grad_()
    if name == "depthwise":
        weight = (torch.randn(C, 1, K, K, generator=gen) / K).requires_grad_()
        fwd = lambda: F.conv2d(x, weight, padding=padding_for(K), groups=C)  # noqa: E731
        leaves = (x, weight)
    else:
        kernel = (torch.randn(B, G, K * K, H, H, generator=gen) / K).requires_grad_()
        apply = APPLY[name.split("@")[0]]
        fwd = lambda: apply(x, kernel, K, 1, 1)  # noqa: E731
        leaves = (x, kernel)
    graph = {}

    def bwd():
        if "out" not in graph:
            graph["out"] = fwd()
            graph["gout"] = torch.randn_like(graph["out"])
        torch.autograd.grad(graph["out"], leaves, graph["gout"], retain_graph=True)

    def forward():
        with torch.no_grad():
            fwd()

    return forward, bwd


def run_case(case, variants, threads_all: int, reps: int, cpu_reps: int) -> dict:
    """Every fwd/bwd sample (seconds) of every variant at one case, interleaved in random order each round.

    The `cpu` variants, cheap next to the baselines, run `cpu_reps` times per round: on a shared
    machine one descheduled thread can stretch a sample several-fold, and more samples steady the median.
    """
    B, C, H, K, G = case
    calls = {}
    for name in variants:
        calls[name] = make_calls(name, B, C, H, K, G)
    samples = {(name, p): [] for name in variants for p in ("fwd", "bwd")}
    threads_of = lambda name: 1 if name.endswith("@1") else threads_all  # noqa: E731
    for name, (f, b) in calls.items():  # warm-up: compiles, builds, first-touch allocations
        torch.set_num_threads(threads_of(name))
        f(), b()
    order = [(name, p) for name in variants for p in ("fwd", "bwd") for _ in range(cpu_reps if "cpu" in name else 1)]
    for _ in range(reps):
        random.shuffle(order)
        for name, p in order:
            torch.set_num_threads(threads_of(name))
            samples[(name, p)].append(_time(calls[name][0 if p == "fwd" else 1]))
    torch.set_num_threads(threads_all)
    return {f"{name} {p}": s for (name, p), s in samples.items()}


def _kernel(fn: str):
    """One of the C ABI kernels of the loaded extension, called into preallocated outputs (fp32)."""
    f = getattr(declare_c_abi(cpu_variant.library()), f"invobench_involution_{fn}")

    def call(x: torch.Tensor, G: int, K: int, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> None:
        shape = (ctypes.c_int64 * 8)(*x.shape, G, K, 1, 1)
        if f(0, shape, torch.get_num_threads(), a.data_ptr(), b.data_ptr(), out.data_ptr()):
            raise RuntimeError(f"invobench_involution_{fn} failed")

    return call


def in_cache_efficiency(calls: int = 100) -> None:
    """Single-thread kernel throughput on data that fits in L2, against a matmul in the same process.

    CPU time (process_time), fastest of 5 batches: what the kernels do per cycle, apart from memory and
    from other processes' time slices. Shape: one group of 16 channels, 56×56, K=7.
    """
    torch.set_num_threads(1)
    B, C, H, K, G = 1, 16, 56, 7, 1
    x, w, g = torch.randn(B, C, H, H), torch.randn(B, G, K * K, H, H) / K, torch.randn(B, C, H, H)
    out, gw = torch.empty_like(x), torch.empty_like(w)
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    macs = involution_apply_macs(B, C, H, H, K)
    forward, grad_input, grad_kernel = _kernel("forward"), _kernel("grad_input"), _kernel("grad_kernel")
    jobs = {
        "matmul 512": (lambda: a @ b, 512**3),
        "forward": (lambda: forward(x, G, K, x, w, out), macs),
        "grad_input": (lambda: grad_input(x, G, K, g, w, out), macs),
        "grad_kernel": (lambda: grad_kernel(x, G, K, g, x, gw), macs),
    }
    best = {name: float("inf") for name in jobs}
    for _ in range(5):
        for name, (fn, _) in jobs.items():
            t0 = time.process_time()
            for _ in range(calls):
                fn()
            best[name] = min(best[name], (time.process_time() - t0) / calls)
    peak = jobs["matmul 512"][1] / best["matmul 512"]
    for name, (_, m) in jobs.items():
        print(f"{name:12s} {best[name] * 1e6:8.1f} us  {m / best[name] / 1e9:6.2f} GMAC/cpu-s  "
              f"{100 * m / best[name] / peak:5.1f}% of matmul")


def bottleneck_ratios(batch: int, reps: int) -> tuple[list[str], dict]:
    """RedNet-50's bottleneck (involution.cpu, K=7) against ResNet-50's (3×3 conv) at each stage, same run.

    The stride-1 blocks of each stage (in = 4·width channels), in train mode; forward under no_grad
    and a training step (forward + backward of the block's output sum). Both blocks of a stage are
    timed in the same rounds, in a fresh random order each round; latency = median of the rounds.
    Returns the table rows and every sample (seconds) by "stage <n> <block> <pass>".
    """
    from invobench.models.rednet import involution_spatial
    from invobench.models.resnet import EXPANSION, STAGE_WIDTHS, Bottleneck, conv3x3_spatial

    rows, all_samples = [], {}
    sizes = (56, 28, 14, 7)
    for stage, (width, size) in enumerate(zip(STAGE_WIDTHS, sizes), start=1):
        torch.manual_seed(0)
        c_in = width * EXPANSION
        blocks = {"rednet": Bottleneck(c_in, width, 1, involution_spatial("cpu")),
                  "resnet": Bottleneck(c_in, width, 1, conv3x3_spatial)}
        x = torch.randn(batch, c_in, size, size)
        calls = {}
        for name, block in blocks.items():
            xg = x.clone().requires_grad_()

            def fwd(block=block):
                with torch.no_grad():
                    block(x)

            def step(block=block, xg=xg):
                block.zero_grad(set_to_none=True)
                block(xg).sum().backward()

            calls[(name, "fwd")], calls[(name, "fwd+bwd")] = fwd, step
        for fn in calls.values():  # warm-up
            fn()
        samples = {key: [] for key in calls}
        order = list(calls)
        for _ in range(reps):
            random.shuffle(order)
            for key in order:
                samples[key].append(_time(calls[key]))
        all_samples.update({f"stage {stage} {name} {p}": s for (name, p), s in samples.items()})
        for p in ("fwd", "fwd+bwd"):
            red, res = (statistics.median(samples[(n, p)]) * 1e3 for n in ("rednet", "resnet"))
            rows.append(f"| {stage} | {batch} | {c_in} | {width} | {size} | {p} | {red:.2f} | {res:.2f} | {red / res:.2f}× |")
            print(rows[-1], flush=True)
    return rows, all_samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="rounds; every variant runs once per round")
    parser.add_argument("--cpu-reps", type=int, default=5, help="samples of the cpu variants per round")
    parser.add_argument("--quick", action="store_true", help="main shape only")
    parser.add_argument("--compile-all", action="store_true", help="time `compile` at every shape, not only the main one")
    parser.add_argument("--json", help="write every sample here")
    parser.add_argument("--in-cache", action="store_true", help="only the single-thread in-cache throughput")
    parser.add_argument("--blocks", action="store_true", help="only RedNet-50 vs ResNet-50 bottleneck blocks")
    parser.add_argument("--batch", type=int, default=8, help="batch of --blocks")
    args = parser.parse_args()
    if args.in_cache:
        cpu_variant.library()
        return in_cache_efficiency()
    if args.blocks:
        cpu_variant.library()
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu build: {cpu_variant.build_info()}")
        header = "| stage | B | C in | width | H=W | pass | RedNet block ms | ResNet block ms | RedNet / ResNet |"
        rows, samples = bottleneck_ratios(args.batch, max(args.reps, 5))
        print("\n" + header + "\n" + "|---" * 9 + "|\n" + "\n".join(rows))
        if args.json:
            with open(args.json, "w") as fh:
                json.dump({"fingerprint": fingerprint(), "build": cpu_variant.build_info(), "table": [header] + rows,
                           "samples_s": samples}, fh, indent=1)
        return None

    threads = torch.get_num_threads()
    cpu_variant.library()
    print(f"torch {torch.__version__}, {threads} threads, cpu build: {cpu_variant.build_info()}, "
          f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE')}, GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES')}")
    record = {"fingerprint": fingerprint(), "threads": threads, "build": cpu_variant.build_info(), "cases": [],
              "THP_MEM_ALLOC_ENABLE": os.environ.get("THP_MEM_ALLOC_ENABLE")}
    cases = [MAIN] + ([] if args.quick else PAPER)
    header = ("| B | C | H=W | G | pass | cpu@1 ms | cpu ms (min) | 1→{t} scaling | eager ms | unfold ms | compile ms "
              "| depthwise ms | bound ms | GB/s | % roofline | × best other |").format(t=threads)
    rows = []
    for case in cases:
        B, C, H, K, G = case
        base = ["eager", "unfold", "depthwise", "cpu", "cpu@1"]
        variants = base + (["compile"] if case == MAIN or args.compile_all else [])
        # the roofline brackets the case: measured before and after, the better kept
        bw1, peak1 = measure_roofline(threads, 5)
        result = run_case(case, variants, threads, args.reps, args.cpu_reps)
        med = {k: statistics.median(v) for k, v in result.items()}
        bw2, peak2 = measure_roofline(threads, 5)
        bw, peak = max(bw1, bw2), max(peak1, peak2)
        macs = involution_apply_macs(B, C, H, H, K)
        for p, flops, bytes_ in (
            ("fwd", 2 * macs, involution_min_bytes_fwd(B, C, H, H, G, K, H, H, 4)),
            ("bwd", 4 * macs, involution_min_bytes_bwd(B, C, H, H, G, K, H, H, 4)),
        ):
            bound = max(bytes_ / (bw * 1e9), flops / peak)
            t_cpu = med[f"cpu {p}"]
            others = [med[f"{v} {p}"] for v in ("eager", "unfold", "compile") if f"{v} {p}" in med]
            fmt = lambda key: f"{med[key] * 1e3:.2f}" if key in med else "–"  # noqa: E731
            rows.append(
                f"| {B} | {C} | {H} | {G} | {p} | {fmt(f'cpu@1 {p}')} | {t_cpu * 1e3:.2f} ({min(result[f'cpu {p}']) * 1e3:.2f}) "
                f"| {med[f'cpu@1 {p}'] / t_cpu:.2f}× | {fmt(f'eager {p}')} | {fmt(f'unfold {p}')} "
                f"| {fmt(f'compile {p}')} | {fmt(f'depthwise {p}')} | {bound * 1e3:.2f} | {bytes_ / t_cpu / 1e9:.1f} "
                f"| {100 * bound / t_cpu:.0f}% | {min(others) / t_cpu:.1f}× |"
            )
            print(rows[-1], flush=True)
        record["cases"].append({
            "case": dict(zip("B C H K G".split(), case)), "copy_gbps": bw, "matmul_flops": peak,
            "depthwise_min_bytes": {"fwd": conv_min_bytes_fwd(B, C, H, H, K, C, H, H, 4),
                                    "bwd": conv_min_bytes_bwd(B, C, H, H, K, C, H, H, 4)},
            "samples_s": result,
        })
        print(f"   (copy {bw:.1f} GB/s, matmul {peak / 1e9:.0f} GFLOP/s at {threads} threads)", flush=True)
    print("\n" + header)
    print("|" + "---|" * (header.count("|") - 1))
    print("\n".join(rows))
    record["table"] = [header] + rows
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(record, fh, indent=1)


if __name__ == "__main__":
    main()
