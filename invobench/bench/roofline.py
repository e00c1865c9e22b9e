"""The roofline of a (device, dtype), measured in the same run, and where a record sits on it (spec §6).

- copy bandwidth: `dst.copy_(src)` of a buffer far larger than the last-level cache; bytes moved =
  2 × buffer (read + write); GB/s = 1e9 B/s.
- matmul peak: `torch.mm` of square n×n matrices, 2·n³ FLOPs, n doubled from 512 (CPU; 1024 on GPU) until one call
  takes long enough to time well (or `matmul_max_n`).
Both take the fastest sample: a roofline is an attainable upper bound. Every sample is recorded.

A record's bound is max(bytes / bandwidth, FLOPs / peak); % of roofline = 100 · bound / median latency.
"""
from __future__ import annotations

import time
from typing import Optional

import torch

from invobench.registry import DTYPES

#: a matmul call should take at least this long before its size stops growing (CPU, CUDA)
_MATMUL_TARGET_S = {"cpu": 0.02, "cuda": 0.002}


def _sample(fn, timer, time_s: float, min_samples: int = 3, max_samples: int = 200) -> list[float]:
    fn()
    timer.synchronize()
    samples: list[float] = []
    t0 = time.perf_counter()
    while len(samples) < max_samples and (len(samples) < min_samples or time.perf_counter() - t0 < time_s):
        samples.append(timer.time_call(fn))
    return samples


def measure_roofline(device: str, dtype: str, timer, copy_mib: int = 256, matmul_max_n: int = 4096,
                     time_s: float = 0.5) -> dict:
    """Copy bandwidth and matmul peak of `device` in `dtype`, as the fields of `invobench.results.Roofline`."""
    tdtype = DTYPES[dtype]
    out: dict = {"device": device, "dtype": dtype, "threads": torch.get_num_threads()}
    esize = torch.empty((), dtype=tdtype).element_size()
    numel = copy_mib * 2**20 // esize
    src = torch.ones(numel, dtype=tdtype, device=device)
    dst = torch.empty_like(src)
    copy_samples = _sample(lambda: dst.copy_(src), timer, time_s)
    del src, dst
    out["copy_bytes"] = 2 * numel * esize
    out["samples_copy_ms"] = copy_samples
    out["copy_bandwidth_gbps"] = out["copy_bytes"] / (min(copy_samples) * 1e-3) / 1e9

    target = _MATMUL_TARGET_S["cuda" if device.startswith("cuda") else "cpu"]
    n = min(512 if device == "cpu" else 1024, matmul_max_n)
    while True:
        a = torch.randn(n, n, device=device).to(tdtype)
        b = torch.randn(n, n, device=device).to(tdtype)
        c = torch.empty(n, n, dtype=tdtype, device=device)
        call = lambda: torch.mm(a, b, out=c)  # noqa: E731
        call()
        timer.synchronize()
        t0 = time.perf_counter()
        call()
        timer.synchronize()
        elapsed = time.perf_counter() - t0
        if elapsed >= target or 2 * n > matmul_max_n:
            break
        n *= 2
    mm_samples = _sample(call, timer, time_s)
    out["matmul_n"] = n
    out["samples_matmul_ms"] = mm_samples
    out["matmul_peak_flops"] = 2 * n**3 / (min(mm_samples) * 1e-3)
    return out


def roofline_fields(flops: Optional[int], bytes_: Optional[int], median_ms: Optional[float],
                    bandwidth_gbps: Optional[float], peak_flops: Optional[float]) -> dict:
    """The `RooflineFields` of one measurement; fields whose inputs are missing stay None."""
    out: dict = {"intensity_flop_per_byte": None, "achieved_gbps": None, "achieved_flops": None,
                 "bound_ms": None, "bound_by": None, "pct_of_roofline": None}
    if flops is not None and bytes_:
        out["intensity_flop_per_byte"] = flops / bytes_
    if median_ms is None or median_ms <= 0:
        return out
    seconds = median_ms * 1e-3
    if bytes_:
        out["achieved_gbps"] = bytes_ / seconds / 1e9
    if flops is not None:
        out["achieved_flops"] = flops / seconds
    # The bound needs both halves: with no byte model (layers, models) FLOPs/peak alone would
    # understate it, and a % of roofline against an understated bound would flatter the variant.
    if not (bytes_ and bandwidth_gbps and flops is not None and peak_flops):
        return out
    memory_ms = bytes_ / (bandwidth_gbps * 1e9) * 1e3
    compute_ms = flops / peak_flops * 1e3
    if memory_ms >= compute_ms:
        out["bound_ms"], out["bound_by"] = memory_ms, "memory"
    else:
        out["bound_ms"], out["bound_by"] = compute_ms, "compute"
    out["pct_of_roofline"] = 100.0 * out["bound_ms"] / median_ms
    return out
