"""The worker subprocess: measures groups of variants of one case, so a crash costs one record, not the run.

    python -m invobench.bench.worker --result-fd N --board PATH [--threads T]

The protocol (requests, replies, the status board) is described in `invobench.bench.protocol`, the
runner's side of it. The worker loads the same INVOBENCH_PLUGINS as the runner, so both sides agree
on the variants' names.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import faulthandler
import gc
import json
import os
import random
import sys
import time
import traceback
from contextlib import nullcontext
from typing import Any, Callable, Optional

from invobench.bench.protocol import StatusBoard
from invobench.registry import load_plugins

def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower())


def _exception_fields(exc: BaseException) -> dict:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return {"status": "oom" if is_oom(exc) else "error", "error": f"{type(exc).__name__}: {first}"[:2000],
            "stderr_tail": tb[-4000:]}


def _tensors(out) -> list:
    import torch

    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for t in out if isinstance(t, torch.Tensor) and t.requires_grad]
    raise TypeError(f"the workload returned {type(out).__name__}; expected a tensor or a tuple of tensors")


class PassCall:
    """The timed callable of one pass of a variant's workload, plus how to measure its memory."""

    def __init__(self, variant, case, pass_: str, seed: int = 0):
        import torch

        self.torch, self.pass_, self.case = torch, pass_, case
        self.skip_reason: Optional[str] = None
        self.workload = variant.build(case, pass_ != "fwd")
        wl = self.workload
        if pass_ == "fwd":
            self.call: Callable[[], object] = wl.fn
            return
        if pass_ == "train":
            if wl.train_step is None:
                self.skip_reason = "this variant's workload has no train_step (the train pass needs one)"
            self.call = wl.train_step
            return
        leaves = [t for t in wl.inputs if isinstance(t, torch.Tensor) and t.requires_grad]
        if wl.module is not None:
            leaves += [p for p in wl.module.parameters() if p.requires_grad]
        outs = _tensors(wl.fn())
        # inputs made to require grad inside fn (as the attention layer does) are leaves only now
        leaves += [t for t in wl.inputs if isinstance(t, torch.Tensor) and t.requires_grad and
                   not any(t is l for l in leaves)]
        if not leaves:
            raise RuntimeError(f"pass {pass_!r}: nothing in the workload requires grad")
        gen = torch.Generator().manual_seed(seed)
        self.grad_outs = [torch.randn(o.shape, generator=gen, dtype=torch.float32).to(o.device, o.dtype) for o in outs]
        self.leaves = leaves
        if pass_ == "bwd":
            self.outs = outs
            self.call = lambda: torch.autograd.grad(self.outs, self.leaves, self.grad_outs, retain_graph=True)
        else:
            del outs
            self.call = lambda: torch.autograd.grad(_tensors(wl.fn()), self.leaves, self.grad_outs)

    def forward_for_saved(self) -> Optional[Callable[[], object]]:
        """A forward (with grad) whose saved tensors define saved_for_backward_bytes; None for fwd."""
        if self.pass_ == "fwd":
            return None
        if self.pass_ == "train":
            return self.workload.train_step
        return self.workload.fn

    def release(self) -> None:
        for name in ("outs", "grad_outs", "leaves", "workload", "call", "timed"):
            if hasattr(self, name):
                delattr(self, name)


def _make_timer(device: str, timer_cfg: dict):
    from invobench.bench.timing import CpuTimer, CudaEventTimer, CudaGraphTimer

    if device.startswith("cuda"):
        cls = CudaGraphTimer if timer_cfg.get("cuda_graphs") else CudaEventTimer
        return cls(device, l2_flush=timer_cfg.get("l2_flush", True))
    return CpuTimer()


class Worker:
    def __init__(self, result_fd: int, board: Optional[StatusBoard]):
        self.result_fd = result_fd
        self.board = board

    def send(self, obj: dict) -> None:
        data = (json.dumps(obj) + "\n").encode()
        view = memoryview(data)
        while view:
            written = os.write(self.result_fd, view)
            view = view[written:]

    def mark(self, text: str) -> None:
        if self.board is not None:
            self.board.set(text)

    def hello(self) -> None:
        import torch

        cuda: dict[str, Any] = {"available": torch.cuda.is_available()}
        if cuda["available"]:
            free, total = torch.cuda.mem_get_info()
            cuda.update(free_bytes=int(free), total_bytes=int(total))
        from invobench.env import RECORDED_ENV

        env = {k: os.environ[k] for k in RECORDED_ENV if k in os.environ}
        self.send({"kind": "hello", "pid": os.getpid(), "threads": torch.get_num_threads(), "cuda": cuda, "env": env})

    # ---- roofline ------------------------------------------------------------------------
    def roofline(self, request: dict) -> None:
        from invobench.bench.roofline import measure_roofline

        device, dtype = request["device"], request["dtype"]
        self.mark(f"roofline {device} {dtype}\troofline")
        try:
            timer = _make_timer(device, {"l2_flush": False})
            result = measure_roofline(device, dtype, timer, **request.get("config", {}))
        except Exception as exc:  # a failed roofline must not stop the run: records get no roofline fields
            result = {"device": device, "dtype": dtype, "error": _exception_fields(exc)["error"]}
        self.send({"kind": "roofline", "roofline": result})

    # ---- one group: the variants of one (case, pass) -----------------------------------------
    def group(self, request: dict) -> None:
        import torch

        from invobench.bench.memory import peak_bytes, release_cpu_heap, saved_for_backward_bytes
        from invobench.bench.timing import SamplingPolicy, VariantSampling, sample_interleaved, timer_overhead_ms, warm_up
        from invobench.core import Case
        from invobench.registry import get

        case = Case(**request["case"])
        pass_ = request["pass"]
        policy = SamplingPolicy(**request["policy"])
        keys: list[str] = request["variants"]
        rng = random.Random(request.get("seed", 0))
        started = {k: time.perf_counter() for k in keys}
        started_utc = {k: _utc_now() for k in keys}
        grad_mode = torch.no_grad() if pass_ == "fwd" else nullcontext()
        calls: dict[str, PassCall] = {}
        results = {k: VariantSampling() for k in keys}
        finals: dict[str, dict] = {}

        load_at_start = list(os.getloadavg()) if hasattr(os, "getloadavg") else None

        def finish(key: str, fields: dict) -> None:
            fields.update(kind="result", key=key, started_utc=started_utc[key],
                          duration_s=time.perf_counter() - started[key])
            if load_at_start is not None:
                # on a shared host the load average explains noisy or inflated samples
                fields.setdefault("info", {})["host_load"] = load_at_start
            finals[key] = fields
            self.send(fields)

        timer = _make_timer(case.device, request.get("timer", {}))
        overhead = timer_overhead_ms(timer)
        with grad_mode:
            for key in keys:  # build and warm up each variant on its own
                started[key] = time.perf_counter()
                try:
                    self.mark(f"{key}\tbuild")
                    pc = PassCall(get(key), case, pass_, seed=request.get("seed", 0))
                    if pc.skip_reason:
                        finish(key, {"status": "skipped", "reasons": [pc.skip_reason]})
                        continue
                    pc.timed, pc.timer_method = pc.call, timer.method
                    try:
                        pc.timed = timer.prepare(pc.call)
                    except Exception as exc:  # e.g. an op that cannot be captured in a CUDA graph: time it with events
                        if timer.method != "cuda_graph":
                            raise
                        pc.timer_method = "cuda_event"
                        pc.fallback_note = f"CUDA graph capture failed ({type(exc).__name__}: {exc}); timed with events"
                        torch.cuda.synchronize()
                    self.mark(f"{key}\twarmup")
                    results[key] = res = warm_up(pc.timed, timer, policy.warmup_s, policy.max_call_s)
                    if res.too_slow_ms is not None:
                        pc.release()
                        finish(key, {"status": "skipped", "reasons": [
                            f"time guard: one call took {res.too_slow_ms / 1e3:.2f} s, above the suite's "
                            f"budget.max_call_s = {policy.max_call_s:g} s"],
                            "info": {"first_call_ms": res.first_call_ms, "time_guard_call_ms": res.too_slow_ms}})
                        gc.collect()
                        continue
                    calls[key] = pc
                except Exception as exc:
                    finish(key, _exception_fields(exc))
                    calls.pop(key, None)
                    gc.collect()
            sample_interleaved({k: pc.timed for k, pc in calls.items()}, timer, policy, results, rng,
                               on_switch=lambda k: self.mark(f"{k}\tsample"), ties=request.get("ties", ()))
            for key, pc in list(calls.items()):
                res = results[key]
                fields: dict[str, Any] = {"status": "ok", "samples_ms": res.samples_ms}
                if res.error is not None:
                    fields.update(_exception_fields(res.error))
                fields["timer"] = {
                    "method": pc.timer_method, "overhead_ms": overhead, "threads": torch.get_num_threads(),
                    "warmup_ms": res.warmup_ms, "warmup_calls": res.warmup_calls, "l2_flush": timer.l2_flush,
                    "stop_reason": res.stop_reason,
                }
                fields["info"] = {"first_call_ms": res.first_call_ms, **self._variant_info(key, case, pc)}
                if getattr(pc, "fallback_note", None):
                    fields["info"]["timer_note"] = pc.fallback_note
                if res.error is None:
                    try:
                        self.mark(f"{key}\tmemory")
                        fields["memory"] = self._memory(pc, case.device, saved_for_backward_bytes, peak_bytes)
                    except Exception as exc:
                        fields["memory"] = {}
                        fields["info"]["memory_error"] = _exception_fields(exc)["error"]
                pc.release()
                del calls[key]
                gc.collect()
                if case.device.startswith("cuda"):
                    torch.cuda.empty_cache()
                finish(key, fields)
        release_cpu_heap()  # the next case starts from the resident memory it needs (env.CPU_HEAP_TUNABLES)
        self.mark("\tidle")
        self.send({"kind": "group_done", "group_id": request.get("group_id")})

    @staticmethod
    def _variant_info(key: str, case, pc: PassCall) -> dict:
        from invobench.registry import get

        info: dict[str, Any] = {}
        module = getattr(pc.workload, "module", None)
        if module is not None:
            info["module_params"] = sum(p.numel() for p in module.parameters())
        try:
            info.update(get(key).info(case))
        except Exception as exc:  # facts are optional; a failing info() must not lose the measurement
            info["info_error"] = f"{type(exc).__name__}: {exc}"
        return json.loads(json.dumps(info, default=str))

    def _memory(self, pc: PassCall, device: str, saved_fn, peak_fn) -> dict:
        peak, method = peak_fn(pc.call, device)
        memory = {"peak_bytes": int(peak), "peak_method": method}
        forward = pc.forward_for_saved()
        if forward is not None:
            import torch

            with torch.enable_grad():
                saved, out = saved_fn(forward)
            del out
            memory["saved_for_backward_bytes"] = int(saved)
        return memory

    def serve(self, stream) -> None:
        for line in stream:
            if not line.strip():
                continue
            request = json.loads(line)
            kind = request.get("kind")
            if kind == "exit":
                return
            if kind == "roofline":
                self.roofline(request)
            elif kind == "group":
                self.group(request)
            else:
                self.send({"kind": "error", "error": f"unknown request kind {kind!r}"})


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this worker when the runner dies (a killed run leaves no worker behind)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the runner died before the request took effect
        os._exit(1)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m invobench.bench.worker")
    parser.add_argument("--result-fd", type=int, required=True)
    parser.add_argument("--board", default=None)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    faulthandler.enable(file=sys.stderr, all_threads=True)  # a segfault leaves a Python traceback in the tail
    _die_with_parent()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    # The first call of any torch.library custom op imports torch._dynamo (seconds on a busy machine);
    # import it now so that cost is start-up, not the first call of whichever variant comes first.
    import torch._dynamo  # noqa: F401
    load_plugins()
    from invobench.registry import all_variants

    all_variants()
    worker = Worker(args.result_fd, StatusBoard(args.board) if args.board else None)
    worker.hello()
    worker.serve(sys.stdin)


if __name__ == "__main__":
    main()
