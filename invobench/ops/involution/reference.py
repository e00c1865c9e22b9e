"""Float64-capable reference of the involution apply (spec §1): a loop over the K² taps.

This is the ground truth of every test. The forward is made of plain torch ops, so
autograd through `involution_reference` gives reference gradients; the explicit
`involution_reference_backward` (spec §1 backward) is what the `eager` variant runs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from invobench.core.shapes import padding_for


def _tap_slices(i: int, j: int, Ho: int, Wo: int, stride: int, dilation: int) -> tuple[slice, slice]:
    """Rows/cols of the zero-padded input read by tap (i, j) for every output pixel."""
    r0, c0 = i * dilation, j * dilation
    return slice(r0, r0 + stride * (Ho - 1) + 1, stride), slice(c0, c0 + stride * (Wo - 1) + 1, stride)


def involution_reference(x: torch.Tensor, kernel: torch.Tensor, kernel_size: int, stride: int = 1, dilation: int = 1) -> torch.Tensor:
    """out[b, g·Cg+c, ho, wo] = Σ_{i,j} w[b, g, iK+j, ho, wo] · x_pad[b, g·Cg+c, ho·s + i·d, wo·s + j·d]."""
    B, C, H, W = x.shape
    G, Ho, Wo = kernel.shape[1], kernel.shape[3], kernel.shape[4]
    K, p = kernel_size, padding_for(kernel_size, dilation)
    xg = F.pad(x, (p, p, p, p)).reshape(B, G, C // G, H + 2 * p, W + 2 * p)
    out = x.new_zeros(B, G, C // G, Ho, Wo)
    for i in range(K):
        for j in range(K):
            rows, cols = _tap_slices(i, j, Ho, Wo, stride, dilation)
            out = out + kernel[:, :, i * K + j].unsqueeze(2) * xg[..., rows, cols]
    return out.reshape(B, C, Ho, Wo)


def involution_reference_backward(
    grad_out: torch.Tensor, x: torch.Tensor, kernel: torch.Tensor, kernel_size: int, stride: int = 1, dilation: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """(grad_x, grad_kernel) of spec §1: grad_x scatters w·gout back over the taps; grad_w sums gout·x over Cg."""
    B, C, H, W = x.shape
    G, Ho, Wo = kernel.shape[1], kernel.shape[3], kernel.shape[4]
    K, p = kernel_size, padding_for(kernel_size, dilation)
    xg = F.pad(x, (p, p, p, p)).reshape(B, G, C // G, H + 2 * p, W + 2 * p)
    gg = grad_out.reshape(B, G, C // G, Ho, Wo)
    grad_xp = x.new_zeros(B, G, C // G, H + 2 * p, W + 2 * p)
    grad_w = torch.empty_like(kernel, memory_format=torch.contiguous_format)
    for i in range(K):
        for j in range(K):
            rows, cols = _tap_slices(i, j, Ho, Wo, stride, dilation)
            tap = i * K + j
            grad_w[:, :, tap] = (gg * xg[..., rows, cols]).sum(2)
            grad_xp[..., rows, cols] += kernel[:, :, tap].unsqueeze(2) * gg
    grad_x = grad_xp[..., p : p + H, p : p + W].reshape(B, C, H, W)
    return grad_x.contiguous(), grad_w
