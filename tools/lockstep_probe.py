"""Two processes of the same code taking strictly alternating samples, a token passed through pipes
before every call (docs/gate.md): how close do two processes get when they share every moment?

    .venv/bin/python tools/lockstep_probe.py lockstep      # TH=1 for one torch thread per process

Times involution eager / unfold / cpu forward at three small shapes, 40 samples each per process, and
prints the B/A ratios of medians. A prototype for a lockstep A/B mode of the runner, not part of it.
"""
import os
import statistics
import sys
import time

import numpy as np


def child(rfd, wfd, outfd, cases, n):
    import torch
    torch.set_num_threads(int(os.environ.get("TH", "2")))
    from invobench.ops.involution import APPLY
    res = []
    for (C, H, variant) in cases:
        G, K = C // 16, 7
        x = torch.randn(1, C, H, H); w = torch.randn(1, G, K*K, H, H) / K
        f = APPLY[variant]
        with torch.no_grad():
            for _ in range(3): f(x, w, K, 1, 1)
            s = []
            for _ in range(n):
                os.read(rfd, 1)
                t0 = time.perf_counter(); f(x, w, K, 1, 1); s.append(time.perf_counter() - t0)
                os.write(wfd, b"x")
        res.append(statistics.median(s))
    os.write(outfd, (" ".join(map(str, res)) + "\n").encode())
    os._exit(0)
cases = [(C, H, v) for (C, H) in [(64, 28), (128, 14), (32, 56)] for v in ("eager", "unfold", "cpu")]
n = 40
lock = len(sys.argv) > 1 and sys.argv[1] == "lockstep"
a2b_r, a2b_w = os.pipe(); b2a_r, b2a_w = os.pipe(); outs = []
for who in range(2):
    o_r, o_w = os.pipe(); outs.append(o_r)
    if os.fork() == 0:
        if lock:
            rfd, wfd = (b2a_r, a2b_w) if who == 0 else (a2b_r, b2a_w)
        else:  # free-running: each process its own self-pipe with a token always available
            sr, sw = os.pipe(); os.write(sw, b"x" * 1); rfd, wfd = sr, sw
        child(rfd, wfd, o_w, cases, n)
if lock:
    os.write(b2a_w, b"x")  # A starts
res = [list(map(float, os.fdopen(o).readline().split())) for o in outs]
for _ in range(2): os.wait()
r = np.array(res[1]) / np.array(res[0])
print("lockstep" if lock else "free-running", "B/A:", " ".join(f"{v:.3f}" for v in r), f"| median |log| {np.median(np.abs(np.log(r))):.3f}")
