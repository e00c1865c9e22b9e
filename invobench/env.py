"""The environment fingerprint recorded with every run: enough to trace a number to a machine and a commit."""
from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Optional

import torch

import invobench

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Set in every benchmark worker unless the user's environment sets them; every variant allocates its
#: outputs, so all of them pay or save alike.
#: - THP_MEM_ALLOC_ENABLE=1 makes torch's CPU allocator ask for transparent huge pages for tensors of
#:   2 MiB and more: without it each large tensor is a fresh mmap that the kernel zero-fills 4 KiB page
#:   by page on first touch, which on the 2-core box cost 35 ms for a 78 MB output, more than the
#:   involution kernel that writes it (docs/cpu.md).
#: - GLIBC_TUNABLES (CPU_HEAP_TUNABLES) keeps large blocks on glibc's heap: by default every block
#:   above 32 MiB is a fresh mmap and is unmapped when freed, so each call's large outputs are
#:   zero-filled pages again even with huge pages (≈ 7 ms for the 79 MB grad of the main shape's
#:   kernel, as much as the bound of the whole backward). With these a repeated call reuses pages that
#:   are already mapped, as a repeated CUDA call reuses the caching allocator's blocks; the worker
#:   returns free heap pages to the OS after each case (memory.release_cpu_heap). Within a case the
#:   heap holds what its variants freed, fragmented: 4.4 GB resident against 3.3 GB at the main
#:   shape's forward with the cpu suite's four variants, which the RSS watchdog sees. The tunables are
#:   glibc's; other C libraries ignore them. Set GLIBC_TUNABLES= (empty) for the system's behaviour.
CPU_HEAP_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=18446744073709551615"
WORKER_ENV_DEFAULTS = {"THP_MEM_ALLOC_ENABLE": "1", "GLIBC_TUNABLES": CPU_HEAP_TUNABLES}
#: environment variables recorded in the fingerprint (as the benchmark workers see them)
#: (GLIBC_TUNABLES and LD_PRELOAD: the allocator's behaviour, e.g. jemalloc or glibc's mmap limits, moves
#: every variant's latency by the cost of its fresh outputs; docs/cpu.md)
RECORDED_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TRITON_INTERPRET", "CUDA_VISIBLE_DEVICES", "THP_MEM_ALLOC_ENABLE",
                "GLIBC_TUNABLES", "LD_PRELOAD", "MALLOC_CONF")


def _version(package: str) -> Optional[str]:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: instruction-set flags of /proc/cpuinfo worth recording: which SIMD kernels a CPU can run
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512vl", "avx512_bf16", "avx512_fp16", "amx_tile",
              "asimd", "sve", "sve2")


def cpu_details(cpuinfo: Path = Path("/proc/cpuinfo"), cache_dir: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> dict:
    """CPU family/model/stepping, SIMD flags and cache sizes (Linux; empty elsewhere).

    "AMD EPYC" alone names Zen 3 and Zen 4 machines alike, whose kernels differ (AVX2 against AVX-512)."""
    out: dict = {}
    try:
        first = cpuinfo.read_text().split("\n\n", 1)[0]
    except OSError:
        return out
    fields = dict(line.split(":", 1) for line in first.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    for key, name in (("cpu family", "family"), ("model", "model_id"), ("stepping", "stepping"), ("CPU part", "part")):
        if key in fields:
            out[name] = fields[key]
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    out["simd"] = [f for f in SIMD_FLAGS if f in flags]
    caches = {}
    for index in sorted(cache_dir.glob("index*")):
        try:
            level, kind, size = ((index / f).read_text().strip() for f in ("level", "type", "size"))
        except OSError:
            continue
        caches[f"L{level}{'d' if kind == 'Data' else 'i' if kind == 'Instruction' else ''}"] = size
    if caches:
        out["caches"] = caches  # as CPU 0 sees them (L3 is usually shared)
    return out


def git_info(root: Path = REPO_ROOT) -> dict:
    """Commit and dirty flag of the source tree invobench runs from (None outside a git checkout)."""

    def run(*args) -> Optional[str]:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def cuda_info() -> dict:
    if not torch.cuda.is_available():
        return {"available": False, "torch_cuda": torch.version.cuda, "devices": []}
    devices = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        devices.append({
            "name": props.name, "capability": f"{props.major}.{props.minor}",
            "memory_bytes": props.total_memory, "multiprocessors": props.multi_processor_count,
        })
    driver = None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        driver = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {"available": True, "torch_cuda": torch.version.cuda, "driver": driver, "devices": devices}


def worker_environment() -> dict[str, str]:
    """The environment of a benchmark worker: this process's, plus WORKER_ENV_DEFAULTS where unset."""
    return {**WORKER_ENV_DEFAULTS, **os.environ}


def transparent_hugepages() -> Optional[str]:
    """The kernel's THP mode ('always', 'madvise' or 'never'; torch's THP switch needs one of the first two)."""
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return None
    chosen = [word[1:-1] for word in text.split() if word.startswith("[")]
    return chosen[0] if chosen else text.strip()


def fingerprint() -> dict:
    """Versions, devices, CPU, threads, OS, Python, git commit and time, as one JSON-able dict."""
    return {
        "invobench": invobench.__version__,
        "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git": git_info(),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "platform": platform.platform(),
        "hostname": platform.node(),
        "cpu": {
            "model": cpu_model(),
            "machine": platform.machine(),
            "logical_cores": os.cpu_count(),
            "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            **cpu_details(),
        },
        "torch": {
            "version": torch.__version__,
            "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
            "mkldnn": torch.backends.mkldnn.is_available(),
            "openmp": torch.backends.openmp.is_available(),
        },
        "cuda": cuda_info(),
        "packages": {name: _version(name) for name in ("triton", "numpy", "fvcore", "cupy-cuda13x", "cuda-core")},
        "transparent_hugepages": transparent_hugepages(),
        "env": {k: v for k, v in worker_environment().items() if k in RECORDED_ENV},
    }
