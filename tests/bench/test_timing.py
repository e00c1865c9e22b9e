"""Timers, the adaptive interleaved sampler, statistics, roofline arithmetic and memory measurement."""
from __future__ import annotations

import random
import time

import pytest
import torch

from invobench.bench.memory import cpu_peak_bytes, estimate_peak_bytes, saved_for_backward_bytes
from invobench.bench.roofline import measure_roofline, roofline_fields
from invobench.bench.budget import pack_by_memory as _pack_by_memory, parse_mem_budget
from invobench.bench.timing import (
    FLOOR_SAMPLES, CpuTimer, SamplingPolicy, VariantSampling, relative_iqr, sample_interleaved, stop_reason, summarize,
    timer_overhead_ms, warm_up,
)
from invobench.registry import Case
from invobench.results import Stats


def test_summarize_matches_a_hand_computed_example():
    s = summarize([1.0, 2.0, 3.0, 4.0, 10.0])
    # numpy linear quartiles of 1,2,3,4,10: q1 = 2, median = 3, q3 = 4
    assert (s["n"], s["q1_ms"], s["median_ms"], s["q3_ms"], s["iqr_ms"]) == (5, 2.0, 3.0, 4.0, 2.0)
    assert (s["min_ms"], s["max_ms"], s["mean_ms"]) == (1.0, 10.0, 4.0)
    assert s["std_ms"] == pytest.approx(3.5355339, rel=1e-6)  # sample std (n-1)
    Stats(**s)  # fits the results schema
    assert summarize([2.5])["std_ms"] == 0.0
    with pytest.raises(ValueError):
        summarize([])


def test_relative_iqr():
    assert relative_iqr([1.0, 2.0, 3.0, 4.0, 10.0]) == pytest.approx(2 / 3)
    assert relative_iqr([5.0]) == float("inf")


@pytest.mark.parametrize("samples, spent, expected", [
    ([1.0] * 5, 0.0, "converged"),                     # zero spread after min_samples
    ([1.0] * 4, 0.0, None),                            # not yet min_samples
    ([1.0, 2.0, 4.0, 8.0, 16.0], 0.0, None),           # spread too wide, budget left
    ([1.0, 2.0, 4.0, 8.0, 16.0], 5.0, "budget"),       # budget spent
    ([1.0, 2.0, 4.0, 8.0], 5.0, None),                 # budget spent but below min_samples
    ([1.0, 9.0], 5.0, None),
    ([1.0, 9.0] * 10, 0.0, "max_samples"),
])
def test_stop_reason(samples, spent, expected):
    policy = SamplingPolicy(case_s=1.0, min_samples=5, max_samples=20, rel_iqr=0.05)
    assert stop_reason(samples, spent, policy) == expected
    assert FLOOR_SAMPLES == 3


class ScriptedTimer:
    """A timer that returns a fixed latency per variant and records the call order."""

    method = "scripted"
    l2_flush = None

    def __init__(self):
        self.order = []

    def time_call(self, fn):
        return fn()

    def synchronize(self):
        pass


def _steady_and_noisy(timer):
    """Variant A always takes 1 ms (converges at min_samples); B 1 or 3 ms at random (never converges)."""
    noise = random.Random(1)

    def steady():
        timer.order.append("A")
        return 1.0

    def noisy():
        timer.order.append("B")
        return noise.choice([1.0, 3.0])

    return steady, noisy


def test_interleaved_sampling_randomises_order_and_stops_each_variant_on_its_own():
    timer = ScriptedTimer()
    steady, noisy = _steady_and_noisy(timer)

    def broken():
        timer.order.append("C")
        if timer.order.count("C") == 3:
            raise RuntimeError("boom")
        return 2.0

    policy = SamplingPolicy(case_s=1e9, min_samples=5, max_samples=40, rel_iqr=0.05)
    results = {k: VariantSampling() for k in "ABC"}
    sample_interleaved({"A": steady, "B": noisy, "C": broken}, timer, policy, results, random.Random(0))
    assert results["A"].stop_reason == "converged" and len(results["A"].samples_ms) == 5
    assert results["B"].stop_reason == "max_samples" and len(results["B"].samples_ms) == 40
    assert isinstance(results["C"].error, RuntimeError) and len(results["C"].samples_ms) == 2
    # rounds are shuffled: in the first rounds both A-before-B and B-before-A occur
    firsts = [r for r in zip(timer.order[0::3], timer.order[1::3], timer.order[2::3])][:5]
    pairs = {tuple(x for x in r if x in "AB") for r in firsts}
    assert ("A", "B") in pairs and ("B", "A") in pairs


def test_tied_variants_sample_in_the_same_rounds_until_both_stop():
    timer = ScriptedTimer()
    steady, noisy = _steady_and_noisy(timer)

    policy = SamplingPolicy(case_s=1e9, min_samples=5, max_samples=40, rel_iqr=0.05)
    results = {k: VariantSampling() for k in "AB"}
    sample_interleaved({"A": steady, "B": noisy}, timer, policy, results, random.Random(0), ties=[["A", "B"]])
    # untied, A converges after 5 samples (the test above); tied to B it keeps going with B to B's max
    assert len(results["A"].samples_ms) == len(results["B"].samples_ms) == 40
    assert results["A"].stop_reason == results["B"].stop_reason == "max_samples"
    assert timer.order.count("A") == timer.order.count("B") == 40


def test_a_tie_with_a_failed_variant_lets_the_other_stop_on_its_own():
    timer = ScriptedTimer()

    def steady():
        return 1.0

    def broken():
        raise RuntimeError("boom")

    policy = SamplingPolicy(case_s=1e9, min_samples=5, max_samples=40, rel_iqr=0.05)
    results = {k: VariantSampling() for k in "AB"}
    sample_interleaved({"A": steady, "B": broken}, timer, policy, results, random.Random(0), ties=[["A", "B"]])
    assert isinstance(results["B"].error, RuntimeError) and len(results["A"].samples_ms) == 5


def test_cpu_timer_measures_a_sleep_and_reports_a_small_overhead():
    timer = CpuTimer()
    ms = timer.time_call(lambda: time.sleep(0.02))
    assert 19.0 <= ms < 200.0
    overhead = timer_overhead_ms(timer, repeats=500)
    assert 0.0 < overhead < 0.05  # perf_counter around an empty call: well under 50 µs


def test_warm_up_times_the_first_call_apart_and_runs_at_least_once_more():
    calls = []

    def fn():
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.03)  # a "compile" on the first call

    res = warm_up(fn, CpuTimer(), warmup_s=0.0)
    assert res.first_call_ms >= 29.0 and res.warmup_calls == 1 and len(calls) == 2


def test_roofline_fields_memory_and_compute_bound():
    # 1e9 bytes at 100 GB/s = 10 ms; 1e9 FLOPs at 1e12 FLOP/s = 1 ms -> memory-bound, bound 10 ms
    f = roofline_fields(flops=int(1e9), bytes_=int(1e9), median_ms=20.0, bandwidth_gbps=100.0, peak_flops=1e12)
    assert f["bound_by"] == "memory" and f["bound_ms"] == pytest.approx(10.0)
    assert f["pct_of_roofline"] == pytest.approx(50.0) and f["achieved_gbps"] == pytest.approx(50.0)
    assert f["achieved_flops"] == pytest.approx(5e10) and f["intensity_flop_per_byte"] == pytest.approx(1.0)
    g = roofline_fields(flops=int(1e11), bytes_=int(1e9), median_ms=200.0, bandwidth_gbps=100.0, peak_flops=1e12)
    assert g["bound_by"] == "compute" and g["bound_ms"] == pytest.approx(100.0) and g["pct_of_roofline"] == pytest.approx(50.0)
    # no byte model: no bound (FLOPs alone would understate it), achieved FLOP/s still reported
    h = roofline_fields(flops=int(1e9), bytes_=None, median_ms=1.0, bandwidth_gbps=100.0, peak_flops=1e12)
    assert h["pct_of_roofline"] is None and h["achieved_flops"] == pytest.approx(1e12)


def test_measure_roofline_small_cpu():
    r = measure_roofline("cpu", "float32", CpuTimer(), copy_mib=4, matmul_max_n=128, time_s=0.02)
    assert r["copy_bytes"] == 2 * 4 * 2**20 and r["copy_bandwidth_gbps"] > 0.05
    assert r["matmul_n"] == 128 and r["matmul_peak_flops"] > 1e6
    assert len(r["samples_copy_ms"]) >= 3 and len(r["samples_matmul_ms"]) >= 3


def test_cpu_peak_counts_live_allocations_during_the_call():
    x = torch.ones(1_000_000)

    def call():
        a = x * 2          # 4 MB
        b = a + 1          # 4 MB, a still live
        del a
        return b.sum()

    peak = cpu_peak_bytes(call)
    assert 8_000_000 <= peak <= 8_000_000 + 4096


def test_saved_for_backward_counts_each_storage_once():
    x = torch.ones(1000, requires_grad=True)
    y = torch.ones(1000, requires_grad=True)
    saved, out = saved_for_backward_bytes(lambda: (x * y).sum())
    assert saved == 2 * 4000  # mul saves x and y
    saved_sq, out = saved_for_backward_bytes(lambda: (x * x).sum())
    assert saved_sq == 4000  # x saved twice, one storage
    saved_view, out = saved_for_backward_bytes(lambda: (x[:10] * y[:10]).sum())
    assert saved_view == 2 * 4000  # a view counts its whole storage


def test_estimates_grow_with_k2_for_unfold_and_flex_materialises_scores():
    small = Case(B=1, C=64, H=56, W=56, K=3, G=4)
    big = small.replace(K=7)
    u3 = estimate_peak_bytes("involution", "unfold", small, "fwd")
    u7 = estimate_peak_bytes("involution", "unfold", big, "fwd")
    assert u7 > 4 * u3
    assert estimate_peak_bytes("involution", "unfold", big, "fwd+bwd") > u7
    # U = B·C·K²·Ho·Wo·4 = 64·49·3136·4 bytes; unfold fwd holds 2·U
    assert u7 >= 2 * 64 * 49 * 3136 * 4
    flex = estimate_peak_bytes("attention", "flex", big, "fwd")
    assert flex >= 2 * 4 * 3136 * 3136 * 4
    assert estimate_peak_bytes("family-without-a-model", "x", big, "fwd") is None


def test_pack_by_memory_splits_groups_to_fit():
    from invobench.bench.cases import BenchItem

    items = [(BenchItem(Case(B=1, C=1, H=1, W=1), "conv", f"v{i}", "fwd", str(i)), est) for i, est in enumerate([6, 5, None, 4])]
    chunks = _pack_by_memory(items, budget=10)
    assert [[i.variant for i, _ in c] for c in chunks] == [["v0"], ["v1", "v2", "v3"]]


@pytest.mark.parametrize("text, expected", [
    ("50%", 500), ("0.25", 250), ("1", 1000), ("2KiB", 2048), ("2K", 2048), ("2KB", 2000), ("1.5GiB", int(1.5 * 2**30)),
    ("3000B", 3000), ("2B", 2),
])
def test_parse_mem_budget(text, expected):
    assert parse_mem_budget(text, available_bytes=1000) == expected


@pytest.mark.parametrize("text", ["lots", "150%", "-3", "0%", "0", "0B", "nan"])
def test_parse_mem_budget_rejects_nonsense(text):
    with pytest.raises(ValueError, match="is not a size"):
        parse_mem_budget(text, available_bytes=1000)


@pytest.mark.parametrize("text", ["2", "3000", "1.5"])
def test_a_plain_number_above_one_is_refused_as_ambiguous(text):
    # before, "2" meant 2 bytes while "1" meant 100 %: one rule now, and the error shows both readings
    with pytest.raises(ValueError, match=f"has no unit: write {text}B for bytes, or {text}GiB"):
        parse_mem_budget(text, available_bytes=1000)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_event_timer_flushes_l2_and_times_a_kernel():
    from invobench.bench.memory import cuda_peak_bytes
    from invobench.bench.timing import CudaEventTimer, CudaGraphTimer

    timer = CudaEventTimer("cuda", l2_flush=True)
    props = torch.cuda.get_device_properties(0)
    assert timer.flush_buffer.numel() * 4 >= 2 * props.L2_cache_size
    x = torch.randn(1 << 24, device="cuda")
    ms = [timer.time_call(lambda: x.mul_(1.0)) for _ in range(10)]
    assert all(m > 0 for m in ms)
    graph_timer = CudaGraphTimer("cuda", l2_flush=True)
    replay = graph_timer.prepare(lambda: x.mul_(1.0))
    assert graph_timer.time_call(replay) > 0
    assert cuda_peak_bytes(lambda: x * 2) >= x.numel() * 4
