"""The public involution apply (spec §1): `involution(x, kernel, kernel_size=..., variant="auto")`."""
from __future__ import annotations

import torch

from invobench.core import Case, check_involution_args
from invobench.ops.involution.reference import involution_reference
from invobench.ops.involution.variants import APPLY, get_variant

#: `variant="auto"` takes the first of these that can run the input, per device. On CPU the
#: Triton interpreter (TRITON_INTERPRET=1) is a test vehicle, never a default.
AUTO_ORDER = {"cuda": ["triton", "cuda", "eager"], "cpu": ["cpu", "eager"]}


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


def variant_for(x: torch.Tensor, variant: str) -> str:
    """Resolve `variant` ("auto" or a name) for an input, raising with the variant's reasons if it can't run."""
    dtype = str(x.dtype).removeprefix("torch.")
    case = Case(B=1, C=1, H=1, W=1, K=1, G=1, dtype=dtype, device=x.device.type)
    if variant == "auto":
        for name in AUTO_ORDER.get(x.device.type, ["eager"]):
            if not get_variant(name).why_not(case):
                return name
        return "eager"
    reasons = get_variant(variant).why_not(case)  # an unknown name raises with the known names
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
