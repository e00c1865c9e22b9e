"""The memory guard's estimate for whole networks: bytes live at the peak of one call of a model pass."""
from __future__ import annotations

from invobench.core import BYTES_PER_ELEMENT, Case
from invobench.models import MODELS, split_variant_name
from invobench.models.complexity import bottleneck_net_counts


def estimate_peak_bytes(variant: str, case: Case, pass_: str) -> int:
    """Bytes live at the peak of one call of a model pass, parameters and image included (the memory guard).

    With P = parameter bytes, e = bytes per element, per image: A = activations a training forward
    keeps, L = the largest activation, T = the involution variant's temporaries in its worst layer
    (eager 3·O fwd / 3·max(X, O) bwd, unfold 2·U / 3·U with U = C·K²·Ho·Wo, other kernels O / X + O):
    fwd = P + B·e·(image + 3·L + T_fwd) + 2·largest conv weight (oneDNN's reordered copy);
    bwd, fwd+bwd = 2·P (+ gradients), train = 3·P (+ momentum), each + B·e·(image + A + 3·L + T_bwd) + the
    same weight term. Calibrated against the profiler's allocator peak (docs/models.md): 1.0-1.3× above it.
    """
    model_name, involution_variant = split_variant_name(variant)
    spec = MODELS[model_name]
    counts = bottleneck_net_counts(spec.depth, spec.involution, case.H, case.W)
    a = counts.activations
    e = BYTES_PER_ELEMENT.get(case.dtype, 4)
    if involution_variant is None:
        t_fwd = t_bwd = 0
    elif involution_variant == "unfold":
        t_fwd, t_bwd = 2 * a.inv_u, 3 * a.inv_u
    elif involution_variant == "eager":
        t_fwd, t_bwd = 3 * a.inv_o, 3 * max(a.inv_x, a.inv_o)
    else:
        t_fwd, t_bwd = a.inv_o, a.inv_x + a.inv_o
    image = 3 * case.H * case.W
    params = counts.params * e
    weights = 2 * a.largest_weight * e
    if pass_ == "fwd":
        return params + case.B * e * (image + 3 * a.largest + t_fwd) + weights
    copies = 3 if pass_ == "train" else 2
    return copies * params + case.B * e * (image + a.saved + 3 * a.largest + max(t_fwd, t_bwd)) + weights
