"""Memory of one call: peak allocation, bytes saved for backward, and the guard's pre-run estimate.

Peak (spec §6), reported as bytes allocated above what was live just before the call:
- CUDA: `torch.cuda.max_memory_allocated() − memory_allocated()` after `reset_peak_memory_stats()`
  (method `cuda_max_memory_allocated`).
- CPU: the profiler's allocator events (method `profiler_allocator_events`): one call runs under
  `torch.profiler.profile(profile_memory=True)`, which records every allocation and free of
  PyTorch's CPU allocator (c10, used by aten, inductor-generated code and C++ extensions that
  allocate through `at::empty`) with its size and time; the peak is the maximum of the running sum
  in time order. Memory that bypasses c10 (oneDNN scratchpads, thread stacks) is not seen.

Saved for backward (spec §6): `torch.autograd.graph.saved_tensors_hooks` sees every tensor autograd
saves during one forward; the distinct storages among them are summed once each (x saved by two
ops counts once; a view counts its whole storage).

Estimate (the memory guard): the bytes a case needs at its peak, from shape formulas per variant
(the unfold forms need K²× their input). A variant without a formula gets None and is guarded only
by the runner's RSS watchdog.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from invobench.core import BYTES_PER_ELEMENT, Case
from invobench.models.memory import estimate_peak_bytes as model_peak_bytes
from invobench.ops.conv import CONV_GROUPS

PEAK_METHOD_CUDA = "cuda_max_memory_allocated"
PEAK_METHOD_CPU = "profiler_allocator_events"


def cpu_peak_bytes(call: Callable[[], object]) -> int:
    """Peak of the running sum of CPU allocator events during one `call()` (bytes above the start)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=False) as prof:
        call()
    events = [e for e in prof.profiler.kineto_results.events()
              if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU]
    events.sort(key=lambda e: e.start_ns())
    running, peak = 0, 0
    for event in events:
        running += event.nbytes()
        peak = max(peak, running)
    return peak


def release_cpu_heap() -> None:
    """Return the C heap's free pages to the OS (glibc's malloc_trim); nothing where there is no such call.

    Benchmark workers keep large blocks on the heap between calls (env.CPU_HEAP_TUNABLES), so a case's
    buffers stay resident after it; the worker calls this after each case, as it empties the CUDA cache,
    so one case's high-water mark is not carried into the next one's resident memory.
    """
    import ctypes

    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):  # not glibc (musl, macOS, Windows)
        return
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)


def cuda_peak_bytes(call: Callable[[], object], device: str = "cuda") -> int:
    """torch.cuda.max_memory_allocated during one `call()`, above what was allocated before it."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    call()
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device) - base)


def peak_bytes(call: Callable[[], object], device: str) -> tuple[int, str]:
    """(peak bytes above the state before the call, method) on `device`."""
    if device.startswith("cuda"):
        return cuda_peak_bytes(call, device), PEAK_METHOD_CUDA
    return cpu_peak_bytes(call), PEAK_METHOD_CPU


def saved_for_backward_bytes(forward: Callable[[], object]) -> tuple[int, object]:
    """Bytes of the distinct storages autograd saves during `forward()`; returns (bytes, forward's output).

    The output is returned so the caller controls when the graph (and the saved tensors) are freed.
    """
    storages: dict[tuple, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        try:
            storage = t.untyped_storage()
            storages[(t.device.type, t.device.index, storage.data_ptr())] = storage.nbytes()
        except (RuntimeError, NotImplementedError):  # tensor subclasses without a storage
            storages[("nostorage", id(t))] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = forward()
    return sum(storages.values()), out


# ---- the memory guard's estimate ------------------------------------------------------------

def estimate_peak_bytes(family: str, variant: str, case: Case, pass_: str) -> Optional[int]:
    """Bytes live at the peak of one call of the pass, inputs and outputs included (None: no model).

    Formulas (e = bytes per element; X = B·C·H·W·e, O = B·C·Ho·Wo·e, Wk = B·G·K²·Ho·Wo·e,
    U = B·C·K²·Ho·Wo·e the unfolded patches):
    involution eager: X + Wk + 3·O (output + tap temporaries); unfold: X + Wk + O + 2·U;
    other involution kernels: X + Wk + O. Backward adds the gradients (X + Wk), grad_out (O) and,
    for unfold, 3·U. Layers add the kernel-generating convs (≈ 2·Wk). conv: X + weight + O (+ the same
    again backward). attention: q, k, v, out (3·X + O); unfold adds 2·U plus the logits
    B·h·Ho·Wo·K²·e ×3; eager flex materialises the scores B·h·Ho·Wo·H·W·e ×2.
    model: `invobench.models.memory.estimate_peak_bytes` (calibrated against the profiler's peak).
    """
    e = BYTES_PER_ELEMENT.get(case.dtype, 4)
    B, C, H, W, K, G = case.B, case.C, case.H, case.W, case.K, case.G
    Ho, Wo = case.Ho, case.Wo
    X, O = B * C * H * W * e, B * C * Ho * Wo * e
    Wk = B * G * K * K * Ho * Wo * e
    U = B * C * K * K * Ho * Wo * e
    backward = pass_ in ("bwd", "fwd+bwd", "train")
    if family == "involution":
        if variant == "unfold":
            fwd = X + Wk + O + 2 * U
            extra_bwd = X + Wk + O + 3 * U
        elif variant == "eager":
            fwd = X + Wk + 3 * O
            extra_bwd = X + Wk + 3 * max(X, O)
        else:
            fwd = X + Wk + O
            extra_bwd = X + Wk + O
        if case.level == "layer":
            fwd += 2 * Wk
            extra_bwd += 2 * Wk
        return fwd + (extra_bwd if backward else 0)
    if family == "conv":
        groups = CONV_GROUPS[variant](case) if variant in CONV_GROUPS else 1
        weight = C * (C // max(groups, 1)) * K * K * e
        fwd = X + weight + O
        return fwd * (2 if backward else 1)
    if family == "attention":
        heads = G
        fwd = 3 * X + O
        if case.level == "layer":
            fwd += 4 * X
        if variant == "unfold":
            fwd += 2 * U + 3 * B * heads * Ho * Wo * K * K * e
        elif variant == "flex":
            fwd += 2 * B * heads * Ho * Wo * H * W * e
        return fwd * (3 if backward else 1)
    if family == "model":  # whole networks: the models package's calibrated estimate (spec §5)
        try:
            return int(model_peak_bytes(variant, case, pass_))
        except (ValueError, KeyError):
            return None
    return None
