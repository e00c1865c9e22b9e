"""Involution apply (spec §1): the public `involution()` and its registered variants.

Each variant is a torch custom op made by `define_involution_op` (so compile, FlopCounterMode
and fvcore see it) plus a registry entry made by `register_involution_variant` (so dispatch,
`invobench list`, `check` and the runner know what it can run). Optional backends (Triton,
CUDA, the C++ CPU kernel) live in their own modules and register themselves at import,
importing their heavy dependencies lazily.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from invobench.ops.involution.compiled import involution_compiled, involution_compiled_backward
from invobench.ops.involution.custom_op import define_involution_op
from invobench.ops.involution.reference import involution_reference, involution_reference_backward
from invobench.ops.involution.unfold import involution_unfold, involution_unfold_backward
from invobench.registry import Case, Variant, Workload, get, register
from invobench.shapes import check_involution_args, padding_for

#: variant name -> callable(x, kernel, kernel_size, stride, dilation) (the custom op)
APPLY: dict[str, Callable] = {}
#: `variant="auto"` takes the first of these that can run the input, per device. On CPU the
#: Triton interpreter (TRITON_INTERPRET=1) is a test vehicle, never a default.
AUTO_ORDER = {"cuda": ["triton", "cuda", "eager"], "cpu": ["cpu", "eager"]}

ALL_FLOAT = ("float64", "float32", "bfloat16", "float16")


def involution_case_reasons(case: Case) -> list[str]:
    """Shape constraints every involution variant shares."""
    reasons = []
    if case.K % 2 == 0:
        reasons.append(f"K={case.K} is even; involution needs an odd kernel size")
    if case.G < 1 or case.C % case.G:
        reasons.append(f"C={case.C} is not divisible by G={case.G}")
    return reasons


def make_inputs(case: Case, requires_grad: bool, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic x (B, C, H, W) and kernel (B, G, K², Ho, Wo) for a case, on its device and dtype."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(case.B, case.C, case.H, case.W, generator=gen, dtype=torch.float32)
    kernel = torch.randn(case.B, case.G, case.K * case.K, case.Ho, case.Wo, generator=gen, dtype=torch.float32)
    kernel /= case.K  # keeps the output's scale near x's, so fp16 cannot overflow
    x = x.to(device=case.device, dtype=case.torch_dtype)
    kernel = kernel.to(device=case.device, dtype=case.torch_dtype)
    if case.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x.requires_grad_(requires_grad), kernel.requires_grad_(requires_grad)


def _build(name: str):
    def build(case: Case, requires_grad: bool) -> Workload:
        if case.level == "op":
            x, kernel = make_inputs(case, requires_grad)
            apply = APPLY[name]
            return Workload(lambda: apply(x, kernel, case.K, case.stride, case.dilation), [x, kernel])
        from invobench.nn import Involution2d

        layer = Involution2d(
            case.C, case.K, case.stride, group_channels=case.C // case.G, reduction=case.reduction,
            dilation=case.dilation, variant=name,
        ).to(device=case.device, dtype=case.torch_dtype)
        if case.channels_last:
            layer = layer.to(memory_format=torch.channels_last)
        x, _ = make_inputs(case, requires_grad)
        return Workload(lambda: layer(x), [x], module=layer)

    return build


def register_involution_variant(
    name: str,
    forward: Optional[Callable] = None,
    backward: Optional[Callable] = None,
    *,
    apply: Optional[Callable] = None,
    devices: tuple[str, ...],
    dtypes: tuple[str, ...],
    description: str,
    requirements: Callable[[], list[str]] = lambda: [],
    case_reasons: Callable[[Case], list[str]] = lambda case: [],
    info: Callable[[Case], dict] = lambda case: {},
) -> Variant:
    """Define the custom op for an implementation and register it as `involution.<name>`.

    Either `forward` and `backward` (Python functions made into a custom op here) or `apply`, a
    differentiable callable over an op defined elsewhere (`define_native_involution_op`)."""
    if (apply is None) == (forward is None or backward is None):
        raise TypeError(f"involution variant {name!r}: pass either forward and backward, or apply")
    APPLY[name] = apply if apply is not None else define_involution_op(name, forward, backward)
    return register(
        Variant(
            name=name,
            family="involution",
            levels=("op", "layer"),
            devices=devices,
            dtypes=dtypes,
            supports_backward=True,
            description=description,
            build=_build(name),
            requirements=requirements,
            case_reasons=lambda case: involution_case_reasons(case) + case_reasons(case),
            info=info,
        )
    )


def register_unavailable_variant(name: str, devices: tuple[str, ...], dtypes: tuple[str, ...], description: str, reason: str) -> Variant:
    """A placeholder entry for a backend that isn't built yet: listed, never runnable."""

    def build(case: Case, requires_grad: bool) -> Workload:
        raise RuntimeError(f"involution.{name} is unavailable: {reason}")

    return register(
        Variant(name, "involution", ("op", "layer"), devices, dtypes, True, description, build, requirements=lambda: [reason])
    )


register_involution_variant(
    "eager", involution_reference, involution_reference_backward, devices=("cpu", "cuda"), dtypes=ALL_FLOAT,
    description="reference loop over the K² taps in PyTorch ops; float64-capable ground truth",
)
register_involution_variant(
    "unfold", involution_unfold, involution_unfold_backward, devices=("cpu", "cuda"), dtypes=ALL_FLOAT,
    description="the paper's naive form: unfold to (B, C·K², L), multiply, sum (K²× input memory)",
)
register_involution_variant(
    "compile", involution_compiled, involution_compiled_backward, devices=("cpu", "cuda"),
    dtypes=("float32", "bfloat16", "float16"),
    description="torch.compile (inductor) of the tap loop, forward and explicit backward",
)

# Optional backends: each module registers itself (or a placeholder saying why it can't).
from invobench.ops.involution import backends as _backends  # noqa: E402,F401


def variant_for(x: torch.Tensor, variant: str) -> str:
    """Resolve `variant` ("auto" or a name) for an input, raising with the variant's reasons if it can't run."""
    dtype = str(x.dtype).removeprefix("torch.")
    case = Case(B=1, C=1, H=1, W=1, K=1, G=1, dtype=dtype, device=x.device.type)
    if variant == "auto":
        for name in AUTO_ORDER.get(x.device.type, ["eager"]):
            if name in APPLY and not get(name, "involution").why_not(case):
                return name
        return "eager"
    spec = get(variant, "involution")  # raises with the known names
    reasons = spec.why_not(case)
    if reasons:
        raise ValueError(f"involution variant {variant!r} cannot run a {dtype} tensor on {x.device}: " + "; ".join(reasons))
    return variant


def involution(
    x: torch.Tensor, kernel: torch.Tensor, *, kernel_size: int, stride: int = 1, dilation: int = 1, variant: str = "auto"
) -> torch.Tensor:
    """The involution apply of spec §1.

    out[b, g·Cg+c, ho, wo] = Σ_{i,j<K} kernel[b, g, i·K+j, ho, wo] · x[b, g·Cg+c, ho·s−p+i·d, wo·s−p+j·d],
    x (B, C, H, W), kernel (B, G, K², Ho, Wo), zero padding p = d·(K−1)/2, output (B, C, Ho, Wo).
    """
    check_involution_args(x, kernel, kernel_size, stride, dilation)
    name = variant_for(x, variant)
    if x.shape[0] == 0:
        return involution_reference(x, kernel, kernel_size, stride, dilation)
    return APPLY[name](x, kernel, kernel_size, stride, dilation)


__all__ = ["involution", "APPLY", "AUTO_ORDER", "register_involution_variant", "padding_for", "make_inputs"]
