"""Test-only variants that fail on purpose, for the runner's fault tests.

Loaded by the runner and its worker only through INVOBENCH_PLUGINS=<this file>, which calls
`register_plugin()`; importing this module (as pytest does) registers nothing, so the public
registry never shows them.
"""
from __future__ import annotations

import ctypes
import os
import signal
import time

import torch

from invobench.core import Case, Variant, Workload

#: variant name -> what its first call does
FAULTS = {
    "test-segfault": "reads address 0 (SIGSEGV)",
    "test-exit": "os._exit(3) mid-case",
    "test-raise": "raises RuntimeError",
    "test-hang": "sleeps far past any timeout",
    "test-sigkill": "is killed by SIGKILL mid-case (what the OOM killer does)",
    "test-hog": "allocates memory until the runner's watchdog kills it",
    "test-cuda-oom": "raises torch.cuda.OutOfMemoryError",
}


def _fault(name: str) -> None:
    if name == "test-segfault":
        ctypes.string_at(0)
    elif name == "test-exit":
        os._exit(3)
    elif name == "test-raise":
        raise RuntimeError("test-raise failed on purpose")
    elif name == "test-hang":
        time.sleep(3600)
    elif name == "test-sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif name == "test-hog":
        hoard = []
        for _ in range(48):  # at most 3 GiB, in 64 MiB steps the watchdog can see
            hoard.append(torch.ones(16 * 2**20))
            time.sleep(0.05)
        raise RuntimeError("test-hog was not stopped by the memory watchdog")
    elif name == "test-cuda-oom":
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (test)")


def _build(name: str):
    def build(case: Case, requires_grad: bool) -> Workload:
        x = torch.ones(4, requires_grad=requires_grad)

        def fn():
            _fault(name)
            return x * 2

        return Workload(fn, [x])

    return build


def register_plugin() -> None:
    from invobench.registry import register

    for name, what in FAULTS.items():
        register(Variant(name, "involution", ("op",), ("cpu",), ("float32",), True, f"test fault: {what}", _build(name)))
