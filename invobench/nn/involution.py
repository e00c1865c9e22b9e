"""The involution layer of the paper (spec §2): kernel generation + apply."""
from __future__ import annotations

import torch
from torch import nn

from invobench.ops.involution import get_variant, involution
from invobench.core import check_positive_int, padding_for


class Involution2d(nn.Module):
    """kernel = span(ReLU(BN(reduce(pool(x))))) viewed as (B, G, K², Ho, Wo); out = apply(x, kernel).

    Parameters: C·C/r + 2·C/r + (C/r)·G·K² + G·K²  (G = channels / group_channels).
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int = 7,
        stride: int = 1,
        group_channels: int = 16,
        reduction: int = 4,
        variant: str = "auto",
        dilation: int = 1,
    ):
        super().__init__()
        for name, value in (("channels", channels), ("kernel_size", kernel_size), ("stride", stride),
                            ("group_channels", group_channels), ("reduction", reduction), ("dilation", dilation)):
            check_positive_int(name, value)
        padding_for(kernel_size, dilation)
        if channels % group_channels:
            raise ValueError(
                f"channels={channels} is not divisible by group_channels={group_channels} "
                "(each group's kernel is shared by group_channels channels)"
            )
        if channels < reduction:
            raise ValueError(f"reduction={reduction} exceeds channels={channels}; need channels // reduction >= 1")
        if variant != "auto":
            get_variant(variant)  # an unknown name fails here, listing the known ones, not at the first forward
        self.channels, self.kernel_size, self.stride, self.dilation = channels, kernel_size, stride, dilation
        self.groups = channels // group_channels
        self.variant = variant
        reduced = channels // reduction
        # ceil_mode makes the pooled map exactly Ho×Wo = ⌈H/s⌉ for odd sizes too (same as floor for even ones).
        self.pool = nn.AvgPool2d(stride, stride, ceil_mode=True) if stride > 1 else nn.Identity()
        self.reduce = nn.Conv2d(channels, reduced, 1, bias=False)
        self.bn = nn.BatchNorm2d(reduced)
        self.relu = nn.ReLU(inplace=True)
        self.span = nn.Conv2d(reduced, self.groups * kernel_size * kernel_size, 1)

    def kernel(self, x: torch.Tensor) -> torch.Tensor:
        """The generated per-pixel kernel, (B, G, K², Ho, Wo)."""
        k = self.span(self.relu(self.bn(self.reduce(self.pool(x)))))
        B, _, Ho, Wo = k.shape
        return k.view(B, self.groups, self.kernel_size * self.kernel_size, Ho, Wo)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return involution(
            x, self.kernel(x), kernel_size=self.kernel_size, stride=self.stride, dilation=self.dilation, variant=self.variant
        )

    def extra_repr(self) -> str:
        return (f"{self.channels}, kernel_size={self.kernel_size}, stride={self.stride}, groups={self.groups}, "
                f"variant={self.variant!r}")
