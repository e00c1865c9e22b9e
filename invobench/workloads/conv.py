"""Benchmark workloads of the convolution baselines: F.conv2d at op level, the nn layers at layer level."""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from invobench.core import Case, Variant, Workload, padding_for
from invobench.nn import DenseConv2d, DepthwiseConv2d, GroupedConv2d
from invobench.ops.conv import CONV_GROUPS, VARIANTS


def build_for(name: str):
    def build(case: Case, requires_grad: bool) -> Workload:
        groups = CONV_GROUPS[name](case)
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(case.B, case.C, case.H, case.W, generator=gen)
        x = x.to(case.device, case.torch_dtype)
        if case.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x.requires_grad_(requires_grad)
        if case.level == "op":
            w = (torch.randn(case.C, case.C // groups, case.K, case.K, generator=gen) / case.K).to(case.device, case.torch_dtype)
            w.requires_grad_(requires_grad)
            p = padding_for(case.K, case.dilation)
            return Workload(lambda: F.conv2d(x, w, None, case.stride, p, case.dilation, groups), [x, w])
        if name == "dense":
            module = DenseConv2d(case.C, case.K, case.stride, case.dilation)
        elif name == "grouped":
            module = GroupedConv2d(case.C, case.K, case.stride, case.C // case.G, case.dilation)
        else:
            module = DepthwiseConv2d(case.C, case.K, case.stride, case.dilation)
        module = module.to(case.device, case.torch_dtype)
        if case.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return Workload(lambda: module(x), [x], module=module)

    return build


def variants() -> list[Variant]:
    return [dataclasses.replace(v, build=build_for(v.name)) for v in VARIANTS]
