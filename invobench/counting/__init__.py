"""Counts: the spec's analytic formulas and the two measuring counters (FlopCounterMode, fvcore)."""
from invobench.counting.formulas import (  # noqa: F401
    BYTES_PER_ELEMENT, Counts, analytic_counts, attention_core_macs, attention_layer_macs, attention_params,
    conv_macs, conv_min_bytes_bwd, conv_min_bytes_fwd, conv_params, involution_apply_macs, involution_layer_macs,
    involution_layer_params, involution_min_bytes_bwd, involution_min_bytes_fwd, model_counts,
)
from invobench.counting.measured import (  # noqa: F401
    MeasuredCount, enable_fvcore, flop_counter_flops, fvcore_handles, fvcore_macs,
)
