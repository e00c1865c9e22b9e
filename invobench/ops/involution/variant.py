"""How an involution implementation becomes a variant: `involution_variant(name, ...)`.

Each backend module (eager, unfold, compile, cpu, triton, cuda) calls it once per implementation
and lists the results in its `VARIANTS`; `invobench.ops.involution.variants` collects them. The
variant's `op` is a torch custom op (so torch.compile, FlopCounterMode and fvcore see it) made by
`define_involution_op`, or a differentiable callable over an op defined elsewhere (the C++ kernel).
"""
from __future__ import annotations

from typing import Callable, Optional

from invobench.core import Case, Variant, no_info, no_reasons
from invobench.ops.involution.custom_op import define_involution_op

ALL_FLOAT = ("float64", "float32", "bfloat16", "float16")


def involution_case_reasons(case: Case) -> list[str]:
    """Shape constraints every involution variant shares."""
    reasons = []
    if case.K % 2 == 0:
        reasons.append(f"K={case.K} is even; involution needs an odd kernel size")
    if case.G < 1 or case.C % case.G:
        reasons.append(f"C={case.C} is not divisible by G={case.G}")
    if case.level == "layer" and case.C // max(case.reduction, 1) < 1:
        reasons.append(f"reduction={case.reduction} exceeds C={case.C}: the layer's kernel generator reduces C to "
                       f"C // reduction channels and needs at least one")
    return reasons


def involution_variant(
    name: str,
    forward: Optional[Callable] = None,
    backward: Optional[Callable] = None,
    *,
    apply: Optional[Callable] = None,
    devices: tuple[str, ...],
    dtypes: tuple[str, ...],
    description: str,
    requirements: Callable[[], list[str]] = no_reasons,
    case_reasons: Callable[[Case], list[str]] = no_reasons,
    info: Callable[[Case], dict] = no_info,
) -> Variant:
    """The variant `involution.<name>`: either `forward` and `backward` (Python functions, made into the
    custom op `invobench::involution_<name>` here) or `apply`, a differentiable callable over an op
    defined elsewhere (`define_native_involution_op`). Its `op(x, kernel, K, stride, dilation)` is the apply."""
    if (apply is None) == (forward is None or backward is None):
        raise TypeError(f"involution variant {name!r}: pass either forward and backward, or apply")
    op = apply if apply is not None else define_involution_op(name, forward, backward)
    return Variant(
        name=name, family="involution", levels=("op", "layer"), devices=devices, dtypes=dtypes,
        supports_backward=True, description=description, requirements=requirements,
        case_reasons=lambda case: involution_case_reasons(case) + case_reasons(case), info=info, op=op,
    )
