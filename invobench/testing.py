"""Numerical comparison against the float64 reference, shared by `invobench check` and the tests.

One per-dtype tolerance table. A low-precision result is judged against the float64 reference
and may be off by at most FACTOR × the error of the plain PyTorch reference run in that same
precision, plus a small absolute floor (flash-attention's rule) — no loose atol that hides bugs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

#: absolute floor added to FACTOR × baseline error, per dtype (covers a baseline error of ~0)
ATOL = {torch.float64: 1e-10, torch.float32: 1e-5, torch.bfloat16: 1e-2, torch.float16: 2e-3}
#: relative slack for float64/float32 results compared directly to the reference
RTOL = {torch.float64: 1e-10, torch.float32: 1e-5, torch.bfloat16: 0.0, torch.float16: 0.0}
FACTOR = 2.0


@dataclass
class Comparison:
    name: str
    max_abs: float
    max_rel: float
    allowed: float
    worst_index: tuple
    ok: bool

    def describe(self) -> str:
        verdict = "ok" if self.ok else "MISMATCH"
        return (f"{self.name}: {verdict} max_abs={self.max_abs:.3e} (allowed {self.allowed:.3e}) "
                f"max_rel={self.max_rel:.3e} at index {self.worst_index}")


def compare(name: str, actual: torch.Tensor, reference64: torch.Tensor, baseline: torch.Tensor | None = None) -> Comparison:
    """Compare `actual` with the float64 `reference64`.

    For float64/float32: allowed = ATOL + RTOL·|ref|max. For bf16/fp16: `baseline` (the eager
    reference run in the same dtype) sets allowed = FACTOR·|baseline − ref|max + ATOL.
    """
    dtype = actual.dtype
    a, r = actual.detach().to(torch.float64).cpu(), reference64.detach().to(torch.float64).cpu()
    if a.shape != r.shape:
        raise AssertionError(f"{name}: shape {tuple(a.shape)} != reference shape {tuple(r.shape)}")
    diff = (a - r).abs()
    if not torch.isfinite(a).all():
        bad = tuple(int(i) for i in (~torch.isfinite(a)).nonzero()[0])
        return Comparison(name, float("inf"), float("inf"), 0.0, bad, False)
    if diff.numel() == 0:
        return Comparison(name, 0.0, 0.0, 0.0, (), True)
    flat = int(diff.argmax())
    worst = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), diff.shape))
    max_abs = float(diff.max())
    scale = float(r.abs().max())
    max_rel = max_abs / scale if scale else max_abs
    if dtype in (torch.bfloat16, torch.float16):
        if baseline is None:
            raise ValueError(f"{name}: a {dtype} result needs the eager {dtype} baseline to be judged")
        base_err = float((baseline.detach().to(torch.float64).cpu() - r).abs().max())
        allowed = FACTOR * base_err + ATOL[dtype] * max(scale, 1.0)
    else:
        allowed = ATOL[dtype] + RTOL[dtype] * scale
    return Comparison(name, max_abs, max_rel, allowed, worst, max_abs <= allowed)


def assert_close(name: str, actual: torch.Tensor, reference64: torch.Tensor, baseline: torch.Tensor | None = None) -> Comparison:
    """`compare`, raising AssertionError that says where and by how much."""
    result = compare(name, actual, reference64, baseline)
    if not result.ok:
        raise AssertionError(result.describe())
    return result
