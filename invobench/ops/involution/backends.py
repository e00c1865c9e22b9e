"""Optional involution backends. Each registers a real variant when its module exists,
otherwise a placeholder that `invobench list` shows as unavailable with the reason.

A backend module must import without its optional dependency (triton, cupy, a compiler):
it imports them lazily and reports their absence through the variant's `requirements`.
"""
from __future__ import annotations

import importlib
import importlib.util

from invobench.ops.involution import register_unavailable_variant

_PLACEHOLDERS = {
    # module: [(variant, devices, dtypes, description, issue)]
    "triton": [
        ("triton", ("cuda",), "Triton kernels, forward and backward", 5),
        ("triton-simple", ("cuda",), "one-lane-per-output Triton kernels, no reuse", 5),
    ],
    "cuda": [
        ("cuda", ("cuda",), "optimised CUDA C++ kernels (shared-memory tile, kernel reuse)", 6),
        ("cuda-simple", ("cuda",), "one-thread-per-output CUDA C++ kernels, no reuse", 6),
    ],
    "cpu": [("cpu", ("cpu",), "C++/OpenMP CPU kernel", 9)],
}

for _module, _entries in _PLACEHOLDERS.items():
    _qualified = f"invobench.ops.involution.{_module}"
    if importlib.util.find_spec(_qualified) is not None:
        importlib.import_module(_qualified)
        continue
    for _name, _devices, _what, _issue in _entries:
        register_unavailable_variant(
            _name, _devices, ("float32", "bfloat16", "float16"), _what, f"not implemented yet (issue {_issue})"
        )
