"""Stand-alone local self-attention layer (SASA, spec §4): 1×1 q/k/v projections + neighbourhood attention."""
from __future__ import annotations

import torch
from torch import nn

from invobench.core import check_positive_int, lookup, padding_for
from invobench.ops.attention import BY_NAME, neighborhood_attention


class LocalSelfAttention2d(nn.Module):
    """Params 3·C² (+ h·(2K−1)² with rpb). MACs/pixel: 3·C² at H·W (projections) + 2·C·K² at Ho·Wo."""

    def __init__(self, channels: int, heads: int = 8, kernel_size: int = 7, stride: int = 1, rpb: bool = False,
                 dilation: int = 1, variant: str = "unfold"):
        super().__init__()
        for name, value in (("channels", channels), ("heads", heads), ("kernel_size", kernel_size),
                            ("stride", stride), ("dilation", dilation)):
            check_positive_int(name, value)
        padding_for(kernel_size, dilation)
        if channels % heads:
            raise ValueError(f"channels={channels} is not divisible by heads={heads}")
        lookup(BY_NAME, variant, "attention variant")  # an unknown name fails here, not at the first forward
        self.heads, self.kernel_size, self.stride, self.dilation, self.variant = heads, kernel_size, stride, dilation, variant
        self.q = nn.Conv2d(channels, channels, 1, bias=False)
        self.k = nn.Conv2d(channels, channels, 1, bias=False)
        self.v = nn.Conv2d(channels, channels, 1, bias=False)
        self.rpb = nn.Parameter(torch.zeros(heads, 2 * kernel_size - 1, 2 * kernel_size - 1)) if rpb else None
        if self.rpb is not None:
            nn.init.trunc_normal_(self.rpb, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return neighborhood_attention(self.q(x), self.k(x), self.v(x), heads=self.heads, kernel_size=self.kernel_size,
                                      stride=self.stride, dilation=self.dilation, rpb=self.rpb, variant=self.variant)
