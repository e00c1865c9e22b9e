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


# ---- shared by the kernel test files: one float64 problem, one way to run fwd + bwd ----------

def involution_problem(shape: tuple, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Float64 x, kernel and grad_out for shape = (B, C, H, W, G, K, stride, dilation); kernel scaled by 1/K."""
    from invobench.core import out_size

    B, C, H, W, G, K, s, d = shape
    gen = torch.Generator().manual_seed(seed)
    Ho, Wo = out_size(H, K, s, d), out_size(W, K, s, d)
    x = torch.randn(B, C, H, W, generator=gen, dtype=torch.float64)
    w = torch.randn(B, G, K * K, Ho, Wo, generator=gen, dtype=torch.float64) / K
    gout = torch.randn(B, C, Ho, Wo, generator=gen, dtype=torch.float64)
    return x, w, gout


def forward_backward(fn, x: torch.Tensor, w: torch.Tensor, gout: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(out, grad_x, grad_kernel) of fn(x, w) for the given grad_out (cast to the output's dtype)."""
    x, w = x.detach().requires_grad_(), w.detach().requires_grad_()
    out = fn(x, w)
    grad_x, grad_w = torch.autograd.grad(out, (x, w), gout.to(out.dtype))
    return out.detach(), grad_x, grad_w


def involution_reference_outputs(shape: tuple, x: torch.Tensor, w: torch.Tensor, gout: torch.Tensor):
    """(out, grad_x, grad_kernel) of the reference tap loop, in the inputs' dtype."""
    from invobench.ops.involution.reference import involution_reference, involution_reference_backward

    K, s, d = shape[5:]
    return (involution_reference(x, w, K, s, d), *involution_reference_backward(gout, x, w, K, s, d))
