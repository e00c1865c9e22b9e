"""Benchmark workloads of the involution variants: the apply at op level, `Involution2d` at layer level."""
from __future__ import annotations

import dataclasses

import torch

from invobench.core import Case, Variant, Workload
from invobench.nn import Involution2d
from invobench.ops.involution import VARIANTS, make_inputs


def build_for(variant: Variant):
    def build(case: Case, requires_grad: bool) -> Workload:
        if case.level == "op":
            x, kernel = make_inputs(case, requires_grad)
            apply = variant.op
            return Workload(lambda: apply(x, kernel, case.K, case.stride, case.dilation), [x, kernel])
        layer = Involution2d(
            case.C, case.K, case.stride, group_channels=case.C // case.G, reduction=case.reduction,
            dilation=case.dilation, variant=variant.name,
        ).to(device=case.device, dtype=case.torch_dtype)
        if case.channels_last:
            layer = layer.to(memory_format=torch.channels_last)
        x, _ = make_inputs(case, requires_grad)
        return Workload(lambda: layer(x), [x], module=layer)

    return build


def variants() -> list[Variant]:
    return [dataclasses.replace(v, build=build_for(v)) for v in VARIANTS]
