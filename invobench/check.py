"""`invobench check`: every available variant against the float64 reference, forward and backward.

The fixed shape set covers what kernels get wrong: odd H/W, stride 2, dilation 2, K ∈ {1,3,5,7},
G = 1 and G = C, batch 1, channels_last and non-contiguous inputs. Each result is judged by
`invobench.testing.compare` (one per-dtype tolerance table; low precision against 2× the error of
the plain PyTorch reference run in that same precision).
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Callable, Iterable, Optional

import torch
import torch.nn.functional as F

from invobench.ops.attention import ATTENTION
from invobench.ops.attention.unfold import neighborhood_attention_unfold
from invobench.ops.involution import involution
from invobench.ops.involution.reference import involution_reference
from invobench.core import Case, Variant, padding_for
from invobench.registry import all_variants
from invobench.testing import compare

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckShape:
    case: Case
    layout: str = "contiguous"  # contiguous | channels_last | non_contiguous


CHECK_SHAPES: list[CheckShape] = [
    CheckShape(Case(B=2, C=8, H=9, W=7, K=3, G=2)),                          # odd H, W
    CheckShape(Case(B=1, C=6, H=11, W=10, K=5, G=3, stride=2)),              # stride 2, batch 1
    CheckShape(Case(B=2, C=8, H=12, W=9, K=3, G=4, dilation=2)),             # dilation 2
    CheckShape(Case(B=2, C=4, H=7, W=6, K=1, G=1)),                          # K = 1, G = 1
    CheckShape(Case(B=1, C=8, H=10, W=11, K=7, G=8)),                        # K = 7, G = C
    CheckShape(Case(B=2, C=8, H=9, W=8, K=3, G=2), "channels_last"),
    CheckShape(Case(B=2, C=8, H=8, W=9, K=5, G=4, stride=2), "non_contiguous"),
]

DEFAULT_DTYPES = ("float32", "bfloat16")


@dataclass
class CheckResult:
    variant: str
    dtype: str
    shape: str
    layout: str
    tensor: str           # out | grad_x | grad_kernel | grad_q ...
    max_abs: Optional[float]
    max_rel: Optional[float]
    allowed: Optional[float]
    ok: bool
    detail: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _layout(t: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    if layout == "non_contiguous":  # same values, W-major strides
        return t.transpose(2, 3).contiguous().transpose(2, 3)
    return t


def _run(fn: Callable, inputs: list[torch.Tensor], grad_out: Optional[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Forward, and backward when `grad_out` is given; returns the output and the inputs' grads."""
    leaves = [t.detach().requires_grad_(grad_out is not None) for t in inputs]
    out = fn(*leaves)
    if grad_out is None:
        return out.detach(), []
    out.backward(grad_out.to(out.dtype))
    return out.detach(), [leaf.grad for leaf in leaves]


def _family_problem(variant: Variant, case: Case, device: str):
    """(reference fn in float64, fn under test, low-precision baseline fn, inputs (float64), tensor names)."""
    gen = torch.Generator().manual_seed(1234)
    B, C, H, W, K, G, s, d = case.B, case.C, case.H, case.W, case.K, case.G, case.stride, case.dilation
    if variant.family == "involution":
        x = torch.randn(B, C, H, W, generator=gen, dtype=torch.float64)
        w = torch.randn(B, G, K * K, case.Ho, case.Wo, generator=gen, dtype=torch.float64) / K
        ref = lambda x, w: involution_reference(x, w, K, s, d)  # noqa: E731
        test = lambda x, w: involution(x, w, kernel_size=K, stride=s, dilation=d, variant=variant.name)  # noqa: E731
        return ref, test, ref, [x, w], ["out", "grad_x", "grad_kernel"]
    if variant.family == "conv":
        groups = {"dense": 1, "grouped": G, "depthwise": C}[variant.name]
        x = torch.randn(B, C, H, W, generator=gen, dtype=torch.float64)
        w = torch.randn(C, C // groups, K, K, generator=gen, dtype=torch.float64) / K
        p = padding_for(K, d)
        ref = lambda x, w: F.conv2d(x, w, None, s, p, d, groups)  # noqa: E731
        return ref, ref, ref, [x, w], ["out", "grad_x", "grad_weight"]
    if variant.family == "attention":
        q, k, v = (torch.randn(B, C, H, W, generator=gen, dtype=torch.float64) for _ in range(3))
        rpb = 0.1 * torch.randn(G, 2 * K - 1, 2 * K - 1, generator=gen, dtype=torch.float64)
        ref = lambda q, k, v, r: neighborhood_attention_unfold(q, k, v, G, K, s, d, r)  # noqa: E731
        impl = ATTENTION[variant.name]
        test = lambda q, k, v, r: impl(q, k, v, G, K, s, d, r)  # noqa: E731
        return ref, test, ref, [q, k, v, rpb], ["out", "grad_q", "grad_k", "grad_v", "grad_rpb"]
    raise ValueError(f"check has no reference for family {variant.family!r}")


def check_variant(variant: Variant, shape: CheckShape, dtype: str, device: str = "cpu") -> list[CheckResult]:
    case = shape.case.replace(dtype=dtype, device=device)
    label = shape.case.label().rsplit(" float32", 1)[0]
    reasons = variant.why_not(case)
    if reasons:
        return [CheckResult(variant.key, dtype, label, shape.layout, "-", None, None, None, True, "skipped: " + "; ".join(reasons))]
    backward_reasons = variant.why_not(case, backward=True)
    ref_fn, test_fn, base_fn, inputs64, names = _family_problem(variant, case, device)
    torch_dtype = case.torch_dtype
    out64 = ref_fn(*inputs64)
    grad_out64 = torch.randn(out64.shape, generator=torch.Generator().manual_seed(99), dtype=torch.float64)
    ref_out, ref_grads = _run(ref_fn, inputs64, grad_out64)
    cast = [_layout(t.to(device=device, dtype=torch_dtype), shape.layout) if t.dim() == 4 else t.to(device=device, dtype=torch_dtype)
            for t in inputs64]
    grad_out = None if backward_reasons else grad_out64.to(device)
    try:
        out, grads = _run(test_fn, cast, grad_out)
    except Exception as exc:  # a variant that raises on a valid input is a failure, reported with its message
        return [CheckResult(variant.key, dtype, label, shape.layout, "out", None, None, None, False,
                            f"{type(exc).__name__}: {exc}")]
    base_out, base_grads = (None, [None] * len(grads))
    if torch_dtype in (torch.bfloat16, torch.float16):
        base_out, base_grads = _run(base_fn, [t.to(torch_dtype) for t in inputs64], None if backward_reasons else grad_out64)
    results = []
    if backward_reasons:
        results.append(CheckResult(variant.key, dtype, label, shape.layout, "grads", None, None, None, True,
                                   "backward skipped: " + "; ".join(backward_reasons)))
    for name, actual, reference, baseline in zip(names, [out] + grads, [ref_out] + ref_grads, [base_out] + base_grads):
        cmp = compare(name, actual, reference, baseline)
        detail = "" if cmp.ok else cmp.describe()
        results.append(CheckResult(variant.key, dtype, label, shape.layout, name, cmp.max_abs, cmp.max_rel, cmp.allowed, cmp.ok, detail))
    return results


def run_check(
    variants: Optional[Iterable[str]] = None, dtypes: Iterable[str] = DEFAULT_DTYPES, device: str = "cpu",
    families: Iterable[str] = ("involution", "conv", "attention"), progress: Callable[[str], None] = lambda msg: None,
) -> list[CheckResult]:
    """Check every selected variant that is available here; unavailable ones are reported as skipped."""
    selected = [v for v in all_variants() if v.family in families and (variants is None or v.key in variants or v.name in variants)]
    results: list[CheckResult] = []
    for variant in selected:
        unavailable = variant.unavailable_reasons()
        if unavailable:
            results.append(CheckResult(variant.key, "-", "-", "-", "-", None, None, None, True, "unavailable: " + "; ".join(unavailable)))
            continue
        for dtype in dtypes:
            progress(f"{variant.key} {dtype}")
            for shape in CHECK_SHAPES:
                results += check_variant(variant, shape, dtype, device)
    return results
