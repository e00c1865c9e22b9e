"""`invobench profile --static`: ptxas figures of every GPU kernel, from the Triton and CUDA backends."""
from __future__ import annotations

from invobench.ops.involution.ptxas import StaticKernelProfile


def collect(archs: list[int], dtypes: list[str]) -> tuple[list[StaticKernelProfile], list[str]]:
    """Both backends' profiles, plus a note per backend that could not run (missing library or tool)."""
    from invobench.ops.involution import cuda_static, triton_static

    profiles, notes = [], []
    for module in (triton_static, cuda_static):
        try:
            profiles += module.static_profiles(archs, dtypes)
        except Exception as exc:  # a backend's tool (ptxas, nvcc) missing or failing must not hide the other
            notes.append(f"{module.__name__}: {type(exc).__name__}: {exc}")
    return profiles, notes
