"""CUDA C++ involution kernels (`csrc/involution_cuda.cu`), compiled at run time with NVRTC (`cuda_nvrtc.py`).

Declares two variants of the apply (spec §1), forward and backward:

- `cuda`: the tiled design — a block stages a tile of x (of gout, for grad-input) with its halo in
  shared memory with 16-byte loads, each thread keeps its pixels' per-pixel kernel in registers and
  reuses it across the group's channels. Falls back to the simple kernel for a launch whose tile
  does not fit the device's shared memory (recorded in the variant's `info`).
- `cuda-simple`: one thread per element of the result, no reuse (the paper's CuPy design).

Loading: CuPy's NVRTC binding compiles one module per (dtype, K, GPU architecture) to a cubin,
cached on disk (`cuda_cache_dir()`, keyed by a hash of the source, the options and the NVRTC
version); CuPy's RawModule loads it, and kernels launch on torch's current stream with the tensors'
data pointers, so contiguous inputs are not copied. CuPy and NVRTC are imported only when a kernel
is compiled or launched: without them (or without a GPU) the variants are listed as unavailable
with the reason, and this module still imports.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Optional

import torch

from invobench.core import Case, out_size
from invobench.ops.involution.cuda_nvrtc import (  # noqa: F401  (re-exported: the tests and cuda_static use them)
    _ENTRY_POINTS, CUDA_MAX_KERNEL_SIZE, DTYPES, KERNEL_SOURCE, SCALAR_TYPES, NvrtcCompileError, _cupy_reason,
    _function, _nvrtc_reason, _nvrtc_target, check_kernel_size, compile_module, cuda_cache_dir, cuda_include_dir,
    format_compile_error, nvrtc_options, requirements,
)
from invobench.ops.involution.variant import involution_variant

log = logging.getLogger(__name__)

# Mirrors of the constants of involution_cuda.cu that size a launch (the harness test checks them).
OUTPUTS_PER_THREAD = 4          # OUTPUTS_PER_THREAD: pixels along W per thread, tiled fwd and grad-input
STAGE_LOAD_BYTES = 16           # STAGE_LOAD_BYTES: width of one staging load
CHANNEL_CHUNK = {"float64": 4}  # Chunk<T>: channels staged per pass; 8 for every other dtype
SIMPLE_BLOCK = 256              # SIMPLE_THREADS: threads per block of the simple kernels
TILED_THREADS = 128             # TILED_THREADS: most threads per tiled fwd/grad-input block (2× for grad-kernel)
DEFAULT_SHARED_BYTES = 48 * 1024  # what every launch may use without opting in


def case_reasons(case: Case) -> list[str]:
    """Case limits of the CUDA kernels beyond the shared involution ones."""
    if case.K > CUDA_MAX_KERNEL_SIZE:
        return [f"K={case.K} exceeds the CUDA kernels' largest kernel size {CUDA_MAX_KERNEL_SIZE} "
                "(K is compiled in); use the triton or unfold variant"]
    return []


# ---------------------------------------------------------------------------------------------
# Launch planning (pure: no GPU needed, unit-tested against the kernel source via the harness)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Launch:
    kernel: str
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    shared_bytes: int

    def as_dict(self) -> dict:
        return asdict(self)


def _acc_bytes(dtype: str) -> int:
    return 8 if dtype == "float64" else 4


def _itemsize(dtype: str) -> int:
    return {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}[dtype]


def channel_chunk(dtype: str) -> int:
    return CHANNEL_CHUNK.get(dtype, 8)


def tiled_shared_bytes(dtype: str, kernel_size: int, stride: int, dilation: int, tile_h: int, tile_w: int,
                       kind: str) -> int:
    """Dynamic shared memory of a tiled launch: chunk · rows · pitch accumulator values.

    Mirrors `tiled_shared_elements` of involution_cuda.cu. kind "gather" (forward, grad-kernel: x at
    row·s − p + i·d) or "scatter" (grad-input: gout at (y + p − i·d)/s).
    """
    reach = (kernel_size - 1) * dilation
    if kind == "gather":
        rows, span = (tile_h - 1) * stride + reach + 1, (tile_w - 1) * stride + reach + 1
    elif kind == "scatter":
        rows, span = (tile_h - 1 + reach) // stride + 1, (tile_w - 1 + reach) // stride + 1
    else:
        raise ValueError(f"kind={kind!r} is not 'gather' or 'scatter'")
    load = STAGE_LOAD_BYTES // _itemsize(dtype)
    pitch = -(-(load - 1 + span) // load) * load + 1
    return channel_chunk(dtype) * rows * pitch * _acc_bytes(dtype)


def _next_pow2(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


def plan_simple(kernel: str, elements: int) -> Launch:
    """A 1-D grid-stride launch of a simple kernel."""
    blocks = max(1, min(-(-elements // SIMPLE_BLOCK), 2**31 - 1))
    return Launch(kernel, (blocks, 1, 1), (SIMPLE_BLOCK, 1, 1), 0)


def plan_tiled(op: str, dtype: str, B: int, G: int, H: int, W: int, kernel_size: int, stride: int, dilation: int,
               max_shared_bytes: int) -> Optional[Launch]:
    """The tiled launch of `op` ("fwd", "bwd_input", "bwd_kernel"), or None when no tile fits (use the simple kernel).

    The block is (tx, ty) threads over a tile of owned pixels: ty rows × tx·V columns (V = 4 for fwd and
    grad-input, 1 for grad-kernel), 128 threads (256 for grad-kernel, whose threads own one pixel),
    shrunk to the image and halved (down to a warp) while its shared tile exceeds 48 KiB.
    Grid (tiles, G, B): G and B above 65535 leave it to the simple kernel.
    """
    Ho, Wo = out_size(H, kernel_size, stride, dilation), out_size(W, kernel_size, stride, dilation)
    unit = stride == 1 and dilation == 1
    if op == "fwd":
        owned_h, owned_w, per_thread, threads, kind = Ho, Wo, OUTPUTS_PER_THREAD, TILED_THREADS, "gather"
    elif op == "bwd_input":
        owned_h, owned_w, per_thread, threads, kind = H, W, OUTPUTS_PER_THREAD, TILED_THREADS, "scatter"
    elif op == "bwd_kernel":
        owned_h, owned_w, per_thread, threads, kind = Ho, Wo, 1, 2 * TILED_THREADS, "gather"
    else:
        raise ValueError(f"op={op!r} is not 'fwd', 'bwd_input' or 'bwd_kernel'")
    if G > 65535 or B > 65535:
        return None
    tx = min(8 if per_thread > 1 else 32, _next_pow2(-(-owned_w // per_thread)))
    ty = max(1, min(threads // tx, _next_pow2(owned_h)))

    def shared(tx: int, ty: int) -> int:
        return tiled_shared_bytes(dtype, kernel_size, stride, dilation, ty, tx * per_thread, kind)

    # Past 48 KiB a tile costs occupancy (the kernels are memory-bound and need blocks in flight):
    # shrink towards that, but not below a warp; a halo so wide (large K·d) that a warp's tile still
    # does not fit the device is left to the simple kernel.
    limit = min(max_shared_bytes, DEFAULT_SHARED_BYTES)
    while shared(tx, ty) > limit and tx * ty > 32:
        if ty > 1:
            ty //= 2
        else:
            tx //= 2
    if shared(tx, ty) > max_shared_bytes:
        return None
    tiles = -(-owned_h // ty) * -(-owned_w // (tx * per_thread))
    kernel = f"involution_{op}_tiled" + ("_unit" if unit else "")
    return Launch(kernel, (tiles, G, B), (tx, ty, 1), shared(tx, ty))


def plan(design: str, op: str, dtype: str, B: int, C: int, G: int, H: int, W: int, kernel_size: int, stride: int,
         dilation: int, max_shared_bytes: int = DEFAULT_SHARED_BYTES) -> Launch:
    """The launch `design` ("tiled" or "simple") uses for `op` on these shapes."""
    if design == "tiled":
        launch = plan_tiled(op, dtype, B, G, H, W, kernel_size, stride, dilation, max_shared_bytes)
        if launch is not None:
            return launch
    Ho, Wo = out_size(H, kernel_size, stride, dilation), out_size(W, kernel_size, stride, dilation)
    elements = {"fwd": B * C * Ho * Wo, "bwd_input": B * C * H * W,
                "bwd_kernel": B * G * kernel_size**2 * Ho * Wo}[op]
    return plan_simple(f"involution_{op}_simple", elements)


def _max_shared_bytes(device: Optional[torch.device] = None) -> int:
    """Shared memory a block may opt in to on the device (48 KiB when no device is at hand)."""
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(device if device is not None else torch.cuda.current_device())
        return int(getattr(props, "shared_memory_per_block_optin", DEFAULT_SHARED_BYTES))
    return DEFAULT_SHARED_BYTES


def launch_info(design: str, case: Case) -> dict:
    """The launches of a case (recorded with each result): kernel, grid, block, dynamic shared bytes."""
    if case.dtype not in SCALAR_TYPES or case.K % 2 == 0 or case.K > CUDA_MAX_KERNEL_SIZE:
        return {"design": design}
    max_shared = _max_shared_bytes() if case.device == "cuda" else DEFAULT_SHARED_BYTES
    args = (case.dtype, case.B, case.C, case.G, case.H, case.W, case.K, case.stride, case.dilation, max_shared)
    return {"design": design, "channel_chunk": channel_chunk(case.dtype),
            **{op: plan(design, op, *args).as_dict() for op in ("fwd", "bwd_input", "bwd_kernel")}}


# ---------------------------------------------------------------------------------------------
# Launching
# ---------------------------------------------------------------------------------------------

def _check_inputs(variant: str, kernel_size: int, **tensors: torch.Tensor) -> str:
    """Validate what only the CUDA variants require (K, dtype, device, CuPy/NVRTC); returns the dtype name."""
    check_kernel_size(kernel_size)
    dtype = str(next(iter(tensors.values())).dtype).removeprefix("torch.")
    if dtype not in SCALAR_TYPES:
        raise TypeError(f"involution.{variant}: dtype={dtype} is not supported (supported: {', '.join(DTYPES)})")
    for name, tensor in tensors.items():
        if tensor.device.type != "cuda":
            raise ValueError(f"involution.{variant} runs on CUDA tensors, but {name} is on {tensor.device}; "
                             "move the inputs with .cuda(), or use a CPU variant (variant='eager')")
    reasons = requirements()
    if reasons:
        raise RuntimeError(f"involution.{variant} is unavailable: " + "; ".join(reasons))
    return dtype


def _cupy_stream(cupy, torch_stream: torch.cuda.Stream, index: int):
    """CuPy's handle on a torch stream: the legacy default stream (handle 0, torch's default) is CuPy's
    `Stream.null`; any other goes through the CUDA stream protocol (CuPy ≥ 14), else ExternalStream."""
    if torch_stream.cuda_stream == 0:
        return cupy.cuda.Stream.null
    if hasattr(cupy.cuda.Stream, "from_external"):
        return cupy.cuda.Stream.from_external(torch_stream)
    return cupy.cuda.ExternalStream(torch_stream.cuda_stream, index)


def _launch(launch: Launch, dtype: str, kernel_size: int, device: torch.device, tensors: list[torch.Tensor],
            shape: tuple[int, ...]) -> None:
    """Run one kernel on torch's current stream of `device`; tensors go in as raw pointers (no copies)."""
    import cupy
    import numpy as np

    index = device.index if device.index is not None else torch.cuda.current_device()
    function = _function(dtype, kernel_size, index, launch.kernel)
    with cupy.cuda.Device(index):
        if launch.shared_bytes > DEFAULT_SHARED_BYTES and function.max_dynamic_shared_size_bytes < launch.shared_bytes:
            function.max_dynamic_shared_size_bytes = launch.shared_bytes
        stream = _cupy_stream(cupy, torch.cuda.current_stream(index), index)
        args = tuple(np.uint64(t.data_ptr()) for t in tensors) + tuple(np.int32(v) for v in shape)
        function(launch.grid, launch.block, args, shared_mem=launch.shared_bytes, stream=stream)


def _shape_args(x: torch.Tensor, kernel: torch.Tensor, stride: int, dilation: int) -> tuple[int, ...]:
    B, C, H, W = x.shape
    G, _, Ho, Wo = kernel.shape[1:]
    return (B, C, H, W, G, Ho, Wo, stride, dilation)


def _forward(design: str, variant: str, x: torch.Tensor, kernel: torch.Tensor, kernel_size: int, stride: int,
             dilation: int) -> torch.Tensor:
    dtype = _check_inputs(variant, kernel_size, x=x, kernel=kernel)
    x, kernel = x.contiguous(), kernel.contiguous()  # no-ops for the NCHW inputs of spec §1
    B, C, H, W = x.shape
    out = torch.empty((B, C, *kernel.shape[3:]), dtype=x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    launch = plan(design, "fwd", dtype, B, C, kernel.shape[1], H, W, kernel_size, stride, dilation,
                  _max_shared_bytes(x.device))
    _launch(launch, dtype, kernel_size, x.device, [x, kernel, out], _shape_args(x, kernel, stride, dilation))
    return out


def _backward(design: str, variant: str, grad_out: torch.Tensor, x: torch.Tensor, kernel: torch.Tensor,
              kernel_size: int, stride: int, dilation: int) -> tuple[torch.Tensor, torch.Tensor]:
    dtype = _check_inputs(variant, kernel_size, grad_out=grad_out, x=x, kernel=kernel)
    grad_out, x, kernel = grad_out.contiguous(), x.contiguous(), kernel.contiguous()
    grad_x = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    grad_w = torch.empty(kernel.shape, dtype=kernel.dtype, device=kernel.device)
    if grad_out.numel() == 0:
        return grad_x.zero_(), grad_w.zero_()
    B, C, H, W = x.shape
    G = kernel.shape[1]
    shape = _shape_args(x, kernel, stride, dilation)
    max_shared = _max_shared_bytes(x.device)
    args = (dtype, B, C, G, H, W, kernel_size, stride, dilation, max_shared)
    _launch(plan(design, "bwd_input", *args), dtype, kernel_size, x.device, [grad_out, kernel, grad_x], shape)
    _launch(plan(design, "bwd_kernel", *args), dtype, kernel_size, x.device, [grad_out, x, grad_w], shape)
    return grad_x, grad_w


def involution_cuda(x, kernel, kernel_size, stride=1, dilation=1):
    """Spec §1 forward with the tiled CUDA kernel."""
    return _forward("tiled", "cuda", x, kernel, kernel_size, stride, dilation)


def involution_cuda_backward(grad_out, x, kernel, kernel_size, stride=1, dilation=1):
    """Spec §1 (grad_x, grad_kernel) with the tiled CUDA kernels."""
    return _backward("tiled", "cuda", grad_out, x, kernel, kernel_size, stride, dilation)


def involution_cuda_simple(x, kernel, kernel_size, stride=1, dilation=1):
    """Spec §1 forward, one CUDA thread per output element."""
    return _forward("simple", "cuda-simple", x, kernel, kernel_size, stride, dilation)


def involution_cuda_simple_backward(grad_out, x, kernel, kernel_size, stride=1, dilation=1):
    """Spec §1 (grad_x, grad_kernel), one CUDA thread per element of each gradient."""
    return _backward("simple", "cuda-simple", grad_out, x, kernel, kernel_size, stride, dilation)


VARIANTS = (
    involution_variant(
        "cuda", involution_cuda, involution_cuda_backward, devices=("cuda",), dtypes=DTYPES,
        description="CUDA C++ (NVRTC): shared-memory tile of x with halo, per-pixel kernel reused across the group's channels",
        requirements=requirements, case_reasons=case_reasons, info=lambda case: launch_info("tiled", case),
    ),
    involution_variant(
        "cuda-simple", involution_cuda_simple, involution_cuda_simple_backward, devices=("cuda",), dtypes=DTYPES,
        description="CUDA C++ (NVRTC): one thread per output element, no reuse (the paper's CuPy kernel design)",
        requirements=requirements, case_reasons=case_reasons, info=lambda case: launch_info("simple", case),
    ),
)

__all__ = [
    "involution_cuda", "involution_cuda_backward", "involution_cuda_simple", "involution_cuda_simple_backward",
    "compile_module", "plan", "plan_tiled", "tiled_shared_bytes", "requirements", "NvrtcCompileError",
]
