"""Involution apply (spec §1): the public `involution()` and its variants.

Each variant is a torch custom op (so compile, FlopCounterMode and fvcore see it) declared by
`variant.involution_variant` in its backend module (`eager`, `unfold`, `compiled`, `cpu`,
`triton`, `cuda`); `variants.VARIANTS` lists them all, explicitly, and `api.involution` dispatches
among them by their `why_not` reasons.
"""
from invobench.core import padding_for
from invobench.ops.involution.api import AUTO_ORDER, involution, make_inputs, variant_for
from invobench.ops.involution.variants import APPLY, BY_NAME, VARIANTS, get_variant

__all__ = ["involution", "variant_for", "make_inputs", "get_variant", "APPLY", "AUTO_ORDER", "BY_NAME", "VARIANTS",
           "padding_for"]
