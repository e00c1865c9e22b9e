"""Kernel resource figures read from `ptxas -v`: registers, shared memory, spills (no GPU needed).

The Triton and CUDA backends (`triton_static`, `cuda_static`) report them as `StaticKernelProfile`s;
`static_profile.collect` gathers both for `invobench profile --static`.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Optional

@dataclass
class StaticKernelProfile:
    backend: str          # "triton" | "cuda"
    kernel: str           # e.g. "involution_fwd", "involution_bwd_input"
    config: str           # block configuration / template parameters, e.g. "BLOCK_W=64 num_warps=4" or "K=7"
    arch: str             # "sm_80", "sm_90"
    dtype: str            # "float32", "bfloat16", ...
    registers: Optional[int]
    shared_bytes: Optional[int]
    spill_store_bytes: Optional[int]
    spill_load_bytes: Optional[int]
    stack_bytes: Optional[int] = None
    error: Optional[str] = None

    def as_dict(self) -> dict:
        return asdict(self)


_PTXAS_PATTERNS = {
    "registers": re.compile(r"Used (\d+) registers"),
    "shared_bytes": re.compile(r"(\d+) bytes smem"),
    "spill_store_bytes": re.compile(r"(\d+) bytes spill stores"),
    "spill_load_bytes": re.compile(r"(\d+) bytes spill loads"),
    "stack_bytes": re.compile(r"(\d+) bytes stack frame"),
}


def parse_ptxas_verbose(text: str) -> dict[str, Optional[int]]:
    """Pull the figures of one function out of `ptxas -v` output (first match of each)."""
    out: dict[str, Optional[int]] = {}
    for key, pattern in _PTXAS_PATTERNS.items():
        m = pattern.search(text)
        out[key] = int(m.group(1)) if m else (0 if key != "registers" else None)
    return out
