"""Local self-attention baselines (spec §4): unfold form and FlexAttention (eager and compiled)."""
from __future__ import annotations

from functools import partial
from typing import Callable, Optional

import torch

from invobench.core import Case, Variant, check_positive_int, lookup, padding_for
from invobench.ops.attention.flex import neighborhood_attention_flex
from invobench.ops.attention.unfold import neighborhood_attention_unfold

ALL_FLOAT = ("float64", "float32", "bfloat16", "float16")


def attention_case_reasons(case: Case) -> list[str]:
    reasons = []
    if case.K % 2 == 0:
        reasons.append(f"K={case.K} is even; the window is centred on each query, so K must be odd")
    if case.G < 1 or case.C % case.G:
        reasons.append(f"C={case.C} is not divisible by heads G={case.G}")
    return reasons


def flex_backward_reasons(case: Case) -> list[str]:
    if case.device == "cpu":
        return ["FlexAttention has no CPU backward in torch 2.13 (NotImplementedError); run bwd on CUDA"]
    return []


#: each variant's `op` is callable(q, k, v, heads, kernel_size, stride, dilation, rpb)
VARIANTS: tuple[Variant, ...] = (
    Variant("unfold", "attention", ("op", "layer"), ("cpu", "cuda"), ALL_FLOAT, True,
            "unfold K×K windows of k and v, batched matmuls, masked softmax",
            case_reasons=attention_case_reasons, op=neighborhood_attention_unfold),
    Variant("flex", "attention", ("op", "layer"), ("cpu", "cuda"), ALL_FLOAT, True,
            "FlexAttention with a 2-D neighbourhood block mask, eager (materialises the score matrix)",
            case_reasons=attention_case_reasons, backward_reasons=flex_backward_reasons,
            op=partial(neighborhood_attention_flex, compiled=False)),
    Variant("flex-compile", "attention", ("op", "layer"), ("cpu", "cuda"), ("float32", "bfloat16", "float16"), True,
            "FlexAttention with a 2-D neighbourhood block mask, torch.compile'd fused kernel",
            case_reasons=attention_case_reasons, backward_reasons=flex_backward_reasons,
            op=partial(neighborhood_attention_flex, compiled=True)),
)
BY_NAME: dict[str, Variant] = {v.name: v for v in VARIANTS}
#: variant name -> callable(q, k, v, heads, kernel_size, stride, dilation, rpb)
ATTENTION: dict[str, Callable] = {v.name: v.op for v in VARIANTS}


def neighborhood_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, heads: int, kernel_size: int, stride: int = 1,
    dilation: int = 1, rpb: Optional[torch.Tensor] = None, variant: str = "unfold",
) -> torch.Tensor:
    """out[pix] = Σ_n softmax_n(q[pix]·k[n]/√(C/h) + rpb[Δ]) · v[n], n over the in-image K×K window of pix."""
    for name, value in (("heads", heads), ("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
        check_positive_int(name, value)
    padding_for(kernel_size, dilation)
    if q.dim() != 4 or q.shape != k.shape or q.shape != v.shape:
        raise ValueError(f"q, k, v must be 4-D (B, C, H, W) of one shape; got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if q.shape[1] % heads:
        raise ValueError(f"channels C={q.shape[1]} is not divisible by heads={heads}")
    if rpb is not None and tuple(rpb.shape) != (heads, 2 * kernel_size - 1, 2 * kernel_size - 1):
        raise ValueError(f"rpb has shape {tuple(rpb.shape)}; expected (heads, 2K-1, 2K-1) = "
                         f"{(heads, 2 * kernel_size - 1, 2 * kernel_size - 1)}")
    spec = lookup(BY_NAME, variant, "attention variant")
    dtype = str(q.dtype).removeprefix("torch.")
    reasons = spec.why_not(Case(B=1, C=heads, H=1, W=1, K=kernel_size, G=heads, dtype=dtype, device=q.device.type))
    if reasons:
        raise ValueError(f"attention variant {variant!r} cannot run this input: " + "; ".join(reasons))
    return ATTENTION[variant](q, k, v, heads, kernel_size, stride, dilation, rpb)
