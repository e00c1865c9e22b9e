"""pytest-benchmark regression benchmarks: every registered variant at a few paper shapes (`make bench-ci`).

Op-level RedNet-50 bottleneck shapes (spec §1–§4, K = 7, G = C/16, batch 1, float32, CPU): small
enough for a CI CPU, large enough that the kernels, not Python, dominate. Variants that can't run
here (no CUDA, a missing compiler, ...) are skipped with the registry's reasons. The first calls
(which may compile) happen before timing. Benchmarks are grouped by case, so each table compares
the variants of one case.

Each machine stores its baseline as benchmarks/baseline/<machine>.json (`make bench-baseline`); see benchmarks/README.md.
"""
from __future__ import annotations

import pytest
import torch

from invobench import registry
from invobench.core import Case

#: (C, H=W) of the RedNet-50 stages 3 and 4: the cheapest paper shapes (stages 1–2 cost minutes more in
#: the unfold and attention variants on a CI CPU without adding information)
SHAPES = ((256, 14), (512, 7))
#: fwd at every shape; fwd+bwd at the smallest only
ITEMS = [(C, H, "fwd") for C, H in SHAPES] + [(SHAPES[-1][0], SHAPES[-1][1], "fwd+bwd")]
FAMILIES = ("involution", "conv", "attention")
WARMUP_CALLS = 2
ROUNDS = 9


def _params():
    for variant in sorted(registry.all_variants(), key=lambda v: v.key):
        if variant.family not in FAMILIES:
            continue
        for C, H, pass_ in ITEMS:
            yield pytest.param(variant.key, Case(B=1, C=C, H=H, W=H, K=7, G=C // 16), pass_,
                               id=f"{variant.key}-{pass_}-C{C}-{H}x{H}")


def _call(workload, pass_: str):
    if pass_ == "fwd":
        def forward():
            with torch.no_grad():
                return workload.fn()
        return forward
    grad_out = torch.randn_like(workload.fn()).detach()

    def forward_backward():
        for tensor in workload.inputs:
            tensor.grad = None
        workload.fn().backward(grad_out)

    return forward_backward


@pytest.mark.parametrize("variant_key, case, pass_", list(_params()))
def test_latency(benchmark, variant_key: str, case: Case, pass_: str):
    variant = registry.get(variant_key)
    reasons = variant.why_not(case, backward=pass_ != "fwd")
    if reasons:
        pytest.skip("; ".join(reasons))
    workload = variant.build(case, pass_ != "fwd")
    call = _call(workload, pass_)
    for _ in range(WARMUP_CALLS):  # compile / autotune / page in, outside the timing
        call()
    benchmark.group = f"{pass_} {case.label()}"
    benchmark.extra_info.update(variant=variant_key, case=case.as_dict(), pass_=pass_, threads=torch.get_num_threads())
    benchmark.pedantic(call, rounds=ROUNDS, iterations=1, warmup_rounds=1)
