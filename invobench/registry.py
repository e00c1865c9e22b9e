"""The registry of variants: every implementation of every operator family, and why it can't run.

A variant is registered once with its name, family, levels and capabilities. Its
`why_not(case)` answers with the reasons it cannot run that case on this machine; the same
reasons feed dispatch (`variant="auto"`), `invobench list`, skipped records and errors.
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

FAMILIES = ("involution", "conv", "attention", "model")
LEVELS = ("op", "layer", "model")
#: fwd: forward only (inference for models); bwd: backward over a retained graph with a fixed grad_out;
#: fwd+bwd: both; train: forward + backward + optimizer update (workloads with a `train_step`)
PASSES = ("fwd", "bwd", "fwd+bwd", "train")
DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Case:
    """One input configuration, family-agnostic.

    G is the group count: involution groups, conv groups of the `grouped` baseline, attention heads.
    `reduction` applies to the involution layer (spec §2); `rpb` to attention (spec §4).
    """

    B: int
    C: int
    H: int
    W: int
    K: int = 7
    G: int = 1
    stride: int = 1
    dilation: int = 1
    dtype: str = "float32"
    device: str = "cpu"
    level: str = "op"
    channels_last: bool = False
    reduction: int = 4
    rpb: bool = False

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    @property
    def Ho(self) -> int:
        from invobench.shapes import out_size

        return out_size(self.H, self.K, self.stride, self.dilation)

    @property
    def Wo(self) -> int:
        from invobench.shapes import out_size

        return out_size(self.W, self.K, self.stride, self.dilation)

    def replace(self, **changes) -> "Case":
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def label(self) -> str:
        extra = "".join(
            [
                f" s{self.stride}" if self.stride != 1 else "",
                f" d{self.dilation}" if self.dilation != 1 else "",
                " cl" if self.channels_last else "",
            ]
        )
        return f"B{self.B} C{self.C} {self.H}x{self.W} K{self.K} G{self.G}{extra} {self.dtype} {self.device} {self.level}"


@dataclass
class Workload:
    """What a variant builds for a case: a zero-argument callable and the leaves it differentiates."""

    fn: Callable[[], torch.Tensor]
    inputs: list[torch.Tensor]
    module: Optional[torch.nn.Module] = None
    #: forward + backward + optimizer update, for the "train" pass (models)
    train_step: Optional[Callable[[], None]] = None


def device_reasons(device: str) -> list[str]:
    """Reasons a device string can't be used on this machine (empty when it can)."""
    if device == "cpu":
        return []
    if device == "cuda":
        if not torch.cuda.is_available():
            return ["no CUDA device on this machine (torch.cuda.is_available() is False)"]
        return []
    return [f"unknown device {device!r}; valid devices: {', '.join(DEVICES)}"]


@dataclass(frozen=True)
class Variant:
    name: str
    family: str
    levels: tuple[str, ...]
    devices: tuple[str, ...]
    dtypes: tuple[str, ...]
    supports_backward: bool
    description: str
    build: Callable[[Case, bool], Workload] = field(repr=False)
    #: environment reasons, independent of the case (missing library, no compiler, ...)
    requirements: Callable[[], list[str]] = field(default=lambda: [], repr=False)
    #: case-specific limits beyond device/dtype/level (max K, shapes, ...)
    case_reasons: Callable[[Case], list[str]] = field(default=lambda case: [], repr=False)
    #: reasons the backward can't run a case although the forward can (e.g. FlexAttention on CPU)
    backward_reasons: Callable[[Case], list[str]] = field(default=lambda case: [], repr=False)
    #: facts recorded with each result of this variant for a case (e.g. the autotuned block configuration)
    info: Callable[[Case], dict] = field(default=lambda case: {}, repr=False)

    @property
    def key(self) -> str:
        return f"{self.family}.{self.name}"

    def unavailable_reasons(self) -> list[str]:
        """Why this variant can't run at all here (for `invobench list`): empty when some device can run it.

        Probes each of its devices with a small, valid case, so device-specific conditions in
        `case_reasons` (e.g. Triton on CPU only under TRITON_INTERPRET=1) count too.
        """
        reasons: list[str] = []
        for device in self.devices:
            probe = Case(B=1, C=16, H=224, W=224, K=3, G=1, dtype=self.dtypes[0], device=device, level=self.levels[0])
            found = self.why_not(probe)
            if not found:
                return []
            reasons += [r for r in found if r not in reasons]
        return reasons

    def why_not(self, case: Case, backward: bool = False) -> list[str]:
        """Every reason this variant cannot run `case` here; empty means it can."""
        reasons = list(self.requirements())
        if case.level not in self.levels:
            reasons.append(f"level {case.level!r} not supported (supports: {', '.join(self.levels)})")
        if case.device not in self.devices:
            reasons.append(f"device {case.device!r} not supported (supports: {', '.join(self.devices)})")
        else:
            reasons += device_reasons(case.device)
        if case.dtype not in self.dtypes:
            reasons.append(f"dtype {case.dtype} not supported (supports: {', '.join(self.dtypes)})")
        if backward and not self.supports_backward:
            reasons.append("backward not implemented")
        elif backward:
            reasons += self.backward_reasons(case)
        reasons += self.case_reasons(case)
        return reasons


_REGISTRY: dict[str, Variant] = {}


def register(variant: Variant) -> Variant:
    if variant.family not in FAMILIES:
        raise ValueError(f"family={variant.family!r} is not one of {FAMILIES}")
    _REGISTRY[variant.key] = variant
    return variant


def _load_all() -> None:
    # Importing the op packages registers their variants; optional backends register lazily-guarded entries.
    import invobench.ops  # noqa: F401
    import invobench.models  # noqa: F401  (the model family: RedNet/ResNet)


def all_variants(family: Optional[str] = None) -> list[Variant]:
    _load_all()
    return [v for v in _REGISTRY.values() if family is None or v.family == family]


def get(key: str, family: Optional[str] = None) -> Variant:
    """Look a variant up by `family.name` (or bare `name` when `family` is given); errors list valid names."""
    _load_all()
    full = key if "." in key or family is None else f"{family}.{key}"
    if full in _REGISTRY:
        return _REGISTRY[full]
    known = sorted(_REGISTRY) if family is None else sorted(v.name for v in all_variants(family))
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    what = "variant" if family is None else f"{family} variant"
    raise ValueError(f"unknown {what} {key!r}.{hint} Known: {', '.join(known)}")
