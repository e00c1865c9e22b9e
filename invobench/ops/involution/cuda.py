"""CUDA C++ involution kernels (`csrc/involution_cuda.cu`), compiled at run time with NVRTC.

Registers two variants of the apply (spec §1), forward and backward:

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

import functools
import hashlib
import logging
import os
import re
import shutil
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch

from invobench.ops.involution import register_involution_variant
from invobench.registry import Case
from invobench.shapes import out_size

log = logging.getLogger(__name__)

KERNEL_SOURCE = Path(__file__).parent / "csrc" / "involution_cuda.cu"

#: torch dtype name -> the C++ type the kernels are instantiated with (INVOLUTION_SCALAR)
SCALAR_TYPES = {"float32": "float", "float16": "__half", "bfloat16": "__nv_bfloat16", "float64": "double"}
DTYPES = ("float32", "bfloat16", "float16", "float64")
#: K is a template parameter: every odd K up to this compiles
CUDA_MAX_KERNEL_SIZE = 11

# Mirrors of the constants of involution_cuda.cu that size a launch (the harness test checks them).
OUTPUTS_PER_THREAD = 4          # OUTPUTS_PER_THREAD: pixels along W per thread, tiled fwd and grad-input
STAGE_LOAD_BYTES = 16           # STAGE_LOAD_BYTES: width of one staging load
CHANNEL_CHUNK = {"float64": 4}  # Chunk<T>: channels staged per pass; 8 for every other dtype
SIMPLE_BLOCK = 256              # SIMPLE_THREADS: threads per block of the simple kernels
TILED_THREADS = 128             # TILED_THREADS: most threads per tiled fwd/grad-input block (2× for grad-kernel)
DEFAULT_SHARED_BYTES = 48 * 1024  # what every launch may use without opting in

_ENTRY_POINTS = (
    "involution_fwd_simple", "involution_bwd_input_simple", "involution_bwd_kernel_simple",
    "involution_fwd_tiled", "involution_fwd_tiled_unit", "involution_bwd_input_tiled",
    "involution_bwd_input_tiled_unit", "involution_bwd_kernel_tiled", "involution_bwd_kernel_tiled_unit",
)


class NvrtcCompileError(RuntimeError):
    """NVRTC rejected involution_cuda.cu; the message carries the log and the source lines it names."""


# ---------------------------------------------------------------------------------------------
# Environment: CuPy, NVRTC, CUDA headers
# ---------------------------------------------------------------------------------------------

@functools.cache
def _cupy_reason() -> Optional[str]:
    try:
        import cupy  # noqa: F401
    except ImportError as exc:
        return f"CuPy is not installed ({exc}); it provides NVRTC and the module loader: pip install 'invobench[cuda]'"
    except Exception as exc:  # CuPy raises other errors when its CUDA libraries are broken
        return f"CuPy failed to import ({type(exc).__name__}: {exc}); reinstall the cupy-cuda13x wheel"
    return None


@functools.cache
def _nvrtc_reason() -> Optional[str]:
    try:
        from cupy.cuda import nvrtc

        nvrtc.getVersion()
    except Exception as exc:
        return (f"the NVRTC library could not be loaded ({type(exc).__name__}: {exc}); install a CUDA 13 toolkit "
                "or `pip install nvidia-cuda-nvrtc`")
    return None


@functools.cache
def cuda_include_dir() -> Optional[str]:
    """A directory holding cuda_fp16.h and cuda_bf16.h, which NVRTC needs and does not find on its own.

    Looked up in $CUDA_PATH / $CUDA_HOME, then with cuda.pathfinder (a CuPy dependency that also
    finds the headers of the nvidia-cuda-runtime wheel and of conda), then beside nvcc, then /usr/local/cuda.
    """
    candidates = [Path(os.environ[v]) / "include" for v in ("CUDA_PATH", "CUDA_HOME") if os.environ.get(v)]
    try:
        from cuda import pathfinder

        found = pathfinder.find_nvidia_header_directory("cudart")
        if found:
            candidates.append(Path(found))
    except Exception:  # pathfinder missing or finding nothing: the other candidates remain
        pass
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(Path(nvcc).resolve().parent.parent / "include")
    candidates.append(Path("/usr/local/cuda/include"))
    for directory in candidates:
        if (directory / "cuda_fp16.h").is_file() and (directory / "cuda_bf16.h").is_file():
            return str(directory)
    return None


@functools.cache
def _cupy_device_reason() -> Optional[str]:
    """CuPy's CUDA runtime must reach the GPU torch sees (a driver too old for the wheel's CUDA fails here)."""
    if not torch.cuda.is_available():
        return None  # the registry reports the missing device
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return (f"CuPy cannot use the GPU ({type(exc).__name__}: {exc}); install the cupy wheel that matches the "
                "driver's CUDA version (cupy-cuda13x needs a CUDA 13 driver, cupy-cuda12x for CUDA 12)")
    return None


def requirements() -> list[str]:
    """Why the CUDA variants can't run on this machine, device aside (the registry checks the device)."""
    reason = _cupy_reason()
    if reason:
        return [reason]
    reasons = []
    for reason in (_nvrtc_reason(), _cupy_device_reason()):
        if reason:
            reasons.append(reason)
    if cuda_include_dir() is None:
        reasons.append("the CUDA headers cuda_fp16.h/cuda_bf16.h were not found; set CUDA_PATH to a CUDA toolkit "
                       "or `pip install nvidia-cuda-runtime`")
    return reasons


def case_reasons(case: Case) -> list[str]:
    """Case limits of the CUDA kernels beyond the shared involution ones."""
    if case.K > CUDA_MAX_KERNEL_SIZE:
        return [f"K={case.K} exceeds the CUDA kernels' largest kernel size {CUDA_MAX_KERNEL_SIZE} "
                "(K is compiled in); use the triton or unfold variant"]
    return []


# ---------------------------------------------------------------------------------------------
# Compilation (NVRTC) and the disk cache
# ---------------------------------------------------------------------------------------------

def cuda_cache_dir() -> Path:
    """Where compiled modules live: $INVOBENCH_CUDA_CACHE, else $XDG_CACHE_HOME (or ~/.cache)/invobench/cuda."""
    if os.environ.get("INVOBENCH_CUDA_CACHE"):
        return Path(os.environ["INVOBENCH_CUDA_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "invobench" / "cuda"


def nvrtc_options(dtype: str, kernel_size: int, target: str, include_dir: Optional[str]) -> list[str]:
    """NVRTC options of the module for (dtype, K); target is `sm_90` (cubin) or `compute_90` (PTX)."""
    options = ["-std=c++17", f"-arch={target}", "-lineinfo",
               f"-DINVOLUTION_SCALAR={SCALAR_TYPES[dtype]}", f"-DINVOLUTION_K={kernel_size}"]
    if include_dir:
        options.append(f"-I{include_dir}")
    return options


def format_compile_error(log_text: str, source: str, what: str) -> str:
    """The NVRTC log followed by each source line it reports an error on, and what to do."""
    lines = source.splitlines()
    named = []
    for match in re.finditer(r"\((\d+)\): (?:catastrophic )?error", log_text):
        number = int(match.group(1))
        if number not in named:
            named.append(number)
    shown = "\n".join(f"  {KERNEL_SOURCE.name}:{n}: {lines[n - 1].strip() if 0 < n <= len(lines) else '<beyond end>'}"
                      for n in named[:8])
    hint = ("cuda_fp16.h is missing: set CUDA_PATH to a CUDA toolkit or `pip install nvidia-cuda-runtime`"
            if "cuda_fp16.h" in log_text or "cuda_bf16.h" in log_text else
            f"fix {KERNEL_SOURCE} at the line(s) above (the test tier compiles it with nvcc: tests/test_cuda_kernels.py)")
    return (f"NVRTC could not compile {KERNEL_SOURCE.name} for {what}.\n"
            f"Source line(s) named in the log:\n{shown or '  (none)'}\nFix: {hint}\n--- NVRTC log ---\n{log_text.strip()}")


def _nvrtc_target(arch: int) -> tuple[str, str]:
    """('cubin', 'sm_XY') for an architecture NVRTC knows, else PTX of the newest one it knows (the driver JITs it)."""
    from cupy.cuda import nvrtc

    supported = sorted(nvrtc.getSupportedArchs())
    if arch in supported:
        return "cubin", f"sm_{arch}"
    if arch > supported[-1]:
        return "ptx", f"compute_{supported[-1]}"
    raise RuntimeError(f"GPU architecture sm_{arch} is older than any this NVRTC supports "
                       f"(sm_{supported[0]} and newer); the CUDA variants need a newer GPU or an older CUDA")


def compile_module(dtype: str, kernel_size: int, arch: int, *, source: Optional[str] = None,
                   cache_dir: Optional[Path] = None) -> Path:
    """Compile the module for (dtype, K, sm_<arch>) with NVRTC, once: the result is cached on disk.

    Needs CuPy and NVRTC, not a GPU. Returns the path of the cubin (or PTX, for an architecture newer
    than NVRTC knows). Raises NvrtcCompileError with the offending source lines on a compile error.
    """
    if dtype not in SCALAR_TYPES:
        raise ValueError(f"dtype={dtype} is not supported by the CUDA kernels (supported: {', '.join(SCALAR_TYPES)})")
    check_kernel_size(kernel_size)
    for reason in (_cupy_reason(), _nvrtc_reason()):
        if reason:
            raise RuntimeError(f"cannot compile the CUDA involution kernels: {reason}")
    from cupy.cuda import nvrtc

    source = KERNEL_SOURCE.read_text() if source is None else source
    kind, target = _nvrtc_target(arch)
    options = nvrtc_options(dtype, kernel_size, target, cuda_include_dir())
    version = ".".join(map(str, nvrtc.getVersion()))
    key = hashlib.sha256("\0".join([source, *options, version]).encode()).hexdigest()[:16]
    directory = cache_dir or cuda_cache_dir()
    path = directory / f"involution_{dtype}_k{kernel_size}_{target}_{key}.{kind}"
    if path.is_file():
        return path
    what = f"{dtype} K={kernel_size} {target} (NVRTC {version})"
    log.info("compiling %s for %s", KERNEL_SOURCE.name, what)
    program = nvrtc.createProgram(source, KERNEL_SOURCE.name, [], [])
    try:
        try:
            nvrtc.compileProgram(program, options)
        except nvrtc.NVRTCError:
            raise NvrtcCompileError(format_compile_error(nvrtc.getProgramLog(program), source, what)) from None
        binary = nvrtc.getCUBIN(program) if kind == "cubin" else nvrtc.getPTX(program)
    finally:
        nvrtc.destroyProgram(program)
    directory.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    partial.write_bytes(binary)
    os.replace(partial, path)  # atomic: concurrent processes never load a half-written module
    return path


def check_kernel_size(kernel_size: int) -> None:
    if kernel_size % 2 == 0 or not 1 <= kernel_size <= CUDA_MAX_KERNEL_SIZE:
        raise ValueError(f"kernel_size={kernel_size} is not supported by the CUDA kernels "
                         f"(odd K from 1 to {CUDA_MAX_KERNEL_SIZE}; larger K: use variant='triton' or 'unfold')")


_FUNCTIONS: dict[tuple[str, int, int, str], object] = {}
_FUNCTIONS_LOCK = threading.Lock()


def _function(dtype: str, kernel_size: int, device_index: int, name: str):
    """The CuPy RawKernel `name` of the (dtype, K) module on a device, compiling/loading the module on first use."""
    key = (dtype, kernel_size, device_index, name)
    with _FUNCTIONS_LOCK:
        if key not in _FUNCTIONS:
            import cupy

            major, minor = torch.cuda.get_device_capability(device_index)
            path = compile_module(dtype, kernel_size, major * 10 + minor)
            with cupy.cuda.Device(device_index):
                module = cupy.RawModule(path=str(path))
                for entry in _ENTRY_POINTS:
                    _FUNCTIONS[(dtype, kernel_size, device_index, entry)] = module.get_function(entry)
        return _FUNCTIONS[key]


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


register_involution_variant(
    "cuda", involution_cuda, involution_cuda_backward, devices=("cuda",), dtypes=DTYPES,
    description="CUDA C++ (NVRTC): shared-memory tile of x with halo, per-pixel kernel reused across the group's channels",
    requirements=requirements, case_reasons=case_reasons, info=lambda case: launch_info("tiled", case),
)
register_involution_variant(
    "cuda-simple", involution_cuda_simple, involution_cuda_simple_backward, devices=("cuda",), dtypes=DTYPES,
    description="CUDA C++ (NVRTC): one thread per output element, no reuse (the paper's CuPy kernel design)",
    requirements=requirements, case_reasons=case_reasons, info=lambda case: launch_info("simple", case),
)

__all__ = [
    "involution_cuda", "involution_cuda_backward", "involution_cuda_simple", "involution_cuda_simple_backward",
    "compile_module", "plan", "plan_tiled", "tiled_shared_bytes", "requirements", "NvrtcCompileError",
]
