"""Whole networks (spec §5): RedNet-26/38/50/101/152 and the torchvision-layout ResNets of the same depths.

`build_model(name, variant=...)` builds one by name; `variant` picks the involution implementation
of every involution layer of a RedNet. Importing this package registers the "model" family in
the registry (`model.resnet50`, `model.rednet50-eager`, ...; see `invobench.models.workloads`).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable, Optional

from invobench.models.rednet import rednet
from invobench.models.resnet import STAGE_DEPTHS, BottleneckNet, resnet


@dataclass(frozen=True)
class ModelSpec:
    name: str
    depth: int
    involution: bool  # a RedNet (involution layers, takes `variant`) or a ResNet
    builder: Callable[..., BottleneckNet]


MODELS: dict[str, ModelSpec] = {}
for _depth in STAGE_DEPTHS:
    MODELS[f"resnet{_depth}"] = ModelSpec(f"resnet{_depth}", _depth, False,
                                          lambda num_classes=1000, _d=_depth: resnet(_d, num_classes))
for _depth in STAGE_DEPTHS:
    MODELS[f"rednet{_depth}"] = ModelSpec(
        f"rednet{_depth}", _depth, True,
        lambda variant="auto", num_classes=1000, stem_kernel_size=3, _d=_depth: rednet(_d, variant, num_classes, stem_kernel_size),
    )


def model_names() -> list[str]:
    return list(MODELS)


def get_model_spec(name: str) -> ModelSpec:
    """The entry for `name`; ValueError listing the known names (and the closest) otherwise."""
    if name in MODELS:
        return MODELS[name]
    close = difflib.get_close_matches(str(name), MODELS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown model {name!r}.{hint} Known models: {', '.join(MODELS)}")


def involution_variant_reasons(variant: str) -> list[str]:
    """Why involution `variant` can't run at all on this machine ([] when it can; "auto" always can)."""
    if variant == "auto":
        return []
    from invobench.ops.involution import get_variant

    return get_variant(variant).unavailable_reasons()  # unknown names raise, listing the known ones


def split_variant_name(variant: str) -> tuple[str, Optional[str]]:
    """"rednet50-cuda-simple" -> ("rednet50", "cuda-simple"); "resnet50" -> ("resnet50", None): a model
    variant's network and the involution variant of its involution layers."""
    model_name, _, involution_variant = variant.partition("-")
    if model_name not in MODELS:
        raise ValueError(f"unknown model variant {variant!r}; known models: {', '.join(MODELS)}")
    return model_name, involution_variant or None


def build_model(name: str, variant: Optional[str] = None, num_classes: int = 1000,
                stem_kernel_size: int = 3) -> BottleneckNet:
    """Build model `name` (see MODELS) with random weights, in training mode, on the CPU in float32.

    `variant` (RedNets only; default "auto") names the involution implementation of every involution
    layer; a variant that can't run here raises ValueError with its reasons.
    """
    spec = get_model_spec(name)
    if not spec.involution:
        if variant not in (None, "auto"):
            raise ValueError(f"{name} has no involution layers; variant={variant!r} applies to RedNets only "
                             f"({', '.join(n for n, s in MODELS.items() if s.involution)})")
        if stem_kernel_size != 3:
            raise ValueError(f"{name} has a 7×7 conv stem; stem_kernel_size applies to RedNets only")
        return spec.builder(num_classes=num_classes)
    variant = variant or "auto"
    reasons = involution_variant_reasons(variant)
    if reasons:
        raise ValueError(f"cannot build {name} with involution variant {variant!r}: " + "; ".join(reasons))
    return spec.builder(variant=variant, num_classes=num_classes, stem_kernel_size=stem_kernel_size)


__all__ = ["MODELS", "ModelSpec", "build_model", "get_model_spec", "model_names", "rednet", "resnet",
           "split_variant_name"]
