"""Every involution variant, from one explicit list of backend modules (no registration by import).

The order is the order of `invobench list`. A backend module imports without its optional
dependency (triton, cupy, a compiler): it imports those lazily and reports their absence through
its variants' `requirements`, so every variant is always listed, with the reasons it can't run.
"""
from __future__ import annotations

from invobench.core import Variant, lookup
from invobench.ops.involution import compiled, cpu, cuda, eager, triton, unfold

VARIANTS: tuple[Variant, ...] = (
    *eager.VARIANTS, *unfold.VARIANTS, *compiled.VARIANTS, *triton.VARIANTS, *cuda.VARIANTS, *cpu.VARIANTS,
)
BY_NAME: dict[str, Variant] = {v.name: v for v in VARIANTS}
#: variant name -> its apply, op(x, kernel, kernel_size, stride, dilation)
APPLY = {v.name: v.op for v in VARIANTS}


def get_variant(name: str) -> Variant:
    """The involution variant called `name`; ValueError naming the known ones otherwise."""
    return lookup(BY_NAME, name, "involution variant")
