"""The roofline of a (device, dtype), measured in the same run, and where a record sits on it (spec §6).

- copy bandwidth: `dst.copy_(src)` of a buffer far larger than the last-level cache; bytes moved =
  2 × buffer (read + write); GB/s = 1e9 B/s.
- matmul peak: `torch.mm` of square n×n matrices, 2·n³ FLOPs, for n = 512 (CPU; 1024 on GPU) doubled up to
  `matmul_max_n` (or until one call takes over half a second); the best FLOP/s over the sizes.
Both take the fastest sample: a roofline is an attainable upper bound. Every sample is recorded.

A record's bound is max(bytes / bandwidth, FLOPs / peak); % of roofline = 100 · bound / median latency.
"""
from __future__ import annotations

import time
from typing import Optional

import torch

from invobench.core import DTYPES

#: a matmul call slower than this ends the size ladder
_MATMUL_SLOW_MS = 500.0


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

    # Every size of the ladder is sampled and the best FLOP/s wins: small matrices under-use the
    # cores, and on a shared machine a longer window is likelier to catch a quiet moment.
    best = None
    n = min(512 if device == "cpu" else 1024, matmul_max_n)
    while n <= matmul_max_n:
        a = torch.randn(n, n, device=device).to(tdtype)
        b = torch.randn(n, n, device=device).to(tdtype)
        c = torch.empty(n, n, dtype=tdtype, device=device)
        call = lambda: torch.mm(a, b, out=c)  # noqa: E731
        samples = _sample(call, timer, time_s)
        flops = 2 * n**3 / (min(samples) * 1e-3)
        if best is None or flops > best[0]:
            best = (flops, n, samples)
        if min(samples) > _MATMUL_SLOW_MS:  # this dtype is slow here (e.g. 16-bit on a CPU): larger n only costs time
            break
        n *= 2
    out["matmul_peak_flops"], out["matmul_n"], out["samples_matmul_ms"] = best
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
