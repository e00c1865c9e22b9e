"""Counts measured by torch.utils.flop_counter.FlopCounterMode and fvcore, for checking the formulas.

Both counters see the involution apply because every variant is a custom op with a FLOP
formula (FlopCounterMode) and an fvcore handle (`fvcore_handles`). `enable_fvcore()` adds those handles
to fvcore's table of default handles, so a plain `FlopCountAnalysis(model, x)` counts the apply too
(without it fvcore counts every involution apply as 0, silently). fvcore's own handles for
batch_norm/pooling/upsampling are switched off so it counts what the spec counts
(convolutions, matmuls and the apply). FlexAttention is invisible to both in torch 2.13:
FlopCounterMode raises on its higher-order op and fvcore cannot jit-trace it; the functions
then return a `MeasuredCount` with `value=None` and that reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch.utils.flop_counter import FlopCounterMode

from invobench.ops.involution.custom_op import REGISTERED_OPS, involution_macs_from_shapes
from invobench.core import Workload

#: fvcore counts these by default; the spec does not (BN, pooling, upsampling are not MACs here)
FVCORE_IGNORED = [
    "aten::batch_norm", "aten::group_norm", "aten::layer_norm", "aten::instance_norm",
    "aten::upsample_nearest2d", "aten::upsample_bilinear2d", "aten::adaptive_avg_pool2d", "aten::grid_sampler",
]


@dataclass
class MeasuredCount:
    value: Optional[int]
    reason: str = ""
    by_op: Optional[dict] = None


def _zero(inputs, outputs) -> int:
    return 0


def fvcore_handles() -> dict:
    """fvcore op handles (MACs) for every registered involution custom op (forward ops only: fvcore traces forward)."""
    from fvcore.nn.jit_handles import get_shape

    def handle(inputs, outputs):
        return involution_macs_from_shapes(get_shape(inputs[0]), get_shape(inputs[1]))

    return {name: handle for name, is_forward in REGISTERED_OPS.items() if is_forward}


def enable_fvcore() -> list[str]:
    """Make plain `fvcore.nn.FlopCountAnalysis(model, x)` count every involution op; returns the op names covered.

    Adds `fvcore_handles()` to fvcore's table of default handles (`fvcore.nn.flop_count._DEFAULT_SUPPORTED_OPS`,
    which every new FlopCountAnalysis copies), so the count equals one made with
    `analysis.set_op_handle(**fvcore_handles())`. Nothing is changed by importing invobench: call this once
    (again after a plugin defines more involution ops). Idempotent.
    """
    import importlib

    # the module, not the function `fvcore.nn.flop_count` that the package exports under the same name
    flop_count = importlib.import_module("fvcore.nn.flop_count")
    table = getattr(flop_count, "_DEFAULT_SUPPORTED_OPS", None)
    if not isinstance(table, dict):
        import fvcore

        raise RuntimeError(f"fvcore {getattr(fvcore, '__version__', '?')} has no table of default op handles "
                           "(fvcore.nn.flop_count._DEFAULT_SUPPORTED_OPS); count with "
                           "FlopCountAnalysis(model, x).set_op_handle(**invobench.counting.fvcore_handles()) instead")
    handles = fvcore_handles()
    table.update(handles)
    return sorted(handles)


def flop_counter_flops(workload: Workload, backward: bool = False) -> MeasuredCount:
    """FLOPs (2·MACs) seen by FlopCounterMode for one forward, or for one backward of a fresh forward."""
    try:
        if not backward:
            with FlopCounterMode(display=False) as counter:
                workload.fn()
        else:
            out = workload.fn()
            grad_out = torch.ones_like(out)
            with FlopCounterMode(display=False) as counter:
                out.backward(grad_out)
    except Exception as exc:  # e.g. flex_attention's higher-order op has no FlopCounterMode rule
        # A failure inside dynamo's tracing (flex runs through it even in eager) leaves frames marked
        # as skipped, and later calls of the same function fail; start dynamo afresh.
        torch._dynamo.reset()
        return MeasuredCount(None, f"FlopCounterMode failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    by_op = {str(k): int(v) for k, v in counter.get_flop_counts().get("Global", {}).items()}
    return MeasuredCount(int(counter.get_total_flops()), by_op=by_op)


class _Traced(torch.nn.Module):
    """Lets fvcore jit-trace a zero-argument workload; the workload's module is a submodule so its weights are params."""

    def __init__(self, workload: Workload):
        super().__init__()
        self.workload_fn = workload.fn
        self.inner = workload.module

    def forward(self, _unused: torch.Tensor) -> torch.Tensor:
        return self.workload_fn()


def fvcore_macs(workload: Workload) -> MeasuredCount:
    """MACs of one forward as counted by fvcore's FlopCountAnalysis (inputs must not require grad)."""
    import warnings

    from fvcore.nn import FlopCountAnalysis

    model = _Traced(workload)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            analysis = FlopCountAnalysis(model, (torch.zeros(1),))
            analysis.set_op_handle(**fvcore_handles())
            # a handle of None only silences ops without a handle; replace the default handles with zero counters
            analysis.set_op_handle(**{name: _zero for name in FVCORE_IGNORED})
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
            total = int(analysis.total())
            by_op = dict(analysis.by_operator())
            unsupported = dict(analysis.unsupported_ops())
    except Exception as exc:
        torch._dynamo.reset()  # see flop_counter_flops
        return MeasuredCount(None, f"fvcore failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    reason = f"unsupported ops (not counted): {unsupported}" if unsupported else ""
    return MeasuredCount(total, reason, by_op)
