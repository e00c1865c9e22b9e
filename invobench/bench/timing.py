"""Timers and the adaptive, interleaved sampler (spec §6 "latency").

One sample is one call, device-synchronised:
- CPU: `time.perf_counter()` around the call (`CpuTimer`).
- CUDA: a pair of CUDA events around each call, the L2 cache flushed before it by overwriting a
  buffer twice the L2 size (`CudaEventTimer`); optionally replays of a captured CUDA graph of the
  call (`CudaGraphTimer`), which removes the launch overhead from the sample.

The variants of one case are sampled in rounds, each round in a fresh random order (A B, B A, ...),
so drift and throttling hit them alike. A variant stops when IQR/median of its samples falls to the
threshold or when its time budget runs out (either only after `min_samples`, so every variant has
at least that many samples for `invobench compare` to judge), or at
`max_samples`. Warm-up is by time, after a separately timed first call (which may compile).
Every sample is kept. Garbage collection is off while sampling (as `timeit` does).
"""
from __future__ import annotations

import gc
import math
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

#: the fewest samples a suite may ask for (`budget.min_samples`): an IQR needs a few
FLOOR_SAMPLES = 3


@dataclass(frozen=True)
class SamplingPolicy:
    warmup_s: float = 0.2
    case_s: float = 1.0
    min_samples: int = 5
    max_samples: int = 200
    rel_iqr: float = 0.05
    #: time guard: a variant whose second call takes longer than this is not sampled (None: no guard)
    max_call_s: Optional[float] = None


def summarize(samples_ms: list[float]) -> dict:
    """Stats of `invobench.results.Stats`: n, median, quartiles (linear interpolation), IQR, min, max, mean, std (n−1)."""
    a = np.asarray(samples_ms, dtype=float)
    if a.size == 0:
        raise ValueError("no samples to summarise")
    q1, median, q3 = (float(v) for v in np.percentile(a, [25, 50, 75]))
    return {
        "n": int(a.size), "median_ms": median, "q1_ms": q1, "q3_ms": q3, "iqr_ms": q3 - q1,
        "min_ms": float(a.min()), "max_ms": float(a.max()), "mean_ms": float(a.mean()),
        "std_ms": float(a.std(ddof=1)) if a.size > 1 else 0.0,
    }


def relative_iqr(samples_ms: list[float]) -> float:
    """IQR / median (inf for fewer than 2 samples or a zero median)."""
    if len(samples_ms) < 2:
        return math.inf
    q1, median, q3 = np.percentile(samples_ms, [25, 50, 75])
    return float((q3 - q1) / median) if median > 0 else math.inf


def stop_reason(samples_ms: list[float], spent_s: float, policy: SamplingPolicy) -> Optional[str]:
    """Why sampling of one variant should stop now, or None to go on."""
    n = len(samples_ms)
    if n >= policy.max_samples:
        return "max_samples"
    if n >= policy.min_samples and relative_iqr(samples_ms) <= policy.rel_iqr:
        return "converged"
    if spent_s >= policy.case_s and n >= policy.min_samples:
        return "budget"
    return None


class CpuTimer:
    """Wall time of one call with `time.perf_counter` (CPU work is synchronous)."""

    method = "perf_counter"
    l2_flush: Optional[bool] = None

    def time_call(self, fn: Callable[[], object]) -> float:
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3

    def synchronize(self) -> None:
        pass

    def prepare(self, fn: Callable[[], object]) -> Callable[[], object]:
        return fn


class CudaEventTimer:
    """CUDA events recorded around each call on the current stream; L2 flushed before each call.

    The flush writes a buffer of twice the L2 size (at least 64 MiB) so no operand of the call is
    L2-resident from the previous call; the flush runs before the start event, outside the sample.
    """

    method = "cuda_event"

    def __init__(self, device: str = "cuda", l2_flush: bool = True):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.l2_flush = l2_flush
        self.flush_buffer = None
        if l2_flush:
            props = torch.cuda.get_device_properties(self.device)
            l2 = int(getattr(props, "L2_cache_size", 0) or 50 * 2**20)
            self.flush_buffer = torch.empty(max(2 * l2, 64 * 2**20) // 4, dtype=torch.int32, device=self.device)
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)

    def prepare(self, fn: Callable[[], object]) -> Callable[[], object]:
        return fn

    def time_call(self, fn: Callable[[], object]) -> float:
        if self.flush_buffer is not None:
            self.flush_buffer.zero_()
        self.start.record()
        fn()
        self.end.record()
        self.end.synchronize()
        return float(self.start.elapsed_time(self.end))

    def synchronize(self) -> None:
        self.torch.cuda.synchronize(self.device)


class CudaGraphTimer(CudaEventTimer):
    """Replays of a CUDA graph captured from the call, timed with events (no CPU launch overhead)."""

    method = "cuda_graph"

    def prepare(self, fn: Callable[[], object]) -> Callable[[], object]:
        """Capture `fn` (after 3 warm-up runs on a side stream, as CUDA graphs require); returns the replay."""
        torch = self.torch
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):
                fn()
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        self._graphs = getattr(self, "_graphs", []) + [graph]  # keep the graph (and its memory pool) alive
        return graph.replay


def timer_overhead_ms(timer, repeats: int = 2000) -> float:
    """Median time the timer reports for an empty call (its own cost, included in every sample)."""
    def noop() -> None:
        return None

    repeats = repeats if timer.method == "perf_counter" else max(repeats // 20, 20)
    samples = [timer.time_call(noop) for _ in range(repeats)]
    return float(statistics.median(samples))


@dataclass
class VariantSampling:
    """What the sampler measured for one variant."""

    samples_ms: list[float] = field(default_factory=list)
    first_call_ms: Optional[float] = None
    warmup_ms: float = 0.0
    warmup_calls: int = 0
    spent_s: float = 0.0
    stop_reason: Optional[str] = None
    error: Optional[BaseException] = None
    too_slow_ms: Optional[float] = None


def warm_up(fn: Callable[[], object], timer, warmup_s: float, max_call_s: Optional[float] = None) -> VariantSampling:
    """Time the first call on its own (it may compile), then call until `warmup_s` has passed (at least once).

    With `max_call_s`, stops after the second call if that one took longer (`too_slow_ms` set): the
    first call may compile, so the second is the first honest estimate of one call.
    """
    result = VariantSampling()
    t0 = time.perf_counter()
    fn()
    timer.synchronize()
    result.first_call_ms = (time.perf_counter() - t0) * 1e3
    t1 = time.perf_counter()
    while True:
        fn()
        timer.synchronize()
        result.warmup_calls += 1
        elapsed = time.perf_counter() - t1
        if result.warmup_calls == 1 and max_call_s is not None and elapsed > max_call_s:
            result.too_slow_ms = elapsed * 1e3
            break
        if elapsed >= warmup_s:
            break
    result.warmup_ms = (time.perf_counter() - t1) * 1e3
    return result


def sample_interleaved(
    calls: dict[str, Callable[[], object]],
    timer,
    policy: SamplingPolicy,
    results: dict[str, VariantSampling],
    rng: random.Random,
    on_switch: Callable[[str], None] = lambda key: None,
    ties: Sequence[Sequence[str]] = (),
) -> None:
    """Sample every variant in `calls` in rounds of random order until each one stops; fills `results`.

    An exception in one variant's call ends that variant (recorded in its result) and not the others.
    `ties`: sets of variants that stop together, when the last of them would stop (an A/B run's
    BASE and NEW twins: both keep the same rounds, so their samples cover the same moments).
    """
    tie_of = {k: [m for m in tie if m in calls] for tie in ties for k in tie if k in calls}
    active = [k for k in calls if results[k].error is None]
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        while active:
            order = active[:]
            rng.shuffle(order)
            for key in order:
                res = results[key]
                on_switch(key)
                t0 = time.perf_counter()
                try:
                    sample = timer.time_call(calls[key])
                except Exception as exc:  # the variant failed mid-sampling: keep its samples, report the error
                    res.error = exc
                    active.remove(key)
                    continue
                res.spent_s += time.perf_counter() - t0
                res.samples_ms.append(sample)
                reason = stop_reason(res.samples_ms, res.spent_s, policy)
                if reason:
                    res.stop_reason = reason
                    if key not in tie_of:
                        active.remove(key)
            # a tie stops at the end of a round, once each of its members still running would stop
            for tie in {tuple(t) for t in tie_of.values()}:
                live = [m for m in tie if m in active]
                if live and all(results[m].stop_reason for m in live):
                    for m in live:
                        active.remove(m)
    finally:
        if was_enabled:
            gc.enable()
