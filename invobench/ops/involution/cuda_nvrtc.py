"""Compiling and loading the CUDA kernels (`csrc/involution_cuda.cu`) with NVRTC through CuPy.

CuPy's NVRTC binding compiles one module per (dtype, K, GPU architecture) to a cubin, cached on disk
(`cuda_cache_dir()`, keyed by a hash of the source, the options and the NVRTC version); CuPy's RawModule
loads it. CuPy and NVRTC are imported only when a kernel is compiled or launched; `requirements()` says
why they can't be here. The variants and their launches: `cuda.py`.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import shutil
import threading
from pathlib import Path
from typing import Optional

import torch



log = logging.getLogger(__name__)

KERNEL_SOURCE = Path(__file__).parent / "csrc" / "involution_cuda.cu"

#: torch dtype name -> the C++ type the kernels are instantiated with (INVOLUTION_SCALAR)
SCALAR_TYPES = {"float32": "float", "float16": "__half", "bfloat16": "__nv_bfloat16", "float64": "double"}
DTYPES = ("float32", "bfloat16", "float16", "float64")
#: K is a template parameter: every odd K up to this compiles
CUDA_MAX_KERNEL_SIZE = 11

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
            f"fix {KERNEL_SOURCE} at the line(s) above (the test tier compiles it with nvcc: tests/ops/test_cuda_kernels.py)")
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
