"""Convolution baselines (spec §3): same channels in and out, same K and stride as the involution."""
from __future__ import annotations

from torch import nn

from invobench.core import check_positive_int, padding_for


class _ConvBaseline(nn.Conv2d):
    def __init__(self, channels: int, kernel_size: int, stride: int, groups: int, dilation: int = 1, bias: bool = False):
        for name, value in (("channels", channels), ("kernel_size", kernel_size), ("stride", stride),
                            ("groups", groups), ("dilation", dilation)):
            check_positive_int(name, value)
        if channels % groups:
            raise ValueError(f"channels={channels} is not divisible by groups={groups}")
        super().__init__(channels, channels, kernel_size, stride, padding_for(kernel_size, dilation),
                         dilation=dilation, groups=groups, bias=bias)


class DenseConv2d(_ConvBaseline):
    """C→C conv, K×K: MACs B·C²·K²·Ho·Wo, params C²·K² (+C with bias)."""

    def __init__(self, channels: int, kernel_size: int = 7, stride: int = 1, dilation: int = 1, bias: bool = False):
        super().__init__(channels, kernel_size, stride, 1, dilation, bias)


class GroupedConv2d(_ConvBaseline):
    """Dense conv split into channels/group_channels groups: MACs and params ÷ groups."""

    def __init__(self, channels: int, kernel_size: int = 7, stride: int = 1, group_channels: int = 16,
                 dilation: int = 1, bias: bool = False):
        check_positive_int("group_channels", group_channels)
        if channels % group_channels:
            raise ValueError(f"channels={channels} is not divisible by group_channels={group_channels}")
        super().__init__(channels, kernel_size, stride, channels // group_channels, dilation, bias)


class DepthwiseConv2d(_ConvBaseline):
    """groups = C: MACs B·C·K²·Ho·Wo, the involution apply's MACs with static weights (C·K² params)."""

    def __init__(self, channels: int, kernel_size: int = 7, stride: int = 1, dilation: int = 1, bias: bool = False):
        super().__init__(channels, kernel_size, stride, channels, dilation, bias)
