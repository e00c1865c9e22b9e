"""Per-call cost of the `cpu` variant's op path: the Python custom op over ctypes calls (as until
8d47318) against the C++ dispatcher and autograd kernels (csrc/involution_cpu_ops.cpp), in one process.

    OMP_NUM_THREADS=2 .venv/bin/python tools/cpu_call_ab.py "1,256,14,7,16;8,256,14,7,16" 60

Shapes are "B,C,H,K,G;..." (H = W, stride 1). Both paths run the same C kernels of the loaded
library. Each round calls, in random order: both paths' forward (no_grad) and backward
(autograd.grad of a kept graph, as the runner times "bwd"), eager's, and the unfold variant plus a
depthwise conv (whose large buffers leave caches as a benchmark's other variants do). Prints per-call
medians in ms and old/new.
"""
import ctypes
import importlib
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from cpu_ab import declare_c_abi, single_call_medians  # noqa: E402  (tools/cpu_ab.py)

from invobench.ops.involution import APPLY  # noqa: E402
from invobench.ops.involution.custom_op import define_involution_op  # noqa: E402

cpu = importlib.import_module("invobench.ops.involution.cpu")
LIB = declare_c_abi(cpu.library())


def _launch(fn, x, G, k, s, d, a, b, out):  # fp32 only
    shape = (ctypes.c_int64 * 8)(*x.shape, G, k, s, d)
    if getattr(LIB, f"invobench_involution_{fn}")(0, shape, torch.get_num_threads(), a.data_ptr(), b.data_ptr(), out.data_ptr()):
        raise RuntimeError(fn)


def old_forward(x, kernel, k, s, d):
    cpu._check(x, kernel, k, s, d)
    G = kernel.shape[1]
    x, kernel = x.contiguous(), kernel.contiguous()
    out = x.new_empty(x.shape[0], x.shape[1], kernel.shape[3], kernel.shape[4])
    _launch("forward", x, G, k, s, d, x, kernel, out)
    return out


def old_backward(grad_out, x, kernel, k, s, d):
    cpu._check(x, kernel, k, s, d)
    G = kernel.shape[1]
    grad_out, x, kernel = grad_out.contiguous(), x.contiguous(), kernel.contiguous()
    grad_x, grad_w = torch.empty_like(x), torch.empty_like(kernel)
    _launch("grad_input", x, G, k, s, d, grad_out, kernel, grad_x)
    _launch("grad_kernel", x, G, k, s, d, grad_out, x, grad_w)
    return grad_x, grad_w


def main(shapes: str, rounds: int) -> None:
    paths = {"old": define_involution_op("cpu_old_path", old_forward, old_backward), "new": APPLY["cpu"],
             "eager": APPLY["eager"]}
    for spec in shapes.split(";"):
        B, C, H, K, G = (int(v) for v in spec.split(","))
        x, w, go = torch.randn(B, C, H, H), torch.randn(B, G, K * K, H, H) / K, torch.randn(B, C, H, H)
        dw = torch.randn(C, 1, K, K)
        calls = {}
        for tag, op in paths.items():
            xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
            y = op(xr, wr, K, 1, 1)

            def forward(op=op):
                with torch.no_grad():
                    return op(x, w, K, 1, 1)

            calls[f"{tag} fwd"] = forward
            calls[f"{tag} bwd"] = lambda y=y, xr=xr, wr=wr: torch.autograd.grad([y], [xr, wr], [go], retain_graph=True)

        def others():
            with torch.no_grad():
                APPLY["unfold"](x, w, K, 1, 1)
                F.conv2d(x, dw, padding=K // 2, groups=C)

        calls["others"] = others
        m = single_call_medians(calls, rounds, warmup=3)
        print(f"{spec:16s} fwd old {m['old fwd']:.3f} new {m['new fwd']:.3f} ({m['old fwd'] / m['new fwd']:.2f}x)  "
              f"bwd old {m['old bwd']:.3f} new {m['new bwd']:.3f} ({m['old bwd'] / m['new bwd']:.2f}x)  "
              f"eager {m['eager fwd']:.3f} / {m['eager bwd']:.3f} ms", flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "1,256,14,7,16;1,512,7,7,32;1,128,28,7,8;1,64,56,7,4",
         int(sys.argv[2]) if len(sys.argv) > 2 else 60)
