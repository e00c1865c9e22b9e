"""Shared types and shape arithmetic: the bottom layer, importing nothing else of invobench.

"spec §N", throughout the package, is section N of the operator contract, docs/spec.md."""
from invobench.core.shapes import (  # noqa: F401
    MAX_KERNEL_SIZE, check_involution_args, check_positive_int, out_size, padding_for,
)
from invobench.core.types import (  # noqa: F401
    BYTES_PER_ELEMENT, DEVICES, DTYPES, FAMILIES, LEVELS, PASSES, Case, Variant, Workload, device_reasons, lookup, no_info,
    no_reasons,
)
