"""The paper's naive form: unfold x into (B, C·K², L) patches, multiply by the kernel, sum the taps.

It materialises K² copies of the input, which is why the runner's memory guard exists.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from invobench.core import padding_for
from invobench.ops.involution.variant import ALL_FLOAT, involution_variant


def involution_unfold(x: torch.Tensor, kernel: torch.Tensor, kernel_size: int, stride: int = 1, dilation: int = 1) -> torch.Tensor:
    B, C, H, W = x.shape
    G, KK, Ho, Wo = kernel.shape[1:]
    p = padding_for(kernel_size, dilation)
    patches = F.unfold(x, kernel_size, dilation=dilation, padding=p, stride=stride)
    patches = patches.view(B, G, C // G, KK, Ho, Wo)
    return (kernel.unsqueeze(2) * patches).sum(dim=3).view(B, C, Ho, Wo)


def involution_unfold_backward(
    grad_out: torch.Tensor, x: torch.Tensor, kernel: torch.Tensor, kernel_size: int, stride: int = 1, dilation: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """grad_w = Σ_c gout·unfold(x); grad_x = fold(w·gout) — the same K²-sized intermediates as the forward."""
    B, C, H, W = x.shape
    G, KK, Ho, Wo = kernel.shape[1:]
    p = padding_for(kernel_size, dilation)
    gg = grad_out.reshape(B, G, C // G, 1, Ho, Wo)
    patches = F.unfold(x, kernel_size, dilation=dilation, padding=p, stride=stride).view(B, G, C // G, KK, Ho, Wo)
    grad_w = (gg * patches).sum(dim=2)
    grad_patches = (kernel.unsqueeze(2) * gg).reshape(B, C * KK, Ho * Wo)
    grad_x = F.fold(grad_patches, (H, W), kernel_size, dilation=dilation, padding=p, stride=stride)
    return grad_x, grad_w


VARIANTS = (
    involution_variant(
        "unfold", involution_unfold, involution_unfold_backward, devices=("cpu", "cuda"), dtypes=ALL_FLOAT,
        description="the paper's naive form: unfold to (B, C·K², L), multiply, sum (K²× input memory)",
    ),
)
