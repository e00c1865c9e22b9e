"""Local self-attention baselines (spec §4): unfold form and FlexAttention (eager and compiled)."""
from __future__ import annotations

from functools import partial
from typing import Callable, Optional

import torch

from invobench.ops.attention.flex import neighborhood_attention_flex
from invobench.ops.attention.unfold import neighborhood_attention_unfold
from invobench.registry import Case, Variant, Workload, get, register
from invobench.shapes import check_positive_int, padding_for

#: variant name -> callable(q, k, v, heads, kernel_size, stride, dilation, rpb)
ATTENTION: dict[str, Callable] = {
    "unfold": neighborhood_attention_unfold,
    "flex": partial(neighborhood_attention_flex, compiled=False),
    "flex-compile": partial(neighborhood_attention_flex, compiled=True),
}


def attention_case_reasons(case: Case) -> list[str]:
    reasons = []
    if case.K % 2 == 0:
        reasons.append(f"K={case.K} is even; the window is centred on each query, so K must be odd")
    if case.G < 1 or case.C % case.G:
        reasons.append(f"C={case.C} is not divisible by heads G={case.G}")
    return reasons


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
    spec = get(variant, "attention")
    dtype = str(q.dtype).removeprefix("torch.")
    reasons = spec.why_not(Case(B=1, C=heads, H=1, W=1, K=kernel_size, G=heads, dtype=dtype, device=q.device.type))
    if reasons:
        raise ValueError(f"attention variant {variant!r} cannot run this input: " + "; ".join(reasons))
    return ATTENTION[variant](q, k, v, heads, kernel_size, stride, dilation, rpb)


def _build(name: str):
    def build(case: Case, requires_grad: bool) -> Workload:
        gen = torch.Generator().manual_seed(0)
        if case.level == "layer":
            from invobench.nn import LocalSelfAttention2d

            module = LocalSelfAttention2d(case.C, case.G, case.K, case.stride, rpb=case.rpb, dilation=case.dilation,
                                          variant=name).to(case.device, case.torch_dtype)
            x = torch.randn(case.B, case.C, case.H, case.W, generator=gen).to(case.device, case.torch_dtype)
            return Workload(lambda: module(x.requires_grad_(requires_grad)), [x], module=module)
        q, k, v = (torch.randn(case.B, case.C, case.H, case.W, generator=gen).to(case.device, case.torch_dtype)
                   .requires_grad_(requires_grad) for _ in range(3))
        rpb = None
        if case.rpb:
            rpb = (0.1 * torch.randn(case.G, 2 * case.K - 1, 2 * case.K - 1, generator=gen)).to(case.device, case.torch_dtype)
            rpb.requires_grad_(requires_grad)
        fn = ATTENTION[name]
        inputs = [q, k, v] + ([rpb] if rpb is not None else [])
        return Workload(lambda: fn(q, k, v, case.G, case.K, case.stride, case.dilation, rpb), inputs)

    return build


register(Variant(
    "unfold", "attention", ("op", "layer"), ("cpu", "cuda"), ("float64", "float32", "bfloat16", "float16"), True,
    "unfold K×K windows of k and v, batched matmuls, masked softmax", _build("unfold"),
    case_reasons=attention_case_reasons,
))
def flex_backward_reasons(case: Case) -> list[str]:
    if case.device == "cpu":
        return ["FlexAttention has no CPU backward in torch 2.13 (NotImplementedError); run bwd on CUDA"]
    return []


register(Variant(
    "flex", "attention", ("op", "layer"), ("cpu", "cuda"), ("float64", "float32", "bfloat16", "float16"), True,
    "FlexAttention with a 2-D neighbourhood block mask, eager (materialises the score matrix)", _build("flex"),
    case_reasons=attention_case_reasons, backward_reasons=flex_backward_reasons,
))
register(Variant(
    "flex-compile", "attention", ("op", "layer"), ("cpu", "cuda"), ("float32", "bfloat16", "float16"), True,
    "FlexAttention with a 2-D neighbourhood block mask, torch.compile'd fused kernel", _build("flex-compile"),
    case_reasons=attention_case_reasons, backward_reasons=flex_backward_reasons,
))
