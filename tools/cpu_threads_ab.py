"""Single calls of kernel builds, interleaved with other variants' calls, as `invobench run` samples.

    OMP_NUM_THREADS=2 .venv/bin/python tools/cpu_threads_ab.py SHAPES ROUNDS SPEC [SPEC ...]
    e.g. ... "1,512,7,7,32;1,256,7,7,16" 80 invobench/ops/involution/csrc/involution_cpu.cpp \
             "invobench/ops/involution/csrc/involution_cpu.cpp:-DINVOBENCH_MACS_PER_THREAD_SHIFT=20"

SHAPES "B,C,H,K,G;..." (H = W, stride 1, fp32); SPEC as for tools/cpu_ab.py (SRC.cpp[:FLAGS]). Each
round calls, in random order, every build's forward and backward (grad_input + grad_kernel into fresh
outputs) once, through the C ABI with torch's thread count, and the eager and unfold variants and a
depthwise conv once, whose buffers leave the caches and the thread pool as a benchmark's other
variants do. Prints each build's median per call in ms. tools/cpu_ab.py measures warm throughput;
this measures what a small call costs between other work (thread wake-up, cold caches included).
"""
import ctypes
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
import cpu_ab  # noqa: E402  (tools/cpu_ab.py: builds a source with flags into a ctypes library)

from invobench.ops.involution import APPLY  # noqa: E402


def main(shapes: str, rounds: int, specs: list[str]) -> None:
    libs = {spec: cpu_ab.build(spec) for spec in specs}
    threads = torch.get_num_threads()
    for shape_spec in shapes.split(";"):
        B, C, H, K, G = (int(v) for v in shape_spec.split(","))
        x, w, go = torch.randn(B, C, H, H), torch.randn(B, G, K * K, H, H) / K, torch.randn(B, C, H, H)
        dw = torch.randn(C, 1, K, K)
        shape = (ctypes.c_int64 * 8)(B, C, H, H, G, K, 1, 1)
        calls = {}
        for spec, lib in libs.items():
            def forward(lib=lib):
                out = torch.empty_like(x)
                assert lib.invobench_involution_forward(0, shape, threads, x.data_ptr(), w.data_ptr(), out.data_ptr()) == 0

            def backward(lib=lib):
                gx, gw = torch.empty_like(x), torch.empty_like(w)
                assert lib.invobench_involution_grad_input(0, shape, threads, go.data_ptr(), w.data_ptr(), gx.data_ptr()) == 0
                assert lib.invobench_involution_grad_kernel(0, shape, threads, go.data_ptr(), x.data_ptr(), gw.data_ptr()) == 0

            calls[(spec, "fwd")], calls[(spec, "bwd")] = forward, backward

        def others():
            with torch.no_grad():
                APPLY["eager"](x, w, K, 1, 1)
                APPLY["unfold"](x, w, K, 1, 1)
                F.conv2d(x, dw, padding=K // 2, groups=C)

        calls[("others", "")] = others
        medians = cpu_ab.single_call_medians(calls, rounds)
        print(shape_spec)
        for spec in specs:
            fwd, bwd = medians[(spec, "fwd")], medians[(spec, "bwd")]
            print(f"  {spec:90s} fwd {fwd:.3f}  bwd {bwd:.3f} ms", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
