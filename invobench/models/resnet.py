"""Bottleneck ResNets in torchvision's layout (ResNet v1.5), without torchvision (spec §5).

The network is built from a stem and a factory for the bottleneck's spatial layer (the 3×3
conv here, an involution in RedNet), so ResNet and RedNet share everything else: 1×1 reduce,
spatial layer with the block's stride, BN, ReLU, 1×1 expand (×4), BN, identity branch with a
1×1 conv + BN downsample where shape changes, ReLU after the sum; head = global average pool
and a 2048→1000 linear layer. ResNet-50 has torchvision's 25,557,032 parameters.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

EXPANSION = 4
#: stage widths (the bottleneck's middle channels) of the four stages
STAGE_WIDTHS = (64, 128, 256, 512)
#: first-block stride of each stage
STAGE_STRIDES = (1, 2, 2, 2)
#: total downsampling of the network: stem conv (2) × max-pool (2) × stages 2-4 (2·2·2)
TOTAL_STRIDE = 32
#: blocks per stage, by depth (shared by ResNet and RedNet)
STAGE_DEPTHS = {
    26: (1, 2, 4, 1),
    38: (2, 3, 5, 2),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}

#: (channels, stride) -> the bottleneck's spatial layer, without the BN/ReLU that follow it
SpatialLayerFactory = Callable[[int, int], nn.Module]


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3×3 conv, padding 1, no bias (a BN follows)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)


def conv3x3_spatial(channels: int, stride: int) -> nn.Module:
    """ResNet's bottleneck spatial layer: 3×3 conv with the block's stride."""
    return conv3x3(channels, channels, stride)


class Bottleneck(nn.Module):
    """out = ReLU(BN(conv1×1(ReLU(BN(spatial(ReLU(BN(conv1×1(x)))))))) + identity(x))."""

    def __init__(self, in_channels: int, width: int, stride: int, spatial: SpatialLayerFactory):
        super().__init__()
        out_channels = width * EXPANSION
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = spatial(width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


def resnet_stem() -> nn.Sequential:
    """torchvision's stem: 7×7 conv stride 2 (3→64), BN, ReLU, 3×3 max-pool stride 2."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
    )


class BottleneckNet(nn.Module):
    """stem → four stages of bottlenecks → global average pool → linear. Input (B, 3, H, W), H, W ≥ 32."""

    def __init__(self, name: str, stage_depths: Sequence[int], stem: nn.Module, spatial: SpatialLayerFactory,
                 num_classes: int = 1000):
        super().__init__()
        if len(stage_depths) != 4 or any(d < 1 for d in stage_depths):
            raise ValueError(f"stage_depths={tuple(stage_depths)} must be four positive block counts")
        self.name = name
        self.stage_depths = tuple(stage_depths)
        self.stem = stem
        in_channels = 64
        stages = []
        for width, stride, depth in zip(STAGE_WIDTHS, STAGE_STRIDES, stage_depths):
            blocks = [Bottleneck(in_channels, width, stride, spatial)]
            in_channels = width * EXPANSION
            blocks += [Bottleneck(in_channels, width, 1, spatial) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's initialisation with zero_init_residual, as the official RedNet and mmcls ResNet
        # configs use: each block starts as the identity. Without it an untrained RedNet in eval mode
        # overflows to inf/NaN (the apply multiplies x by a kernel made from x, block after block),
        # and inf/NaN arithmetic would distort the timings.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone and global pool, (B, 2048): what mmcls's get_flops counts (`extract_feat`)."""
        check_image(x, self.name)
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes)."""
        return self.fc(self.features(x))


def check_image(x: torch.Tensor, model_name: str = "model") -> None:
    """Raise ValueError unless x is a (B, 3, H, W) batch with H, W ≥ TOTAL_STRIDE."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{model_name} expects a torch.Tensor image batch, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{model_name} expects images of shape (B, 3, H, W); got {tuple(x.shape)}")
    reasons = image_size_reasons(int(x.shape[2]), int(x.shape[3]), model_name)
    if reasons:
        raise ValueError(reasons[0])


def image_size_reasons(H: int, W: int, model_name: str = "model") -> list[str]:
    """Why an H×W image is too small for the network's strides (empty when it is not)."""
    if min(H, W) < TOTAL_STRIDE:
        return [
            f"image size H={H}, W={W} is too small for {model_name}: it downsamples by {TOTAL_STRIDE} "
            f"(stem conv 2 × max-pool 2 × stages 2-4 2·2·2), so H and W must be >= {TOTAL_STRIDE} "
            f"(the paper uses 224)"
        ]
    return []


def resnet(depth: int, num_classes: int = 1000) -> BottleneckNet:
    """The torchvision-layout ResNet of a depth in STAGE_DEPTHS."""
    if depth not in STAGE_DEPTHS:
        raise ValueError(f"depth={depth} has no stage layout; valid depths: {', '.join(map(str, STAGE_DEPTHS))}")
    return BottleneckNet(f"resnet{depth}", STAGE_DEPTHS[depth], resnet_stem(), conv3x3_spatial, num_classes)
