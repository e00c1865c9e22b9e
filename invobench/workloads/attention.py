"""Benchmark workloads of the local self-attention baselines: the core on q, k, v at op level, the layer
(with its q/k/v projections) at layer level."""
from __future__ import annotations

import dataclasses

import torch

from invobench.core import Case, Variant, Workload
from invobench.nn import LocalSelfAttention2d
from invobench.ops.attention import VARIANTS


def build_for(variant: Variant):
    def build(case: Case, requires_grad: bool) -> Workload:
        gen = torch.Generator().manual_seed(0)
        if case.level == "layer":
            module = LocalSelfAttention2d(case.C, case.G, case.K, case.stride, rpb=case.rpb, dilation=case.dilation,
                                          variant=variant.name).to(case.device, case.torch_dtype)
            x = torch.randn(case.B, case.C, case.H, case.W, generator=gen).to(case.device, case.torch_dtype)
            return Workload(lambda: module(x.requires_grad_(requires_grad)), [x], module=module)
        q, k, v = (torch.randn(case.B, case.C, case.H, case.W, generator=gen).to(case.device, case.torch_dtype)
                   .requires_grad_(requires_grad) for _ in range(3))
        rpb = None
        if case.rpb:
            rpb = (0.1 * torch.randn(case.G, 2 * case.K - 1, 2 * case.K - 1, generator=gen)).to(case.device, case.torch_dtype)
            rpb.requires_grad_(requires_grad)
        fn = variant.op
        inputs = [q, k, v] + ([rpb] if rpb is not None else [])
        return Workload(lambda: fn(q, k, v, case.G, case.K, case.stride, case.dilation, rpb), inputs)

    return build


def variants() -> list[Variant]:
    return [dataclasses.replace(v, build=build_for(v)) for v in VARIANTS]
