"""Analytic counts of the spec (docs/spec.md): MACs, FLOPs (= 2·MACs), parameters, minimum bytes.

Each function is a small pure formula, unit-tested against the spec's worked examples.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from invobench.core import BYTES_PER_ELEMENT, Case
from invobench.ops.conv import CONV_GROUPS


@dataclass(frozen=True)
class Counts:
    """Counts of one (family, variant, case). MACs are fvcore's/the paper's "FLOPs"; FLOPs = 2·MACs."""

    macs_fwd: int
    macs_bwd: int
    params: int
    min_bytes_fwd: Optional[int]  # None where the spec defines no byte model (layers)
    min_bytes_bwd: Optional[int]

    @property
    def flops_fwd(self) -> int:
        return 2 * self.macs_fwd

    @property
    def flops_bwd(self) -> int:
        return 2 * self.macs_bwd

    @property
    def intensity_fwd(self) -> Optional[float]:
        """Arithmetic intensity, FLOP per byte of the minimum forward traffic."""
        return self.flops_fwd / self.min_bytes_fwd if self.min_bytes_fwd else None

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(flops_fwd=self.flops_fwd, flops_bwd=self.flops_bwd, intensity_fwd=self.intensity_fwd)
        return d


# ---- involution (spec §1, §2) ------------------------------------------------------------

def involution_apply_macs(B: int, C: int, Ho: int, Wo: int, K: int) -> int:
    """B·C·Ho·Wo·K²."""
    return B * C * Ho * Wo * K * K


def involution_min_bytes_fwd(B: int, C: int, H: int, W: int, G: int, K: int, Ho: int, Wo: int, e: int) -> int:
    """e·(B·C·H·W + B·G·K²·Ho·Wo + B·C·Ho·Wo): read x and the kernel once, write the output once."""
    return e * (B * C * H * W + B * G * K * K * Ho * Wo + B * C * Ho * Wo)


def involution_min_bytes_bwd(B: int, C: int, H: int, W: int, G: int, K: int, Ho: int, Wo: int, e: int) -> int:
    """e·(gout + x + w + grad_x + grad_w) = e·(B·C·Ho·Wo + 2·B·C·H·W + 2·B·G·K²·Ho·Wo)."""
    return e * (B * C * Ho * Wo + 2 * B * C * H * W + 2 * B * G * K * K * Ho * Wo)


def involution_layer_params(C: int, K: int, G: int, r: int) -> int:
    """C·C/r + 2·C/r + (C/r)·G·K² + G·K²  (reduce, BN affine, span weight, span bias)."""
    Cr = C // r
    return C * Cr + 2 * Cr + Cr * G * K * K + G * K * K


def involution_layer_macs(B: int, C: int, Ho: int, Wo: int, K: int, G: int, r: int) -> int:
    """B·Ho·Wo·(C·C/r + (C/r)·G·K² + C·K²): reduce and span at output resolution, then the apply."""
    Cr = C // r
    return B * Ho * Wo * (C * Cr + Cr * G * K * K + C * K * K)


# ---- convolution (spec §3) ---------------------------------------------------------------

def conv_macs(B: int, C: int, Ho: int, Wo: int, K: int, groups: int) -> int:
    """B·C·(C/groups)·K²·Ho·Wo."""
    return B * C * (C // groups) * K * K * Ho * Wo


def conv_params(C: int, K: int, groups: int, bias: bool = False) -> int:
    """C·(C/groups)·K² (+C)."""
    return C * (C // groups) * K * K + (C if bias else 0)


def conv_min_bytes_fwd(B: int, C: int, H: int, W: int, K: int, groups: int, Ho: int, Wo: int, e: int) -> int:
    """e·(x + weight + out), the apply's byte model with a static weight in place of the kernel."""
    return e * (B * C * H * W + conv_params(C, K, groups) + B * C * Ho * Wo)


def conv_min_bytes_bwd(B: int, C: int, H: int, W: int, K: int, groups: int, Ho: int, Wo: int, e: int) -> int:
    """e·(gout + x + weight + grad_x + grad_weight)."""
    return e * (B * C * Ho * Wo + 2 * B * C * H * W + 2 * conv_params(C, K, groups))


# ---- local self-attention (spec §4) -------------------------------------------------------

def attention_core_macs(B: int, C: int, Ho: int, Wo: int, K: int) -> int:
    """2·B·C·K²·Ho·Wo: q·k and weights·v, every window counted as a full K² (border taps are computed, then masked)."""
    return 2 * B * C * K * K * Ho * Wo


def attention_layer_macs(B: int, C: int, H: int, W: int, Ho: int, Wo: int, K: int) -> int:
    """B·(3·C²·H·W + 2·C·K²·Ho·Wo): 1×1 q/k/v projections at input resolution + the core."""
    return B * 3 * C * C * H * W + attention_core_macs(B, C, Ho, Wo, K)


def attention_params(C: int, heads: int, K: int, rpb: bool) -> int:
    """3·C² (+ h·(2K−1)² with the relative-position bias)."""
    return 3 * C * C + (heads * (2 * K - 1) ** 2 if rpb else 0)


def attention_min_bytes_fwd(B: int, C: int, H: int, W: int, Ho: int, Wo: int, e: int) -> int:
    """e·(q at the query positions + k + v + out)."""
    return e * (2 * B * C * Ho * Wo + 2 * B * C * H * W)


# ---- dispatch ------------------------------------------------------------------------------

def analytic_counts(family: str, variant: str, case: Case) -> Counts:
    """The spec's counts for a (family, variant, case). Backward MACs are 2× forward (every input needs a grad)."""
    B, C, H, W, K, G = case.B, case.C, case.H, case.W, case.K, case.G
    Ho, Wo, e = case.Ho, case.Wo, BYTES_PER_ELEMENT[case.dtype]
    if family == "involution":
        if case.level == "op":
            macs = involution_apply_macs(B, C, Ho, Wo, K)
            return Counts(macs, 2 * macs, 0, involution_min_bytes_fwd(B, C, H, W, G, K, Ho, Wo, e),
                          involution_min_bytes_bwd(B, C, H, W, G, K, Ho, Wo, e))
        macs = involution_layer_macs(B, C, Ho, Wo, K, G, case.reduction)
        return Counts(macs, 2 * macs, involution_layer_params(C, K, G, case.reduction), None, None)
    if family == "conv":
        groups = CONV_GROUPS[variant](case)
        macs = conv_macs(B, C, Ho, Wo, K, groups)
        return Counts(macs, 2 * macs, conv_params(C, K, groups), conv_min_bytes_fwd(B, C, H, W, K, groups, Ho, Wo, e),
                      conv_min_bytes_bwd(B, C, H, W, K, groups, Ho, Wo, e))
    if family == "attention":
        if case.level == "op":
            macs = attention_core_macs(B, C, Ho, Wo, K)
            params = (G * (2 * K - 1) ** 2) if case.rpb else 0
            return Counts(macs, 2 * macs, params, attention_min_bytes_fwd(B, C, H, W, Ho, Wo, e), None)
        macs = attention_layer_macs(B, C, H, W, Ho, Wo, K)
        return Counts(macs, 2 * macs, attention_params(C, G, K, case.rpb), None, None)
    if family == "model":
        return model_counts(variant, case)
    raise ValueError(f"no analytic counts for family {family!r}; known: involution, conv, attention, model")


def model_counts(variant: str, case: Case) -> Counts:
    """A whole network's counts (spec §5): forward MACs, backward MACs, parameters (no byte model)."""
    from invobench.models import MODELS, split_variant_name
    from invobench.models.complexity import bottleneck_net_counts

    spec = MODELS[split_variant_name(variant)[0]]
    counts = bottleneck_net_counts(spec.depth, spec.involution, case.H, case.W, case.B)
    return Counts(macs_fwd=counts.macs, macs_bwd=counts.macs_bwd, params=counts.params,
                  min_bytes_fwd=None, min_bytes_bwd=None)
