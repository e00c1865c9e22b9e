"""The types every layer shares: cases, workloads, variants, and the names of families, levels, passes,
dtypes and devices. This module is the bottom of the package: it imports nothing of invobench but the
shape arithmetic beside it (`invobench.core.shapes`).

A variant is declared once with its name, family, levels and capabilities; its `why_not(case)`
answers with the reasons it cannot run that case on this machine. The same reasons feed dispatch
(`variant="auto"`), `invobench list`, skipped records and error messages. An operator package
declares what a variant can run (and its operator callable, `op`); `invobench.workloads` gives it
the `build` that makes a benchmark workload of a case; `invobench.registry` holds the result.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from invobench.core.shapes import out_size

FAMILIES = ("involution", "conv", "attention", "model")
LEVELS = ("op", "layer", "model")
#: fwd: forward only (inference for models); bwd: backward over a retained graph with a fixed grad_out;
#: fwd+bwd: both; train: forward + backward + optimizer update (workloads with a `train_step`)
PASSES = ("fwd", "bwd", "fwd+bwd", "train")
DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
BYTES_PER_ELEMENT = {"float64": 8, "float32": 4, "bfloat16": 2, "float16": 2}
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
        return out_size(self.H, self.K, self.stride, self.dilation)

    @property
    def Wo(self) -> int:
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


def no_reasons(*args) -> list[str]:
    """The default `requirements`, `case_reasons` and `backward_reasons` of a variant: none."""
    return []


def no_info(case: "Case") -> dict:
    """The default `info` of a variant: no facts."""
    return {}


@dataclass(frozen=True)
class Variant:
    name: str
    family: str
    levels: tuple[str, ...]
    devices: tuple[str, ...]
    dtypes: tuple[str, ...]
    supports_backward: bool
    description: str
    #: the benchmark workload of a case (None where the operator package declared the variant and
    #: `invobench.workloads` has not given it one yet)
    build: Optional[Callable[[Case, bool], Workload]] = field(default=None, repr=False)
    #: environment reasons, independent of the case (missing library, no compiler, ...)
    requirements: Callable[[], list[str]] = field(default=no_reasons, repr=False)
    #: case-specific limits beyond device/dtype/level (max K, shapes, ...)
    case_reasons: Callable[[Case], list[str]] = field(default=no_reasons, repr=False)
    #: reasons the backward can't run a case although the forward can (e.g. FlexAttention on CPU)
    backward_reasons: Callable[[Case], list[str]] = field(default=no_reasons, repr=False)
    #: facts recorded with each result of this variant for a case (e.g. the autotuned block configuration)
    info: Callable[[Case], dict] = field(default=no_info, repr=False)
    #: the operator callable of an op-level variant (the involution apply, an attention function)
    op: Optional[Callable] = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> str:
        return f"{self.family}.{self.name}"

    def unavailable_reasons(self, device: Optional[str] = None) -> list[str]:
        """Why this variant can't run at all here (for `invobench list`): empty when some device can run it,
        or, with `device`, when that device can.

        Probes each of its devices with a small, valid case, so device-specific conditions in
        `case_reasons` (e.g. Triton on CPU only under TRITON_INTERPRET=1) count too.
        """
        if device is not None and device not in self.devices:
            return [f"device {device!r} not supported (supports: {', '.join(self.devices)})"]
        reasons: list[str] = []
        for probe_device in [device] if device is not None else self.devices:
            probe = Case(B=1, C=16, H=224, W=224, K=3, G=1, dtype=self.dtypes[0], device=probe_device,
                         level=self.levels[0])
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


def lookup(table: dict, key: str, what: str) -> object:
    """`table[key]`, or ValueError naming the known keys and the closest one."""
    import difflib

    if key in table:
        return table[key]
    known = sorted(table)
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown {what} {key!r}.{hint} Known: {', '.join(known)}")
