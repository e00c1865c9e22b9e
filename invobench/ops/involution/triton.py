"""Triton kernels for the involution apply (spec §1), forward and backward: variants `triton` and `triton-simple`.

`triton` (the one `variant="auto"` picks on a GPU). The operator is memory-bound (≈5 FLOP/B at
C=256, G=16, K=7), so the kernels are shaped around bytes, not FLOPs:

- forward: one program owns one (batch, group), a block of up to BLOCK_C of the group's Cg channels
  and BLOCK_P consecutive output pixels of the flattened Ho·Wo plane. For each of the K² taps it
  loads the per-pixel kernel values once ([BLOCK_P]) and applies them to all BLOCK_C channels
  ([BLOCK_C, BLOCK_P] tile), accumulating in fp32. Consecutive lanes own consecutive pixels, so
  kernel/output accesses are contiguous and input accesses are contiguous along W.
- grad-input: a gather over the input pixels (no atomics): for input pixel (y, x') and tap (i, j)
  the only output pixel that read it is ho = (y + p − i·d)/s when that is an integer in range. The
  kernel value is loaded once per program and reused across the BLOCK_C channels of the block.
- grad-kernel: one program per (batch, group) and BLOCK_P output pixels; for each tap it reduces
  gout·x over the group's Cg channels in registers (a reduction over the channel axis), looping over
  channel chunks when Cg > BLOCK_C, and writes the tap's [BLOCK_P] row once: no atomics, no
  second pass.

`triton-simple` is the naive peer the ≥1.5× target of issue 5 is measured against: one lane per
output element (forward), per input element (grad-input), per kernel element (grad-kernel), each
loading its own kernel values and looping over taps (and channels) with no reuse across channels.

Both autotune over a few block configurations, keyed on the case's shape and dtype, the first
time a shape is seen on a GPU (under the interpreter the widest configuration is used, untimed);
`info(case)` reports the chosen configurations for each result.

Layout: contiguous NCHW. Other layouts (channels_last included) are copied to NCHW with
`.contiguous()` before the launch, and the output is NCHW; the copy is part of the measured time.
Offsets are 32-bit unless one of the tensors has ≥ 2³¹ elements, when a constexpr switch makes
every offset 64-bit.

CPU tensors run through Triton's interpreter (numpy) when TRITON_INTERPRET=1 is set at call
time. Triton reads that variable when `@triton.jit` decorates a function, i.e. at import, so the
launcher does not rely on that: it checks the variable at each call and launches an
`InterpretedFunction` built from the same Python function (see `_runnable`). The standard-library
helpers of triton.language (`tl.zeros`, `tl.sum`, ...) are themselves `@jit` functions fixed at
*their* import, so an interpreted kernel could not call them when triton was imported without the
variable; the kernels therefore use only builtins: `tl.full` for zeros and
`tl.reduce(..., tl.standard._sum_combine)` for the channel sum (exactly what `tl.sum` expands to,
and the combine function the interpreter maps to numpy's sum).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from invobench.core import MAX_KERNEL_SIZE, Case, out_size, padding_for
from invobench.ops.involution.triton_kernels import (  # noqa: F401  (the kernels, re-exported for triton_static)
    _TRITON_IMPORT_ERROR, involution_bwd_input_kernel, involution_bwd_input_simple_kernel, involution_bwd_kernel_kernel,
    involution_bwd_kernel_simple_kernel, involution_fwd_kernel, involution_fwd_simple_kernel, triton,
)
from invobench.ops.involution.variant import involution_variant

log = logging.getLogger(__name__)

SUPPORTED_DTYPES = ("float32", "bfloat16", "float16")
CPU_NEEDS_INTERPRETER = "CPU tensors need TRITON_INTERPRET=1; use variant='eager' or 'cpu'"
FLOAT64_UNSUPPORTED = (
    "float64 is not supported by the Triton kernels (they load fp32/fp16/bf16 and accumulate in fp32); "
    "use variant='eager' for float64"
)


# --------------------------------------------------------------------------------------------
# Block configurations and autotuning
# --------------------------------------------------------------------------------------------

#: elements of one [BLOCK_C, BLOCK_P] fp32 tile a program may hold (register budget per tensor)
TILE_BUDGET = 4096
#: most channels one program covers (the kernel-value reuse factor saturates well before this)
MAX_BLOCK_C = 32


@dataclass(frozen=True)
class BlockConfig:
    """One autotune point. `block_p` pixels per program (or elements, for the simple kernels)."""

    block_p: int
    num_warps: int

    def block_c(self, group_channels: int) -> int:
        """Channels per program: all of the group's when they fit the tile budget, else a power-of-2 chunk."""
        want = triton.next_power_of_2(group_channels) if triton is not None else group_channels
        return max(1, min(want, MAX_BLOCK_C, TILE_BUDGET // self.block_p))

    def label(self, group_channels: Optional[int] = None) -> str:
        if group_channels is None:
            return f"BLOCK={self.block_p} num_warps={self.num_warps}"
        return f"BLOCK_P={self.block_p} BLOCK_C={self.block_c(group_channels)} num_warps={self.num_warps}"


#: tiled kernels (`triton`): from small tiles (many programs, for small planes) to wide ones
TILED_CONFIGS = (BlockConfig(64, 2), BlockConfig(128, 4), BlockConfig(256, 4), BlockConfig(512, 8))
#: one lane per element (`triton-simple`)
SIMPLE_CONFIGS = (BlockConfig(128, 4), BlockConfig(256, 8))

#: (variant, kernel, shape key) -> chosen configuration; the autotuner's cache (like triton.autotune's)
_TUNED: dict[tuple, BlockConfig] = {}
#: (variant, kernel, shape key) -> how it was chosen ("autotuned", "interpreter (untimed)")
_TUNED_HOW: dict[tuple, str] = {}


def shape_key(B: int, C: int, H: int, W: int, G: int, K: int, stride: int, dilation: int, dtype: str, device: str) -> tuple:
    """What the autotuner keys its choice on (the case's shape, dtype and device type)."""
    return (B, C, H, W, G, K, stride, dilation, dtype, device)


def _case_key(case: Case) -> tuple:
    return shape_key(case.B, case.C, case.H, case.W, case.G, case.K, case.stride, case.dilation, case.dtype, case.device)


def _bench_ms(fn: Callable[[], None]) -> float:
    return triton.testing.do_bench(fn, warmup=10, rep=30, return_mode="median")


def _launch_tuned(variant: str, kernel: str, key: tuple, configs: tuple, launch: Callable[[BlockConfig], None],
                  interpreted: bool, group_channels: int) -> None:
    """Launch with the cached configuration for `key`, benchmarking every configuration the first time on a GPU."""
    slot = (variant, kernel, key)
    chosen = _TUNED.get(slot)
    if chosen is None:
        if interpreted:
            # the interpreter's cost is per program and per op, hardly per element: fewest programs wins
            chosen, how = max(configs, key=lambda cfg: cfg.block_p), "interpreter (untimed)"
        elif len(configs) == 1:
            chosen, how = configs[0], "single configuration"
        else:
            # configurations that resolve to the same tile are timed once
            distinct = {}
            for cfg in configs:
                distinct.setdefault((cfg.block_p, cfg.block_c(group_channels), cfg.num_warps), cfg)
            timings = {cfg: _bench_ms(lambda cfg=cfg: launch(cfg)) for cfg in distinct.values()}
            chosen, how = min(timings, key=timings.get), "autotuned"
            log.info("%s %s %s: %s", variant, kernel, key,
                     ", ".join(f"{c.label(group_channels)}: {t:.4f} ms" for c, t in timings.items()))
        _TUNED[slot], _TUNED_HOW[slot] = chosen, how
    launch(chosen)


# --------------------------------------------------------------------------------------------
# Launchers
# --------------------------------------------------------------------------------------------


def interpreting() -> bool:
    """TRITON_INTERPRET as set now (triton itself reads it only when @triton.jit decorates)."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on", "yes")


_INTERPRETED: dict[Callable, object] = {}


def _runnable(kernel, interpreted: bool):
    """The launchable form of a kernel for this call: the JIT function, or an interpreted twin of it."""
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    if interpreted:
        if isinstance(kernel, InterpretedFunction):
            return kernel
        if kernel.fn not in _INTERPRETED:
            _INTERPRETED[kernel.fn] = InterpretedFunction(kernel.fn)
        return _INTERPRETED[kernel.fn]
    if isinstance(kernel, JITFunction):
        return kernel
    # imported while TRITON_INTERPRET=1 was set, launched on a GPU after it was unset
    if kernel.fn not in _INTERPRETED:
        _INTERPRETED[kernel.fn] = JITFunction(kernel.fn)
    return _INTERPRETED[kernel.fn]


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def launch_reasons(tensors: dict[str, torch.Tensor], kernel_size: int) -> list[str]:
    """Why these tensors can't go through the Triton kernels now (empty when they can)."""
    reasons = []
    if _TRITON_IMPORT_ERROR:
        reasons.append(_TRITON_IMPORT_ERROR)
    devices = {name: t.device for name, t in tensors.items()}
    if len(set(devices.values())) > 1:
        where = ", ".join(f"{name} on {device}" for name, device in devices.items())
        reasons.append(f"tensors are on different devices ({where}); move them to one device")
    for name, t in tensors.items():
        if t.dtype == torch.float64:
            reasons.append(f"{name}: {FLOAT64_UNSUPPORTED}")
        elif _dtype_name(t.dtype) not in SUPPORTED_DTYPES:
            reasons.append(f"{name}.dtype={t.dtype} is not supported (supports: {', '.join(SUPPORTED_DTYPES)})")
    dtypes = {t.dtype for t in tensors.values()}
    if len(dtypes) > 1:
        reasons.append(f"dtype mismatch ({', '.join(f'{n}: {t.dtype}' for n, t in tensors.items())}); pass one dtype")
    for device in set(devices.values()):
        if device.type == "cpu" and not interpreting():
            reasons.append(CPU_NEEDS_INTERPRETER)
        elif device.type not in ("cpu", "cuda"):
            reasons.append(f"device {device} is not supported (supports: cuda, cpu under TRITON_INTERPRET=1)")
    if kernel_size > MAX_KERNEL_SIZE:
        reasons.append(
            f"kernel_size={kernel_size} exceeds the Triton kernels' maximum of {MAX_KERNEL_SIZE} "
            "(the K² taps are unrolled); use variant='eager' or 'unfold'"
        )
    return reasons


def _check_launch(variant: str, tensors: dict[str, torch.Tensor], kernel_size: int) -> None:
    reasons = launch_reasons(tensors, kernel_size)
    if reasons:
        raise ValueError(f"involution.{variant} cannot run these inputs: " + "; ".join(reasons))


def _needs_int64(*tensors: torch.Tensor) -> bool:
    return max(t.numel() for t in tensors) >= 2**31


@dataclass(frozen=True)
class _Geometry:
    B: int
    C: int
    H: int
    W: int
    G: int
    Ho: int
    Wo: int
    K: int
    stride: int
    dilation: int

    @property
    def Cg(self) -> int:
        return self.C // self.G

    @property
    def padding(self) -> int:
        return padding_for(self.K, self.dilation)

    def key(self, dtype: torch.dtype, device: torch.device) -> tuple:
        return shape_key(self.B, self.C, self.H, self.W, self.G, self.K, self.stride, self.dilation,
                         _dtype_name(dtype), device.type)


def _geometry(x: torch.Tensor, kernel: torch.Tensor, kernel_size: int, stride: int, dilation: int) -> _Geometry:
    B, C, H, W = x.shape
    G = kernel.shape[1]
    Ho, Wo = out_size(H, kernel_size, stride, dilation), out_size(W, kernel_size, stride, dilation)
    expected = (B, G, kernel_size * kernel_size, Ho, Wo)
    if G < 1 or C % G or tuple(kernel.shape) != expected:
        raise ValueError(f"kernel has shape {tuple(kernel.shape)}; expected (B, G, K*K, Ho, Wo) = {expected} "
                         f"with C={C} divisible by G for x of shape {tuple(x.shape)}")
    return _Geometry(B, C, H, W, G, Ho, Wo, kernel_size, stride, dilation)


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def involution_triton(x: torch.Tensor, kernel: torch.Tensor, kernel_size: int, stride: int = 1, dilation: int = 1) -> torch.Tensor:
    """Forward of spec §1 with the tiled kernel: out (B, C, Ho, Wo), NCHW, dtype of x."""
    _check_launch("triton", {"x": x, "kernel": kernel}, kernel_size)
    geo = _geometry(x, kernel, kernel_size, stride, dilation)
    x, kernel = x.contiguous(), kernel.contiguous()
    out = torch.empty(geo.B, geo.C, geo.Ho, geo.Wo, dtype=x.dtype, device=x.device)
    interpreted = interpreting()
    fn = _runnable(involution_fwd_kernel, interpreted)
    use_int64 = _needs_int64(x, kernel, out)

    def launch(cfg: BlockConfig) -> None:
        block_c = cfg.block_c(geo.Cg)
        n_tiles, n_cblocks = _cdiv(geo.Ho * geo.Wo, cfg.block_p), _cdiv(geo.Cg, block_c)
        fn[(n_tiles * n_cblocks * geo.B * geo.G,)](
            x, kernel, out, geo.C, geo.H, geo.W, geo.Ho, geo.Wo, geo.G, geo.Cg, geo.dilation, geo.padding,
            n_tiles, n_cblocks, K=geo.K, STRIDE=geo.stride, BLOCK_C=block_c, BLOCK_P=cfg.block_p,
            USE_INT64=use_int64, num_warps=cfg.num_warps,
        )

    _launch_tuned("triton", "fwd", geo.key(x.dtype, x.device), TILED_CONFIGS, launch, interpreted, geo.Cg)
    return out


def involution_triton_backward(
    grad_out: torch.Tensor, x: torch.Tensor, kernel: torch.Tensor, kernel_size: int, stride: int = 1, dilation: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """(grad_x, grad_kernel) of spec §1: a gather kernel for grad_x, a channel-reduction kernel for grad_kernel."""
    _check_launch("triton", {"grad_out": grad_out, "x": x, "kernel": kernel}, kernel_size)
    geo = _geometry(x, kernel, kernel_size, stride, dilation)
    grad_out, x, kernel = grad_out.contiguous(), x.contiguous(), kernel.contiguous()
    grad_x = torch.empty(geo.B, geo.C, geo.H, geo.W, dtype=x.dtype, device=x.device)
    grad_w = torch.empty(geo.B, geo.G, geo.K * geo.K, geo.Ho, geo.Wo, dtype=kernel.dtype, device=x.device)
    interpreted = interpreting()
    key = geo.key(x.dtype, x.device)
    use_int64 = _needs_int64(grad_out, x, kernel)
    bwd_input = _runnable(involution_bwd_input_kernel, interpreted)
    bwd_kernel = _runnable(involution_bwd_kernel_kernel, interpreted)

    def launch_input(cfg: BlockConfig) -> None:
        block_c = cfg.block_c(geo.Cg)
        n_tiles, n_cblocks = _cdiv(geo.H * geo.W, cfg.block_p), _cdiv(geo.Cg, block_c)
        bwd_input[(n_tiles * n_cblocks * geo.B * geo.G,)](
            grad_out, kernel, grad_x, geo.C, geo.H, geo.W, geo.Ho, geo.Wo, geo.G, geo.Cg, geo.dilation, geo.padding,
            n_tiles, n_cblocks, K=geo.K, STRIDE=geo.stride, BLOCK_C=block_c, BLOCK_P=cfg.block_p,
            USE_INT64=use_int64, num_warps=cfg.num_warps,
        )

    def launch_kernel(cfg: BlockConfig) -> None:
        block_c = cfg.block_c(geo.Cg)
        n_tiles = _cdiv(geo.Ho * geo.Wo, cfg.block_p)
        bwd_kernel[(n_tiles * geo.B * geo.G,)](
            grad_out, x, grad_w, geo.C, geo.H, geo.W, geo.Ho, geo.Wo, geo.G, geo.Cg, geo.dilation, geo.padding,
            n_tiles, K=geo.K, STRIDE=geo.stride, BLOCK_C=block_c, BLOCK_P=cfg.block_p,
            SINGLE_CHUNK=block_c >= geo.Cg, USE_INT64=use_int64, num_warps=cfg.num_warps,
        )

    _launch_tuned("triton", "bwd_input", key, TILED_CONFIGS, launch_input, interpreted, geo.Cg)
    _launch_tuned("triton", "bwd_kernel", key, TILED_CONFIGS, launch_kernel, interpreted, geo.Cg)
    return grad_x, grad_w


def involution_triton_simple(x: torch.Tensor, kernel: torch.Tensor, kernel_size: int, stride: int = 1, dilation: int = 1) -> torch.Tensor:
    """Forward of spec §1, one lane per output element and no reuse (the naive peer of `involution_triton`)."""
    _check_launch("triton-simple", {"x": x, "kernel": kernel}, kernel_size)
    geo = _geometry(x, kernel, kernel_size, stride, dilation)
    x, kernel = x.contiguous(), kernel.contiguous()
    out = torch.empty(geo.B, geo.C, geo.Ho, geo.Wo, dtype=x.dtype, device=x.device)
    interpreted = interpreting()
    fn = _runnable(involution_fwd_simple_kernel, interpreted)
    use_int64 = _needs_int64(x, kernel, out)

    def launch(cfg: BlockConfig) -> None:
        fn[(_cdiv(out.numel(), cfg.block_p),)](
            x, kernel, out, geo.C, geo.H, geo.W, geo.Ho, geo.Wo, geo.G, geo.Cg, geo.dilation, geo.padding, out.numel(),
            K=geo.K, STRIDE=geo.stride, BLOCK=cfg.block_p, USE_INT64=use_int64, num_warps=cfg.num_warps,
        )

    _launch_tuned("triton-simple", "fwd", geo.key(x.dtype, x.device), SIMPLE_CONFIGS, launch, interpreted, geo.Cg)
    return out


def involution_triton_simple_backward(
    grad_out: torch.Tensor, x: torch.Tensor, kernel: torch.Tensor, kernel_size: int, stride: int = 1, dilation: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """(grad_x, grad_kernel), one lane per grad element, no reuse."""
    _check_launch("triton-simple", {"grad_out": grad_out, "x": x, "kernel": kernel}, kernel_size)
    geo = _geometry(x, kernel, kernel_size, stride, dilation)
    grad_out, x, kernel = grad_out.contiguous(), x.contiguous(), kernel.contiguous()
    grad_x = torch.empty(geo.B, geo.C, geo.H, geo.W, dtype=x.dtype, device=x.device)
    grad_w = torch.empty(geo.B, geo.G, geo.K * geo.K, geo.Ho, geo.Wo, dtype=kernel.dtype, device=x.device)
    interpreted = interpreting()
    key = geo.key(x.dtype, x.device)
    use_int64 = _needs_int64(grad_out, x, kernel)
    bwd_input = _runnable(involution_bwd_input_simple_kernel, interpreted)
    bwd_kernel = _runnable(involution_bwd_kernel_simple_kernel, interpreted)
    common = (geo.C, geo.H, geo.W, geo.Ho, geo.Wo, geo.G, geo.Cg, geo.dilation, geo.padding)

    def launch_input(cfg: BlockConfig) -> None:
        bwd_input[(_cdiv(grad_x.numel(), cfg.block_p),)](
            grad_out, kernel, grad_x, *common, grad_x.numel(),
            K=geo.K, STRIDE=geo.stride, BLOCK=cfg.block_p, USE_INT64=use_int64, num_warps=cfg.num_warps,
        )

    def launch_kernel(cfg: BlockConfig) -> None:
        bwd_kernel[(_cdiv(grad_w.numel(), cfg.block_p),)](
            grad_out, x, grad_w, *common, grad_w.numel(),
            K=geo.K, STRIDE=geo.stride, BLOCK=cfg.block_p, USE_INT64=use_int64, num_warps=cfg.num_warps,
        )

    _launch_tuned("triton-simple", "bwd_input", key, SIMPLE_CONFIGS, launch_input, interpreted, geo.Cg)
    _launch_tuned("triton-simple", "bwd_kernel", key, SIMPLE_CONFIGS, launch_kernel, interpreted, geo.Cg)
    return grad_x, grad_w


# --------------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------------


def _requirements() -> list[str]:
    return [_TRITON_IMPORT_ERROR] if _TRITON_IMPORT_ERROR else []


def _case_reasons(case: Case) -> list[str]:
    reasons = []
    if case.device == "cpu" and not interpreting():
        reasons.append(CPU_NEEDS_INTERPRETER)
    if case.dtype == "float64":
        reasons.append(FLOAT64_UNSUPPORTED)
    if case.K > MAX_KERNEL_SIZE:
        reasons.append(
            f"K={case.K} exceeds the Triton kernels' maximum of {MAX_KERNEL_SIZE}; use variant='eager' or 'unfold'"
        )
    return reasons


def _info(variant: str, configs_used: tuple) -> Callable[[Case], dict]:
    def info(case: Case) -> dict:
        """The block configuration each kernel ran with for this case (after it ran at least once)."""
        key = _case_key(case)
        facts: dict = {"triton_version": getattr(triton, "__version__", None), "layout": "NCHW"}
        if case.channels_last:
            facts["layout"] = "channels_last input copied to NCHW (.contiguous()) before the kernels"
        for kernel in ("fwd", "bwd_input", "bwd_kernel"):
            slot = (variant, kernel, key)
            cfg = _TUNED.get(slot)
            if cfg is None:
                facts[f"config_{kernel}"] = "not launched yet"
                continue
            tiled = variant == "triton"
            facts[f"config_{kernel}"] = cfg.label(case.C // case.G if tiled else None)
            facts[f"config_{kernel}_chosen_by"] = _TUNED_HOW[slot]
        facts["configs_tried"] = [c.label() for c in configs_used]
        return facts

    return info


VARIANTS = (
    involution_variant(
        "triton", involution_triton, involution_triton_backward,
        devices=("cuda", "cpu"), dtypes=SUPPORTED_DTYPES,
        description="Triton kernels: per-pixel kernel tile reused across the group's channels, grad-input gather, "
                    "grad-kernel register reduction; autotuned (CPU only under TRITON_INTERPRET=1)",
        requirements=_requirements, case_reasons=_case_reasons, info=_info("triton", TILED_CONFIGS),
    ),
    involution_variant(
        "triton-simple", involution_triton_simple, involution_triton_simple_backward,
        devices=("cuda", "cpu"), dtypes=SUPPORTED_DTYPES,
        description="naive Triton kernels: one lane per output element, no kernel reuse across channels "
                    "(the baseline for the tiled `triton` kernels)",
        requirements=_requirements, case_reasons=_case_reasons, info=_info("triton-simple", SIMPLE_CONFIGS),
    ),
)
