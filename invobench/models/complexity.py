"""Model-level counts: the spec's analytic parameters and MACs, the published figures, and the
counting convention the published RedNet/ResNet "FLOPs" were made with.

Conventions (all per image unless a batch is given):
- MACs (spec, fvcore): convolutions + linear + involution apply, multiply-accumulates; BN,
  ReLU, pooling, additions and biases not counted. FLOPs = 2·MACs (FlopCounterMode).
- "paper FLOPs": what mmcls's `tools/get_flops.py` prints (mmcv's `get_model_complexity_info`
  on `extract_feat`, i.e. backbone + global pool, no classifier head), which is what the RedNet
  README and mmcls's ResNet table report. mmcv's module hooks count conv MACs plus one op per
  output element for a conv bias, 2 ops per element for an affine BN, one per ReLU output
  element and one per pooling input element. The involution apply is not an mmcv module; the
  RedNet figures include it as C·K²·Ho·Wo MACs per layer (see docs/models.md for the evidence).
  `paper_flops` measures this convention with forward hooks.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn

from invobench.models.rednet import BLOCK_KERNEL_SIZE, GROUP_CHANNELS, REDUCTION
from invobench.models.resnet import EXPANSION, STAGE_DEPTHS, STAGE_STRIDES, STAGE_WIDTHS

#: 224×224, the size every published figure is quoted at
PUBLISHED_IMAGE_SIZE = 224


@dataclass(frozen=True)
class Published:
    """Figures as printed by their source: params in millions, GFLOPs in G (MACs, 1e9)."""

    params_m: Optional[float]
    params_exact: Optional[int]
    paper_gflops: Optional[float]  # mmcv convention (see module docstring), 2 decimals
    fvcore_gmacs: Optional[float]  # spec/fvcore convention (torchvision's `_ops`), 3 decimals
    source: str


REDNET_SOURCE = "d-li14/involution README, ImageNet table (Params(M), FLOPs(G)); the CVPR 2021 paper gives them to 1 decimal"
PUBLISHED: dict[str, Published] = {
    "rednet26": Published(9.23, None, 1.73, None, REDNET_SOURCE),
    "rednet38": Published(12.39, None, 2.22, None, REDNET_SOURCE),
    "rednet50": Published(15.54, None, 2.71, None, REDNET_SOURCE),
    "rednet101": Published(25.65, None, 4.74, None, REDNET_SOURCE),
    "rednet152": Published(33.99, None, 6.79, None, REDNET_SOURCE),
    "resnet50": Published(25.56, 25_557_032, 4.12, 4.089,
                          "torchvision ResNet50_Weights meta (num_params, _ops); mmcls ResNet table (4.12 G)"),
    "resnet101": Published(44.55, 44_549_160, 7.85, 7.801,
                           "torchvision ResNet101_Weights meta (num_params, _ops); mmcls ResNet table (7.85 G)"),
    "resnet152": Published(60.19, 60_192_808, 11.58, 11.514,
                           "torchvision ResNet152_Weights meta (num_params, _ops); mmcls ResNet table (11.58 G)"),
}
#: ResNet-26/38 are not in torchvision or mmcls; the paper only gives them as percentages, so none is listed.


# ---- analytic counts (spec §5) ---------------------------------------------------------------

def conv_out(n: int, kernel_size: int, stride: int, padding: int) -> int:
    """⌊(n + 2p − k)/s⌋ + 1."""
    return (n + 2 * padding - kernel_size) // stride + 1


@dataclass(frozen=True)
class ModelCounts:
    params: int
    macs: int  # forward, spec convention, for the given batch
    first_conv_macs: int  # the stem conv: its backward needs no grad_input (the image is not a leaf)
    paper_ops: int  # the published convention (mmcv rules on backbone + pool, plus the apply), for the batch
    activations: LayerTally  # per-image activation sizes (elements), for memory estimates

    @property
    def macs_bwd(self) -> int:
        """Backward MACs: grad_input + grad_weight of every layer (2·fwd), less the stem conv's grad_input."""
        return 2 * self.macs - self.first_conv_macs


class LayerTally:
    """Running sums while walking the network's layers: both op conventions, and activation sizes (per image)."""

    def __init__(self) -> None:
        self.params = self.macs = self.paper = 0
        self.saved = 0  # elements of the outputs a training forward keeps for backward (conv, BN, pool, apply, add)
        self.largest = 0  # elements of the largest single activation
        self.inv_x = self.inv_o = self.inv_u = 0  # largest involution input, output and unfolded patches
        self.largest_weight = 0  # elements of the largest conv weight (oneDNN may keep a reordered copy)

    def _out(self, elements: int) -> None:
        self.saved += elements
        self.largest = max(self.largest, elements)

    def conv(self, cin: int, cout: int, k: int, pixels: int, bias: bool = False) -> None:
        self.params += cin * cout * k * k + (cout if bias else 0)
        self.largest_weight = max(self.largest_weight, cin * cout * k * k)
        self.macs += cin * cout * k * k * pixels
        self.paper += cin * cout * k * k * pixels + (cout * pixels if bias else 0)
        self._out(cout * pixels)

    def bn(self, c: int, pixels: int) -> None:
        self.params += 2 * c
        self.paper += 2 * c * pixels
        self._out(c * pixels)

    def relu(self, c: int, pixels: int) -> None:  # in place: no new activation
        self.paper += c * pixels

    def pool(self, c: int, input_pixels: int, output_pixels: int, indices: bool = False) -> None:
        self.paper += c * input_pixels
        self._out(c * output_pixels * (3 if indices else 1))  # max-pool keeps int64 indices (2 floats each)

    def add(self, c: int, pixels: int) -> None:
        self._out(c * pixels)

    def involution(self, C: int, K: int, input_pixels: int, pixels: int, stride: int) -> None:
        """Spec §2's layer: [avg-pool], reduce, BN, ReLU, span (with bias), apply."""
        Cr, G = C // REDUCTION, C // GROUP_CHANNELS
        if stride > 1:
            self.pool(C, input_pixels, pixels)
        self.conv(C, Cr, 1, pixels)
        self.bn(Cr, pixels)
        self.relu(Cr, pixels)
        self.conv(Cr, G * K * K, 1, pixels, bias=True)
        self.macs += C * K * K * pixels
        self.paper += C * K * K * pixels
        self._out(C * pixels)
        self.inv_x, self.inv_o = max(self.inv_x, C * input_pixels), max(self.inv_o, C * pixels)
        self.inv_u = max(self.inv_u, C * K * K * pixels)


def bottleneck_net_counts(depth: int, involution: bool, H: int = PUBLISHED_IMAGE_SIZE, W: Optional[int] = None,
                          B: int = 1, num_classes: int = 1000, stem_kernel_size: int = 3) -> ModelCounts:
    """Parameters and forward counts of ResNet-`depth` (involution=False) or RedNet-`depth` at B×3×H×W.

    MACs: every conv Cin·Cout·k²·Ho·Wo, every involution layer reduce + span + apply at its output
    resolution (spec §2), the classifier 2048·num_classes. paper_ops: the same convs plus their bias
    adds, 2·numel per BN, numel per ReLU output and per pooling input, and the apply, over the
    backbone and global pool only (see the module docstring).
    """
    W = H if W is None else W
    if depth not in STAGE_DEPTHS:
        raise ValueError(f"depth={depth} has no stage layout; valid depths: {', '.join(map(str, STAGE_DEPTHS))}")
    t = LayerTally()
    if involution:
        h, w = conv_out(H, 3, 2, 1), conv_out(W, 3, 2, 1)
        p = h * w
        t.conv(3, 32, 3, p), t.bn(32, p), t.relu(32, p)
        first = 3 * 32 * 9 * p
        t.involution(32, stem_kernel_size, p, p, 1), t.bn(32, p), t.relu(32, p)
        t.conv(32, 64, 3, p), t.bn(64, p), t.relu(64, p)
    else:
        h, w = conv_out(H, 7, 2, 3), conv_out(W, 7, 2, 3)
        p = h * w
        t.conv(3, 64, 7, p), t.bn(64, p), t.relu(64, p)
        first = 3 * 64 * 49 * p
    t.pool(64, h * w, conv_out(h, 3, 2, 1) * conv_out(w, 3, 2, 1), indices=True)
    h, w = conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1)  # max-pool
    cin = 64
    for width, stride, blocks in zip(STAGE_WIDTHS, STAGE_STRIDES, STAGE_DEPTHS[depth]):
        cout = width * EXPANSION
        for b in range(blocks):
            s = stride if b == 0 else 1
            ho, wo = conv_out(h, 3, s, 1), conv_out(w, 3, s, 1)
            p_in, p = h * w, ho * wo
            t.conv(cin, width, 1, p_in), t.bn(width, p_in), t.relu(width, p_in)
            if involution:
                t.involution(width, BLOCK_KERNEL_SIZE, p_in, p, s)
            else:
                t.conv(width, width, 3, p)
            t.bn(width, p), t.relu(width, p)
            t.conv(width, cout, 1, p), t.bn(cout, p)
            if b == 0 and (s != 1 or cin != cout):
                t.conv(cin, cout, 1, p), t.bn(cout, p)
            t.add(cout, p), t.relu(cout, p)
            cin, h, w = cout, ho, wo
    t.pool(cin, h * w, 1)  # global average pool
    t.params += cin * num_classes + num_classes
    t.macs += cin * num_classes
    return ModelCounts(params=t.params, macs=B * t.macs, first_conv_macs=B * first, paper_ops=B * t.paper, activations=t)


# ---- the published convention, measured ---------------------------------------------------

def _conv_ops(m: nn.Conv2d, inputs, output) -> int:
    per_position = int(np.prod(m.kernel_size)) * m.in_channels * (m.out_channels // m.groups)
    positions = output.shape[0] * int(np.prod(output.shape[2:]))
    return per_position * positions + (m.out_channels * positions if m.bias is not None else 0)


_MMCV_RULES = {
    nn.Conv2d: _conv_ops,
    nn.ReLU: lambda m, i, o: o.numel(),
    nn.MaxPool2d: lambda m, i, o: i[0].numel(),
    nn.AvgPool2d: lambda m, i, o: i[0].numel(),
    nn.AdaptiveAvgPool2d: lambda m, i, o: i[0].numel(),
    nn.BatchNorm2d: lambda m, i, o: i[0].numel() * (2 if m.affine else 1),
    nn.Linear: lambda m, i, o: i[0].numel() * o.shape[-1],
}


@dataclass(frozen=True)
class ShapeCounts:
    """Counts of one 1×3×H×W forward, measured."""

    flop_counter_flops: int  # FlopCounterMode over the whole model (2·MACs: convs, linear, involution apply)
    paper_flops: int  # mmcv's rules over `features` (backbone + global pool) + the involution apply


def measure_shape_counts(model: nn.Module, H: int = PUBLISHED_IMAGE_SIZE, W: Optional[int] = None,
                         fake: bool = True) -> ShapeCounts:
    """FlopCounterMode and the published ("paper") convention from one forward of `model` on a 1×3×H×W image.

    `fake` runs on FakeTensors (shapes only: no arithmetic, seconds for any size); otherwise on zeros.

    The paper convention is mmcv's module hooks (see the module docstring) on everything but the
    classifier, plus C·K²·Ho·Wo MACs for each involution layer's apply (mmcv sees no module for it).
    """
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode

    from invobench.nn import Involution2d

    W = H if W is None else W
    rules = dict(_MMCV_RULES)
    rules[Involution2d] = lambda m, i, o: o.shape[0] * o.shape[1] * int(np.prod(o.shape[2:])) * m.kernel_size ** 2
    total = [0]

    def hook(m, inputs, output):
        if type(m) is not nn.Linear:  # the classifier head is outside mmcls's `extract_feat`
            total[0] += int(rules[type(m)](m, inputs, output))

    handles = [m.register_forward_hook(hook) for m in model.modules() if type(m) in rules]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad(), (FakeTensorMode(allow_non_fake_inputs=True) if fake else contextlib.nullcontext()) as mode:
            image = mode.from_tensor(torch.empty(1, 3, H, W)) if fake else torch.zeros(1, 3, H, W)
            with FlopCounterMode(display=False) as counter:
                model(image)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return ShapeCounts(flop_counter_flops=int(counter.get_total_flops()), paper_flops=total[0])


def paper_flops(model: nn.Module, H: int = PUBLISHED_IMAGE_SIZE, W: Optional[int] = None) -> int:
    """Ops of one H×W image under the convention of the published tables (see `measure_shape_counts`)."""
    return measure_shape_counts(model, H, W).paper_flops


# ---- the published-vs-measured table ------------------------------------------------------------

#: tolerances of the comparison with the published figures (justified in docs/models.md)
PARAMS_TOLERANCE_M = 0.01  # one unit in the last printed digit: 0.005 M rounding + the stem difference below
PAPER_GFLOPS_ROUNDING = 0.005  # printed to 0.01 G
FVCORE_REL_TOLERANCE = 0.03  # fvcore omits BN/ReLU/pooling and the stem difference (1.6-2.6 % here), counts the head (+0.08 %)


def stem_kernel_difference(H: int = PUBLISHED_IMAGE_SIZE, W: Optional[int] = None) -> tuple[int, int]:
    """(params, paper-convention ops) a 7×7 stem involution adds over the spec's 3×3 one at H×W.

    Span conv 8 → 2·K² (weights and bias) and the apply 32·K² per pixel, at the stem's H/2 × W/2.
    """
    W = H if W is None else W
    pixels = conv_out(H, 3, 2, 1) * conv_out(W, 3, 2, 1)
    G, Cr, C = 2, 8, 32
    dk = 49 - 9
    params = Cr * G * dk + G * dk
    ops = pixels * (Cr * G * dk + G * dk + C * dk)  # span MACs + span bias adds (mmcv) + apply MACs
    return params, ops
