"""torch.compile of the involution apply: the `compile` variant.

Formulation: the K²-tap loop of `reference.py`, not the unfold form. Inductor fuses the K² shifted
multiply-adds into one loop nest that reads x and the kernel once and never materialises the
K²-sized patch tensor, which is why it beats a compiled unfold; the price is compile time (tens of
seconds at K=7 on a small CPU), paid once per shape. The backward compiles the explicit tap-loop
backward of `reference.py` the same way.
"""
from __future__ import annotations

import functools

import torch

from invobench.ops.involution.reference import involution_reference, involution_reference_backward
from invobench.ops.involution.variant import involution_variant


@functools.cache
def _compiled():
    # Every benchmarked shape is a new graph; dynamo's default of 8 recompiles per function would
    # otherwise silently fall back to eager after the 8th shape of a sweep.
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 512)
    torch._dynamo.config.accumulated_recompile_limit = max(torch._dynamo.config.accumulated_recompile_limit, 4096)
    fwd = torch.compile(involution_reference, dynamic=False, fullgraph=True)
    bwd = torch.compile(involution_reference_backward, dynamic=False, fullgraph=True)
    return fwd, bwd


def involution_compiled(x, kernel, kernel_size, stride=1, dilation=1):
    return _compiled()[0](x, kernel, kernel_size, stride, dilation)


def involution_compiled_backward(grad_out, x, kernel, kernel_size, stride=1, dilation=1):
    return _compiled()[1](grad_out, x, kernel, kernel_size, stride, dilation)


VARIANTS = (
    involution_variant(
        "compile", involution_compiled, involution_compiled_backward, devices=("cpu", "cuda"),
        dtypes=("float32", "bfloat16", "float16"),
        description="torch.compile (inductor) of the tap loop, forward and explicit backward",
    ),
)
