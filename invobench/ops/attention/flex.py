"""Local self-attention core with PyTorch FlexAttention and a 2-D neighbourhood block mask (spec §4).

Same semantics as the unfold form. The block mask lets FlexAttention skip key blocks that
no query of a query block can see; `compiled=True` runs the fused kernel from
torch.compile (the eager path materialises the full L×H·W score matrix).
"""
from __future__ import annotations

import functools
from typing import Optional

import torch
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

from invobench.core.shapes import out_size, padding_for


def neighborhood_mask_mod(H: int, W: int, Wo: int, kernel_size: int, stride: int, dilation: int):
    radius = padding_for(kernel_size, dilation)

    def mask_mod(b, h, q_idx, kv_idx):
        dy = kv_idx // W - (q_idx // Wo) * stride
        dx = kv_idx % W - (q_idx % Wo) * stride
        inside = (dy.abs() <= radius) & (dx.abs() <= radius)
        return inside & (dy % dilation == 0) & (dx % dilation == 0)

    return mask_mod


@functools.lru_cache(maxsize=64)
def neighborhood_block_mask(H: int, W: int, kernel_size: int, stride: int, dilation: int, device: str):
    Ho, Wo = out_size(H, kernel_size, stride, dilation), out_size(W, kernel_size, stride, dilation)
    mask_mod = neighborhood_mask_mod(H, W, Wo, kernel_size, stride, dilation)
    return create_block_mask(mask_mod, None, None, Ho * Wo, H * W, device=device)


@functools.cache
def _compiled_flex():
    return torch.compile(flex_attention, dynamic=False)


def neighborhood_attention_flex(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, kernel_size: int,
    stride: int = 1, dilation: int = 1, rpb: Optional[torch.Tensor] = None, compiled: bool = False,
) -> torch.Tensor:
    B, C, H, W = q.shape
    dh = C // heads
    qs = q[:, :, ::stride, ::stride]
    Ho, Wo = qs.shape[-2:]

    def seq(t):  # (B, C, h', w') -> (B, heads, h'·w', dh)
        return t.reshape(B, heads, dh, -1).transpose(-1, -2)

    score_mod = None
    if rpb is not None:
        c = kernel_size - 1
        Wo_ = Wo

        def score_mod(score, b, h, q_idx, kv_idx):
            dy = (kv_idx // W - (q_idx // Wo_) * stride) // dilation
            dx = (kv_idx % W - (q_idx % Wo_) * stride) // dilation
            iy = (dy + c).clamp(0, 2 * c)
            ix = (dx + c).clamp(0, 2 * c)
            return score + rpb[h, iy, ix].to(score.dtype)

    block_mask = neighborhood_block_mask(H, W, kernel_size, stride, dilation, q.device.type)
    fn = _compiled_flex() if compiled else flex_attention
    out = fn(seq(qs).contiguous(), seq(k).contiguous(), seq(v).contiguous(), score_mod=score_mod, block_mask=block_mask)
    return out.transpose(-1, -2).reshape(B, C, Ho, Wo)
