"""suites/gpu-quick.yaml holds what the GPU check must measure, and its estimated duration on an H100 (the
cases' minimum bytes at 3 TB/s, the sampling budget, worker start-up; plus first calls with warm caches) is
under 4 minutes. The estimate is a model, not a measurement: the GPU run's log and summary.md give the real one."""
from __future__ import annotations

from pathlib import Path

import pytest

from invobench.bench.cases import expand_suite
from invobench.bench.suite import Budget, load_suite
from invobench.registry import all_variants

from tools_loader import load_tool

ROOT = Path(__file__).resolve().parents[2]
FOUR_MINUTES_S = 240.0


gpu_check = load_tool("gpu_check")


@pytest.fixture(scope="module")
def items():
    known = [v.key for v in all_variants()]
    return expand_suite(load_suite("gpu-quick", known), known)


def test_gpu_quick_covers_every_gpu_path_the_issue_names(items):
    ops = [i for i in items if i.case.level == "op"]
    involution_on_cuda = {v.key for v in all_variants("involution") if "cuda" in v.devices}
    assert involution_on_cuda | {"conv.depthwise", "conv.grouped", "conv.dense", "attention.flex-compile"} <= \
        {i.key for i in ops}
    assert {(i.case.C, i.case.H, i.case.W) for i in ops} == {(64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7)}
    assert {i.case.B for i in ops} == {32} and {i.case.K for i in ops} == {7}
    assert all(i.case.G == i.case.C // 16 and i.case.device == "cuda" for i in ops)
    assert {i.case.dtype for i in ops} == {"float32", "bfloat16"}
    assert {i.pass_ for i in ops} == {"fwd", "bwd", "fwd+bwd"}
    models = [i for i in items if i.case.level == "model"]
    assert {i.key for i in models} >= {"model.resnet50", "model.rednet50-triton", "model.rednet50-cuda"}
    assert {(i.case.B, i.case.dtype, i.case.channels_last, i.case.H) for i in models} == {(32, "bfloat16", True, 224)}
    assert {i.pass_ for i in models} == {"fwd", "train"}


def test_gpu_quick_takes_under_four_minutes_on_an_h100():
    est = gpu_check.estimate("gpu-quick")
    report = "\n".join(est.lines())
    assert est.runnable == 270, report  # 24 groups × 11 variants that run on CUDA + 6 model records
    assert est.start_s >= 10 and est.roofline_s > 0 and est.sampling_s > 0, report
    assert est.formula_s < FOUR_MINUTES_S, report
    assert est.total_s < FOUR_MINUTES_S, report
    # without the prewarm the compiles alone would not fit: the reason the check warms the caches first
    assert est.formula_s + est.cold_compile_s > FOUR_MINUTES_S, report


def test_sampling_follows_the_samplers_stopping_rules():
    budget = Budget(warmup_s=0.1, case_s=0.4, min_samples=10, max_samples=100)
    per_sample = gpu_check.SAMPLE_OVERHEAD_S
    # a 40 µs call stops at max_samples, long before case_s
    fast = 40e-6
    assert gpu_check.sampling_seconds(fast, budget) == pytest.approx(
        fast + 0.1 + 100 * (fast + per_sample) + 2 * fast)
    # a 10 ms call samples until case_s
    assert gpu_check.sampling_seconds(0.01, budget) == pytest.approx(0.01 + 0.1 + 0.4 + 0.02)
    # a 100 ms call still takes min_samples, warm-up is at least one call
    assert gpu_check.sampling_seconds(0.1, budget) == pytest.approx(0.1 + 0.1 + 10 * (0.1 + per_sample) + 0.2)


def test_the_call_model_is_the_minimum_bytes_at_three_terabytes_per_second(items):
    item = next(i for i in items if i.key == "involution.cuda" and i.pass_ == "fwd" and i.case.C == 64
                and i.case.dtype == "float32")
    # x and out (B·C·H·W) and the kernel tensor (B·G·K²·H·W), 4 bytes each
    expected = 4 * (2 * 32 * 64 * 56 * 56 + 32 * 4 * 49 * 56 * 56)
    assert gpu_check.call_seconds(item) == pytest.approx(expected / 3e12)
    model = next(i for i in items if i.key == "model.resnet50" and i.pass_ == "train")
    assert gpu_check.call_seconds(model) > 0
