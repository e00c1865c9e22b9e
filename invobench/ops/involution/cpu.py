"""The `cpu` involution variant: a C++/OpenMP kernel (csrc/involution_cpu.cpp), compiled at first use.

Its two ops, `invobench::involution_cpu` and `_backward`, are defined here (schemas, fake kernels,
FLOP formulas) and implemented in C++ (csrc/involution_cpu_ops.cpp: the CPU kernels and the
forward's autograd), so a call does not pass through Python between the dispatcher and the kernel.
The extension is built by torch.utils.cpp_extension the first time the variant runs and cached in
torch's extensions directory (`$TORCH_EXTENSIONS_DIR`, default ~/.cache/torch_extensions), under a
name that hashes the sources, the compiler flags, the compiler, torch's version and this CPU's
feature flags: editing the kernel rebuilds it, and a home directory shared between machines with
different CPUs never loads a `-march=native` build on a CPU that lacks its instructions.
Importing this module needs no compiler; a missing one makes the variant unavailable with a reason.
Inputs that are not NCHW-contiguous (channels_last, slices) are copied with `.contiguous()` first.
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import sys
from pathlib import Path

import torch

from invobench.core import Case, check_involution_args
from invobench.ops.involution.custom_op import define_native_involution_op
from invobench.ops.involution.variant import involution_variant

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("csrc") / "involution_cpu.cpp"  # the C ABI; the kernels are its headers, csrc/cpu/*.h
OPS_SOURCE = SOURCE.with_name("involution_cpu_ops.cpp")  # their dispatcher and autograd kernels
DTYPES = ("float64", "float32", "bfloat16", "float16")


def _arch_flags() -> list[str]:
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i686"):
        return ["-march=native"]
    if machine in ("aarch64", "arm64"):
        return ["-mcpu=native"]
    return []


_FORWARD_OP, _BACKWARD_OP = define_native_involution_op("cpu")

#: -ffp-contract=fast: torch builds with -std=c++17 (ISO mode), where GCC would otherwise not fuse a·b+c into FMA;
#: the namespace the C++ kernels register into is the one the schemas were defined in ("invobench", or
#: "invobench_base" for the older checkout of an A/B run)
CFLAGS = ["-O3", "-fopenmp", "-ffp-contract=fast", *_arch_flags(), f"-DINVOBENCH_OPS_NAMESPACE={_FORWARD_OP.namespace}"]
LDFLAGS = ["-fopenmp"]


def _compiler() -> str:
    return os.environ.get("CXX", "c++")  # what torch.utils.cpp_extension invokes


def _cpu_features() -> str:
    """This CPU's feature flags (what -march=native compiles for)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()}"


def extension_name() -> str:
    """`invobench_involution_cpu_<hash>` of sources (every header under csrc/ too, by name and content),
    flags, compiler, torch version and CPU features."""
    digest = hashlib.sha256()
    csrc = SOURCE.parent
    headers = [h.relative_to(csrc).as_posix().encode() + b"\0" + h.read_bytes() for h in sorted(csrc.rglob("*.h"))]
    for part in (SOURCE.read_bytes(), OPS_SOURCE.read_bytes(), *headers, " ".join(CFLAGS + LDFLAGS).encode(),
                 _compiler().encode(), torch.__version__.encode(), _cpu_features().encode()):
        digest.update(part)
        digest.update(b"\0")
    return f"invobench_involution_cpu_{digest.hexdigest()[:16]}"


def _path_with_ninja() -> str:
    """PATH, plus this interpreter's bin directory when ninja is there (a venv that isn't activated)."""
    path = os.environ.get("PATH", "")
    venv_bin = Path(sys.executable).parent
    if shutil.which("ninja", path=path) is None and (venv_bin / "ninja").exists():
        path = os.pathsep.join([str(venv_bin), path])
    return path


def requirements() -> list[str]:
    """Why the extension can't be built here (checked without building it)."""
    if _BUILD["library"] is not None:
        # Built and loaded: nothing left to check. `involution()` asks on every call, and the two
        # PATH searches below cost as much as the kernel itself at a batch-1 RedNet shape.
        return []
    reasons = []
    if shutil.which(_compiler()) is None:
        reasons.append(f"no C++ compiler found ({_compiler()!r} is not on PATH; install g++ or set CXX)")
    if shutil.which("ninja", path=_path_with_ninja()) is None:
        reasons.append("ninja not found on PATH (torch.utils.cpp_extension needs it; pip install ninja)")
    if _build_error() is not None:
        reasons.append(f"building the C++ extension failed: {_build_error()}")
    return reasons


_BUILD: dict = {"library": None, "error": None}
_DTYPES = tuple(getattr(torch, name) for name in DTYPES)


def _build_error() -> str | None:
    return _BUILD["error"]


def library() -> ctypes.CDLL:
    """The compiled kernel library (built on first call, then loaded from the cache)."""
    if _BUILD["library"] is not None:
        return _BUILD["library"]
    if _BUILD["error"] is not None:
        raise RuntimeError(f"involution.cpu is unavailable: building the C++ extension failed: {_BUILD['error']}")
    from torch.utils import cpp_extension

    name = extension_name()
    build_dir = Path(cpp_extension._get_build_directory(name, verbose=False))
    if (build_dir / f"{name}.so").exists():
        log.info("loading %s from %s", name, build_dir)
    else:  # a sweep would otherwise sit silent for the length of the build
        log.warning("compiling the C++ extension of involution.cpu (first use with these sources, flags and "
                    "CPU: about 20-30 s; cached in %s)", build_dir)
    saved_path = os.environ.get("PATH")
    os.environ["PATH"] = _path_with_ninja()  # torch runs `ninja` from PATH
    try:
        # is_python_module=False: a shared library without pybind11; loading it registers the ops' kernels
        path = cpp_extension.load(
            name=name, sources=[str(SOURCE), str(OPS_SOURCE)], extra_cflags=CFLAGS, extra_ldflags=LDFLAGS,
            is_python_module=False,
        )
        torch.ops.load_library(path)
        lib = ctypes.CDLL(path)  # the same loaded library, for build_info()
    except Exception as exc:  # compiler errors surface as RuntimeError/CalledProcessError; keep the first line
        _BUILD["error"] = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise
    finally:
        if saved_path is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = saved_path
    lib.invobench_involution_build_info.restype = ctypes.c_char_p
    _BUILD["library"] = lib
    return lib


def build_info() -> str:
    """SIMD width and blocking of the loaded build, e.g. 'isa=avx2 vector_bytes=32 block=8 pair_block=6 openmp=201511'."""
    return library().invobench_involution_build_info().decode()


def _check(x: torch.Tensor, kernel: torch.Tensor, kernel_size: int, stride: int, dilation: int) -> None:
    check_involution_args(x, kernel, kernel_size, stride, dilation)
    if x.device.type != "cpu":
        raise ValueError(f"x is on {x.device}; involution.cpu runs on CPU tensors only")
    if x.dtype not in _DTYPES:
        raise TypeError(f"x.dtype={x.dtype} is not supported by involution.cpu (supports: {', '.join(DTYPES)})")


@torch.compiler.disable
def _load() -> None:
    library()


def apply(x: torch.Tensor, kernel: torch.Tensor, kernel_size: int, stride: int, dilation: int) -> torch.Tensor:
    """The `op` of the `cpu` variant: the forward op, differentiable, after the first-use build. It checks its
    arguments in C++ only (`involution()` and `involution_cpu()` check them first, in Python)."""
    if _BUILD["library"] is None:
        _load()
    return _FORWARD_OP(x, kernel, kernel_size, stride, dilation)


def involution_cpu(x: torch.Tensor, kernel: torch.Tensor, kernel_size: int, stride: int = 1, dilation: int = 1) -> torch.Tensor:
    """Spec §1 forward on the C++ kernel; non-NCHW-contiguous inputs are copied first, output is NCHW-contiguous."""
    _check(x, kernel, kernel_size, stride, dilation)
    return apply(x, kernel, kernel_size, stride, dilation)


def involution_cpu_backward(
    grad_out: torch.Tensor, x: torch.Tensor, kernel: torch.Tensor, kernel_size: int, stride: int = 1, dilation: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """(grad_x, grad_kernel) of spec §1 on the C++ kernel, both contiguous."""
    _check(x, kernel, kernel_size, stride, dilation)
    B, C, _, _ = x.shape
    expected = (B, C, kernel.shape[3], kernel.shape[4])
    if tuple(grad_out.shape) != expected or grad_out.dtype != x.dtype:
        raise ValueError(f"grad_out has shape {tuple(grad_out.shape)} and dtype {grad_out.dtype}; expected {expected} {x.dtype}")
    if _BUILD["library"] is None:
        _load()
    return _BACKWARD_OP(grad_out, x, kernel, kernel_size, stride, dilation)


def _info(case: Case) -> dict:
    info = {"threads": torch.get_num_threads(), "extension": extension_name(), "cflags": " ".join(CFLAGS)}
    if _BUILD["library"] is not None:
        info["build"] = build_info()
    return info


VARIANTS = (involution_variant(
    "cpu", apply=apply, devices=("cpu",), dtypes=DTYPES,
    description="C++/OpenMP kernel: SIMD along W, each kernel value reused across its group's channels",
    requirements=requirements, info=_info,
),)
