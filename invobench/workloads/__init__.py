"""Benchmark workloads: every built-in variant, with the `build` that makes a workload of a case.

Operator packages declare what each implementation can run; this layer, above the layers (`nn`) and
networks (`models`), gives each variant the workload the runner times: op level (the operator on
random inputs), layer level (the nn module) and model level (a whole network). `builtin_variants()`
is the one explicit list the registry reads.
"""
from __future__ import annotations

from invobench.core import Variant
from invobench.ops.involution import VARIANTS as INVOLUTION_VARIANTS
from invobench.workloads import attention, conv, involution, models


def builtin_variants() -> list[Variant]:
    """Every built-in variant in `invobench list` order: involution, conv, attention, model."""
    return [*involution.variants(), *conv.variants(), *attention.variants(), *models.variants(INVOLUTION_VARIANTS)]
