"""RedNet (spec §5): the bottleneck ResNet with every 3×3 conv replaced by an involution layer.

Follows the official classification code (d-li14/involution, cls/mmcls/models/backbones/rednet.py):
each bottleneck's spatial layer is `Involution2d(width, K=7, stride)` (r = 4, 16 channels per
group), followed as before by BN and ReLU; the stem is 3×3 conv s2 3→32, BN, ReLU,
involution(32, K=3, s=1), BN, ReLU, 3×3 conv 32→64, BN, ReLU, then 3×3 max-pool s2.
`variant` picks the involution implementation of every involution layer in the network.
"""
from __future__ import annotations

from torch import nn

from invobench.models.resnet import STAGE_DEPTHS, STAGE_STRIDES, STAGE_WIDTHS, BottleneckNet, conv3x3
from invobench.nn import Involution2d

#: the bottleneck's involution kernel size and the stem's
BLOCK_KERNEL_SIZE = 7
STEM_KERNEL_SIZE = 3
STEM_CHANNELS = 32
GROUP_CHANNELS = 16
REDUCTION = 4


def involution_spatial(variant: str):
    """The bottleneck spatial-layer factory: (channels, stride) -> Involution2d(channels, K=7, stride)."""

    def make(channels: int, stride: int) -> nn.Module:
        return Involution2d(channels, BLOCK_KERNEL_SIZE, stride, group_channels=GROUP_CHANNELS,
                            reduction=REDUCTION, variant=variant)

    return make


def rednet_stem(variant: str, kernel_size: int = STEM_KERNEL_SIZE) -> nn.Sequential:
    """conv3×3 s2 (3→32), BN, ReLU, involution(32, K=3), BN, ReLU, conv3×3 (32→64), BN, ReLU, max-pool 3×3 s2."""
    c = STEM_CHANNELS
    return nn.Sequential(
        conv3x3(3, c, 2), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
        Involution2d(c, kernel_size, 1, group_channels=GROUP_CHANNELS, reduction=REDUCTION, variant=variant),
        nn.BatchNorm2d(c), nn.ReLU(inplace=True),
        conv3x3(c, 2 * c), nn.BatchNorm2d(2 * c), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    )


def rednet(depth: int, variant: str = "auto", num_classes: int = 1000,
           stem_kernel_size: int = STEM_KERNEL_SIZE) -> BottleneckNet:
    """RedNet of a depth in STAGE_DEPTHS with every involution layer running `variant`.

    `stem_kernel_size` is 3 as in the spec and the released code; 7 reproduces every published
    parameter and FLOP figure to its last printed digit (docs/models.md), so it is kept as an option.
    """
    if depth not in STAGE_DEPTHS:
        raise ValueError(f"depth={depth} has no stage layout; valid depths: {', '.join(map(str, STAGE_DEPTHS))}")
    return BottleneckNet(f"rednet{depth}", STAGE_DEPTHS[depth], rednet_stem(variant, stem_kernel_size),
                         involution_spatial(variant), num_classes)


def involution_layer_shapes(depth: int, H: int, W: int, stem_kernel_size: int = STEM_KERNEL_SIZE) -> list[dict]:
    """The distinct (C, H, W, K, G, stride) of RedNet-`depth`'s involution layers for an H×W image (input side)."""
    h, w = (H - 1) // 2 + 1, (W - 1) // 2 + 1  # stem conv, stride 2
    shapes = [dict(C=STEM_CHANNELS, H=h, W=w, K=stem_kernel_size, G=STEM_CHANNELS // GROUP_CHANNELS, stride=1)]
    h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1  # max-pool
    for width, stride, blocks in zip(STAGE_WIDTHS, STAGE_STRIDES, STAGE_DEPTHS[depth]):
        for b in range(blocks):
            s = stride if b == 0 else 1
            shape = dict(C=width, H=h, W=w, K=BLOCK_KERNEL_SIZE, G=width // GROUP_CHANNELS, stride=s)
            if shape not in shapes:
                shapes.append(shape)
            h, w = (h - 1) // s + 1, (w - 1) // s + 1
    return shapes
