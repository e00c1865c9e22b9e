"""Convolution baselines (spec §3): torch conv2d, dense, grouped and depthwise, declared as variants."""
from __future__ import annotations

from invobench.core import Case, Variant

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


VARIANTS = tuple(
    Variant(
        name=name, family="conv", levels=("op", "layer"), devices=("cpu", "cuda"),
        dtypes=("float64", "float32", "bfloat16", "float16"), supports_backward=True,
        description=description, case_reasons=conv_case_reasons(name),
    )
    for name, description in (
        ("dense", "torch conv2d, groups=1 (C²·K² weights)"),
        ("grouped", "torch conv2d with G groups"),
        ("depthwise", "torch conv2d with groups=C: the apply's MACs with static weights"),
    )
)
