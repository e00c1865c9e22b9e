"""A/B of involution.cpu kernel builds in one process: each build compiled from a source file with extra
flags, every kernel of every build timed in interleaved rounds of random order, best CPU time kept.

    .venv/bin/python tools/cpu_ab.py OLD.cpp NEW.cpp                      # two sources
    .venv/bin/python tools/cpu_ab.py SRC.cpp "SRC.cpp:-DSOME_SWITCH"      # one source, two flag sets
    SHAPE=8,256,56,7,1,1 MACS=1e9 ROUNDS=8 .venv/bin/python tools/cpu_ab.py ...

SHAPE = B,C,H,K,stride,dilation (G = C/16; default 1,64,56,7,1,1); MACS = work per timed batch of calls;
ROUNDS = rounds; THREADS = OpenMP threads per call (default 1). One thread is timed by
`time.process_time()`, more by wall time (CPU time would count the threads' spin-waits): on a shared
host another tenant on the sibling hyperthread still slows a round, so compare builds measured in the
same run, and take the best of many short rounds. Prints GMAC per CPU-second (one thread) or per
second (more) of forward, grad_input and grad_kernel.
For DRAM-sized shapes set THP_MEM_ALLOC_ENABLE=1, as the benchmark workers do.
"""
import ctypes
import hashlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

import torch

FLAGS = ["-O3", "-fopenmp", "-ffp-contract=fast", "-march=native", "-std=c++17", "-fPIC", "-shared"]


def declare_c_abi(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Argument and return types of the three kernels of csrc/involution_cpu.cpp's C ABI in `lib`."""
    for fn in ("forward", "grad_input", "grad_kernel"):
        f = getattr(lib, f"invobench_involution_{fn}")
        f.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_int64), ctypes.c_int] + [ctypes.c_void_p] * 3
        f.restype = ctypes.c_int
    return lib


def build(spec: str) -> ctypes.CDLL:
    src, _, extra = spec.partition(":")
    flags = extra.split()
    key = hashlib.sha256((open(src).read() + " ".join(flags)).encode()).hexdigest()[:12]
    so = os.path.join(tempfile.gettempdir(), f"invobench_cpu_ab_{key}.so")
    if not os.path.exists(so):
        subprocess.check_call(["g++", *FLAGS, "-o", so, src, *flags])
    return declare_c_abi(ctypes.CDLL(so))


def single_call_medians(calls: dict, rounds: int, warmup: int = 1, seed: int = 0) -> dict:
    """Median ms of single calls: every call once per round, in random order, by the runner's own
    sampler (`sample_interleaved`, fixed at `rounds` samples each; tools/cpu_call_ab.py,
    tools/cpu_threads_ab.py: what a call costs between other work, as `invobench run` samples)."""
    from invobench.bench.timing import CpuTimer, SamplingPolicy, VariantSampling, sample_interleaved

    for fn in calls.values():
        for _ in range(warmup):
            fn()
    results = {key: VariantSampling() for key in calls}
    policy = SamplingPolicy(case_s=float("inf"), min_samples=rounds, max_samples=rounds)
    sample_interleaved(calls, CpuTimer(), policy, results, random.Random(seed))
    for key, res in results.items():
        if res.error is not None:
            raise RuntimeError(f"{key} failed while sampled") from res.error
    return {key: statistics.median(res.samples_ms) for key, res in results.items()}


def main() -> None:
    specs = sys.argv[1:]
    if not specs:
        sys.exit(__doc__)
    B, C, H, K, s, d = map(int, os.environ.get("SHAPE", "1,64,56,7,1,1").split(","))
    libs = [build(spec) for spec in specs]
    threads = int(os.environ.get("THREADS", 1))
    torch.set_num_threads(threads)
    clock, unit = (time.process_time, "GMAC/cpu-s") if threads == 1 else (time.perf_counter, f"GMAC/s on {threads} threads")
    G, p = max(1, C // 16), d * (K - 1) // 2
    Ho = (H + 2 * p - d * (K - 1) - 1) // s + 1
    x, w, g = torch.randn(B, C, H, H), torch.randn(B, G, K * K, Ho, Ho) / K, torch.randn(B, C, Ho, Ho)
    out, gw, gx = torch.empty_like(g), torch.empty_like(w), torch.empty_like(x)
    macs = B * C * Ho * Ho * K * K
    calls = max(2, int(float(os.environ.get("MACS", 3e7)) // macs))
    jobs = (("forward", x, w, out), ("grad_input", g, w, gx), ("grad_kernel", g, x, gw))
    shape = (ctypes.c_int64 * 8)(B, C, H, H, G, K, s, d)
    best = {(i, fn): float("inf") for i in range(len(libs)) for fn, *_ in jobs}
    for _ in range(int(os.environ.get("ROUNDS", 30))):
        order = [(i, job) for i in range(len(libs)) for job in jobs]
        random.shuffle(order)
        for i, (fn, a, b, o) in order:
            f = getattr(libs[i], f"invobench_involution_{fn}")
            t0 = clock()
            for _ in range(calls):
                assert f(0, shape, threads, a.data_ptr(), b.data_ptr(), o.data_ptr()) == 0
            best[(i, fn)] = min(best[(i, fn)], (clock() - t0) / calls)
    for i, spec in enumerate(specs):
        print(f"{spec:48s}", "  ".join(f"{fn} {macs / best[(i, fn)] / 1e9:5.1f}" for fn, *_ in jobs), unit)


if __name__ == "__main__":
    main()
