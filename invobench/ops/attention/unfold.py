"""Local (neighbourhood) self-attention core, unfold form (spec §4).

Queries at (ho·s, wo·s); each attends to the K×K window centred on it (dilation d); window
positions outside the image are excluded from the softmax, not zero-padded. q·k and
weights·v are batched matmuls, so FlopCounterMode and fvcore count them as
2·B·C·K²·Ho·Wo MACs (every window counted as full K², border taps included: they are
computed, then masked).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from invobench.core.shapes import padding_for


def rpb_taps(rpb: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """The (h, K²) slice of a (h, 2K−1, 2K−1) relative-position table used by a centred window."""
    c = (kernel_size - 1) // 2
    return rpb[:, c : c + kernel_size, c : c + kernel_size].reshape(rpb.shape[0], kernel_size * kernel_size)


def window_valid(H: int, W: int, kernel_size: int, stride: int, dilation: int, device) -> torch.Tensor:
    """(K², L) bool: which window taps of each query fall inside the image."""
    ones = torch.ones(1, 1, H, W, device=device)
    p = padding_for(kernel_size, dilation)
    return F.unfold(ones, kernel_size, dilation=dilation, padding=p, stride=stride)[0] > 0.5


def neighborhood_attention_unfold(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, kernel_size: int,
    stride: int = 1, dilation: int = 1, rpb: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """q, k, v (B, C, H, W) → out (B, C, Ho, Wo); softmax over each query's in-image K×K neighbours."""
    B, C, H, W = q.shape
    dh, KK = C // heads, kernel_size * kernel_size
    p = padding_for(kernel_size, dilation)
    qs = q[:, :, ::stride, ::stride]
    Ho, Wo = qs.shape[-2:]
    L = Ho * Wo

    def windows(t):  # (B, C, H, W) -> (B, h, L, K², dh)
        u = F.unfold(t, kernel_size, dilation=dilation, padding=p, stride=stride)
        return u.view(B, heads, dh, KK, L).permute(0, 1, 4, 3, 2)

    qv = qs.reshape(B, heads, dh, L).permute(0, 1, 3, 2).unsqueeze(-2)  # (B, h, L, 1, dh)
    logits = (qv @ windows(k).transpose(-1, -2)).squeeze(-2) * (1.0 / math.sqrt(dh))  # (B, h, L, K²)
    if rpb is not None:
        logits = logits + rpb_taps(rpb, kernel_size).to(logits.dtype)[None, :, None, :]
    valid = window_valid(H, W, kernel_size, stride, dilation, q.device).t()  # (L, K²)
    logits = logits.masked_fill(~valid, float("-inf"))
    # softmax in at least float32 (never downcast a float64 input)
    attn = torch.softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1).to(q.dtype)
    out = (attn.unsqueeze(-2) @ windows(v)).squeeze(-2)  # (B, h, L, dh)
    return out.permute(0, 1, 3, 2).reshape(B, C, Ho, Wo)
