"""Convolution baselines (spec §3) as registered variants: torch conv2d, dense, grouped and depthwise."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from invobench.registry import Case, Variant, Workload, register
from invobench.shapes import padding_for

#: variant name -> conv groups for a case
CONV_GROUPS = {"dense": lambda case: 1, "grouped": lambda case: case.G, "depthwise": lambda case: case.C}


def conv_case_reasons(name: str):
    def reasons(case: Case) -> list[str]:
        out = []
        if case.K % 2 == 0:
            out.append(f"K={case.K} is even; the baselines use 'same' padding d·(K−1)/2, which needs odd K")
        groups = CONV_GROUPS[name](case)
        if groups < 1 or case.C % groups:
            out.append(f"C={case.C} is not divisible by groups={groups}")
        return out

    return reasons


def _build(name: str):
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
        from invobench.nn import DenseConv2d, DepthwiseConv2d, GroupedConv2d

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


for _name, _description in (
    ("dense", "torch conv2d, groups=1 (C²·K² weights)"),
    ("grouped", "torch conv2d with G groups"),
    ("depthwise", "torch conv2d with groups=C: the apply's MACs with static weights"),
):
    register(
        Variant(
            name=_name, family="conv", levels=("op", "layer"), devices=("cpu", "cuda"),
            dtypes=("float64", "float32", "bfloat16", "float16"), supports_backward=True,
            description=_description, build=_build(_name), case_reasons=conv_case_reasons(_name),
        )
    )
