"""ptxas figures of the CUDA involution kernels (registers, spills, shared memory), without a GPU.

`static_profiles(archs, dtypes)` compiles `csrc/involution_cuda.cu` with the machine's nvcc,
`nvcc -cubin -arch=sm_XX -Xptxas -v`, once per (dtype, K, arch) — the same instantiation the
NVRTC loader builds — and reads ptxas's report of every entry point. `invobench profile --static`
shows them beside Triton's (`invobench.ops.involution.static_profile.collect`).

Shared memory: ptxas reports static shared memory only, and the tiled kernels use a dynamic buffer
sized at launch. For them `shared_bytes` adds the dynamic bytes of the launch the loader plans at a
reference shape (56×56, stride 1, dilation 1, on an H100-class device), named in `config`.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

from invobench.ops.involution.cuda import CUDA_MAX_KERNEL_SIZE, KERNEL_SOURCE, SCALAR_TYPES, plan
from invobench.ops.involution.ptxas import StaticKernelProfile, parse_ptxas_verbose

#: K compiled by default (the paper's kernel size); the tests add 1, 3, 5
DEFAULT_KERNEL_SIZES = (7,)
#: reference launch for the dynamic shared memory of the tiled kernels
REFERENCE_SHAPE = dict(B=32, C=256, G=16, H=56, W=56, stride=1, dilation=1)
REFERENCE_SHARED_BYTES = 227 * 1024

def find_nvcc() -> Optional[str]:
    """nvcc on PATH, else under $CUDA_PATH / $CUDA_HOME / /usr/local/cuda."""
    found = shutil.which("nvcc")
    if found:
        return found
    for root in [os.environ.get("CUDA_PATH"), os.environ.get("CUDA_HOME"), "/usr/local/cuda"]:
        if root and (Path(root) / "bin" / "nvcc").is_file():
            return str(Path(root) / "bin" / "nvcc")
    return None


def nvcc_command(nvcc: str, dtype: str, kernel_size: int, arch: int, output: Path) -> list[str]:
    """The nvcc line whose ptxas report is parsed; same -D and -std as the NVRTC loader."""
    return [nvcc, "-cubin", f"-arch=sm_{arch}", "-Xptxas", "-v", "-std=c++17", "-lineinfo",
            f"-DINVOLUTION_SCALAR={SCALAR_TYPES[dtype]}", f"-DINVOLUTION_K={kernel_size}",
            str(KERNEL_SOURCE), "-o", str(output)]


def ptxas_report(dtype: str, kernel_size: int, arch: int, nvcc: Optional[str] = None) -> str:
    """Compile one (dtype, K, arch) instantiation to a throw-away cubin and return ptxas's -v report."""
    nvcc = nvcc or find_nvcc()
    if nvcc is None:
        raise RuntimeError("nvcc not found (PATH, $CUDA_PATH, /usr/local/cuda); install a CUDA toolkit")
    with tempfile.TemporaryDirectory(prefix="invobench-ptxas-") as tmp:
        cmd = nvcc_command(nvcc, dtype, kernel_size, arch, Path(tmp) / "involution.cubin")
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
    if done.returncode != 0:
        raise RuntimeError(f"nvcc failed ({done.returncode}) for {dtype} K={kernel_size} sm_{arch}: "
                           f"{' '.join(cmd)}\n{done.stderr.strip()}")
    return done.stdout + done.stderr


def split_by_function(report: str) -> dict[str, str]:
    """ptxas -v report -> {entry function: the lines that describe it}."""
    sections: dict[str, str] = {}
    pieces = re.split(r"ptxas info\s*: Compiling entry function '([^']+)'", report)
    for name, body in zip(pieces[1::2], pieces[2::2]):
        sections[name] = body
    return sections


def _reference_launch(name: str, dtype: str, kernel_size: int):
    """The loader's launch of a tiled entry point at REFERENCE_SHAPE (None for the simple kernels)."""
    match = re.fullmatch(r"involution_(fwd|bwd_input|bwd_kernel)_tiled(_unit)?", name)
    if not match:
        return None
    shape = REFERENCE_SHAPE
    return plan("tiled", match.group(1), dtype, shape["B"], shape["C"], shape["G"], shape["H"], shape["W"],
                kernel_size, shape["stride"], shape["dilation"], REFERENCE_SHARED_BYTES)


def profiles_from_report(report: str, dtype: str, kernel_size: int, arch: int) -> list[StaticKernelProfile]:
    """One StaticKernelProfile per entry function in a ptxas -v report."""
    profiles = []
    for name, body in sorted(split_by_function(report).items()):
        figures = parse_ptxas_verbose(body)
        config = f"K={kernel_size}"
        shared = figures["shared_bytes"]
        launch = _reference_launch(name, dtype, kernel_size)
        if launch is not None and "_tiled" in launch.kernel:  # the general and _unit kernels share the tile
            bx, by, _ = launch.block
            config += f" block={bx}x{by} +{launch.shared_bytes}B dynamic smem at 56x56"
            shared = (shared or 0) + launch.shared_bytes
        elif name.endswith("_simple"):
            config += " block=256"
        profiles.append(StaticKernelProfile(
            backend="cuda", kernel=name.removeprefix("involution_"), config=config, arch=f"sm_{arch}", dtype=dtype,
            registers=figures["registers"], shared_bytes=shared, spill_store_bytes=figures["spill_store_bytes"],
            spill_load_bytes=figures["spill_load_bytes"], stack_bytes=figures["stack_bytes"],
        ))
    return profiles


def static_profiles(archs: list[int], dtypes: list[str],
                    kernel_sizes: tuple[int, ...] = DEFAULT_KERNEL_SIZES) -> list[StaticKernelProfile]:
    """ptxas figures of every CUDA involution kernel for each (arch, dtype, K); compiles in parallel.

    A (dtype, K, arch) that cannot be compiled yields one profile carrying the error, so the others still show.
    """
    nvcc = find_nvcc()
    if nvcc is None:
        raise RuntimeError("nvcc not found (PATH, $CUDA_PATH, /usr/local/cuda); install a CUDA toolkit")
    jobs = [(dtype, k, arch) for arch in archs for dtype in dtypes for k in kernel_sizes]

    def one(job: tuple[str, int, int]) -> list[StaticKernelProfile]:
        dtype, k, arch = job
        problem = None
        if dtype not in SCALAR_TYPES:
            problem = f"dtype {dtype} not supported by the CUDA kernels (supported: {', '.join(SCALAR_TYPES)})"
        elif k % 2 == 0 or not 1 <= k <= CUDA_MAX_KERNEL_SIZE:
            problem = f"K={k} not supported (odd K up to {CUDA_MAX_KERNEL_SIZE})"
        if problem is None:
            try:
                return profiles_from_report(ptxas_report(dtype, k, arch, nvcc), dtype, k, arch)
            except RuntimeError as exc:
                problem = str(exc)
        return [StaticKernelProfile("cuda", "*", f"K={k}", f"sm_{arch}", dtype, None, None, None, None, error=problem)]

    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [profile for result in pool.map(one, jobs) for profile in result]
