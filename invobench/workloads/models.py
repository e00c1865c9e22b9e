"""The "model" family: one variant per ResNet and per (RedNet, involution variant), and their workloads.

Keys: `model.resnet50`, `model.rednet50-eager`, `model.rednet50-unfold`, `model.rednet50-cpu`, ...
A RedNet variant carries its involution variant's devices, dtypes and requirements, and its
`why_not` folds in that variant's case limits for every involution layer shape the network
has at the case's image size (as "involution.<name> (layer C=.. H=..): reason").

Case fields used: B (batch), H and W (image size; 224 in the paper), dtype, device,
channels_last; level must be "model". C, K, G, stride, dilation, reduction and rpb are ignored
(the input is always a 3-channel image; the architecture fixes the rest).

`build(case, requires_grad=False)`: the model in eval mode, fn = one forward under no_grad,
inputs = [image]. `build(case, requires_grad=True)`: the model in training mode (BN uses batch
statistics), fn = one forward whose output's backward reaches every parameter (the leaves are
`module.parameters()`; inputs = [image], which needs no grad), and
train_step = zero_grad + forward + cross-entropy on fixed random labels + backward + SGD step
(lr 0.01, momentum 0.9).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from invobench.core import DTYPES, Case, Variant, Workload
from invobench.models import MODELS, build_model
from invobench.models.complexity import bottleneck_net_counts
from invobench.models.rednet import involution_layer_shapes
from invobench.models.resnet import STAGE_DEPTHS, TOTAL_STRIDE, image_size_reasons

ALL_DTYPES = tuple(DTYPES)
NUM_CLASSES = 1000


def _model_case_reasons(model_name: str):
    def reasons(case: Case) -> list[str]:
        return image_size_reasons(case.H, case.W, model_name)

    return reasons


def _folded_involution_reasons(model_name: str, depth: int, involution: Variant):
    """Image-size reasons plus the involution variant's case limits at each of the model's layer shapes."""

    def reasons(case: Case) -> list[str]:
        out = image_size_reasons(case.H, case.W, model_name)
        if out:
            return out
        shapes = involution_layer_shapes(depth, case.H, case.W)
        where_by_reason: dict[str, list[str]] = {}
        for shape in shapes:
            layer = Case(B=case.B, dtype=case.dtype, device=case.device, level="layer",
                         channels_last=case.channels_last, **shape)
            where = f"C={shape['C']} {shape['H']}x{shape['W']} K={shape['K']} G={shape['G']} s={shape['stride']}"
            for reason in involution.case_reasons(layer):
                where_by_reason.setdefault(reason, []).append(where)
        for reason, wheres in where_by_reason.items():
            scope = (f"all {len(shapes)} involution layer shapes" if len(wheres) == len(shapes)
                     else f"layers {'; '.join(wheres)}")
            out.append(f"involution.{involution.name} ({scope}): {reason}")
        return out

    return reasons


def _info(model_name: str, depth: int, involution_variant: str | None):
    def info(case: Case) -> dict:
        counts = bottleneck_net_counts(depth, involution_variant is not None, case.H, case.W, case.B)
        return {"model": model_name, "involution_variant": involution_variant, "params": counts.params,
                "macs_fwd": counts.macs, "image": f"{case.H}x{case.W}", "stage_depths": list(STAGE_DEPTHS[depth])}

    return info


def _final_map_size(H: int, W: int) -> tuple[int, int]:
    h, w = H, W
    for _ in range(5):  # the five stride-2 steps, each ⌈n/2⌉
        h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    return h, w


def build_model_workload(model_name: str, involution_variant: str | None, case: Case, requires_grad: bool) -> Workload:
    """Inference (requires_grad=False) or training (True) workload of a model for a case; see the module doc."""
    reasons = image_size_reasons(case.H, case.W, model_name)
    if reasons:
        raise ValueError(reasons[0])
    if requires_grad:
        h, w = _final_map_size(case.H, case.W)
        if case.B * h * w == 1:
            raise ValueError(
                f"training {model_name} at B=1, {case.H}x{case.W}: the last stage's map is 1x1, so BatchNorm has one "
                f"value per channel (torch refuses); use B >= 2 or H, W >= {2 * TOTAL_STRIDE}"
            )
    model = build_model(model_name, involution_variant, num_classes=NUM_CLASSES)
    model = model.to(device=case.device, dtype=case.torch_dtype)
    gen = torch.Generator().manual_seed(0)
    image = torch.randn(case.B, 3, case.H, case.W, generator=gen).to(device=case.device, dtype=case.torch_dtype)
    if case.channels_last:
        model = model.to(memory_format=torch.channels_last)
        image = image.contiguous(memory_format=torch.channels_last)
    if not requires_grad:
        model.eval()

        def infer() -> torch.Tensor:
            with torch.no_grad():
                return model(image)

        return Workload(infer, [image], module=model)

    model.train()
    labels = torch.randint(0, NUM_CLASSES, (case.B,), generator=gen).to(case.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(image), labels)
        loss.backward()
        optimizer.step()

    return Workload(lambda: model(image), [image], module=model, train_step=train_step)


def variants(involution_variants: Sequence[Variant]) -> list[Variant]:
    """Every model variant: each ResNet, and each RedNet with each of `involution_variants`."""
    out: list[Variant] = []
    for name, spec in MODELS.items():
        if not spec.involution:
            out.append(Variant(
                name=name, family="model", levels=("model",), devices=("cpu", "cuda"), dtypes=ALL_DTYPES,
                supports_backward=True,
                description=f"{name}: torchvision-layout bottleneck ResNet (3x3 convs), depths {STAGE_DEPTHS[spec.depth]}",
                build=lambda case, requires_grad, _n=name: build_model_workload(_n, None, case, requires_grad),
                case_reasons=_model_case_reasons(name),
                info=_info(name, spec.depth, None),
            ))
            continue
        for involution in involution_variants:
            out.append(Variant(
                name=f"{name}-{involution.name}", family="model", levels=("model",), devices=involution.devices,
                dtypes=involution.dtypes, supports_backward=involution.supports_backward,
                description=f"{name} with every involution layer on involution.{involution.name}",
                build=lambda case, requires_grad, _n=name, _v=involution.name: build_model_workload(_n, _v, case, requires_grad),
                requirements=lambda _v=involution: [f"involution.{_v.name}: {r}" for r in _v.requirements()],
                case_reasons=_folded_involution_reasons(name, spec.depth, involution),
                info=_info(name, spec.depth, involution.name),
            ))
    return out
