"""Where a network's time goes, by layer kind: torch.profiler over one inference and one training step.

Categories: involution apply, kernel generation (everything else inside an involution layer:
pool, reduce conv, BN, ReLU, span conv, view), convolution (convs outside involution layers),
normalisation (BN outside involution layers), other (ReLU, max/avg pooling, residual adds,
classifier, loss, optimizer, autograd bookkeeping).

Attribution is exact rather than guessed from op names:
- forward: module hooks open a `record_function` scope per involution layer / conv / BN; an
  event belongs to the category of its nearest enclosing scope. The apply is the custom op
  `invobench::involution_<variant>` (every variant is one), so inside a layer it is its own scope.
- backward: every autograd node carries the sequence number of the forward op that created it;
  the profiler records it on both, so each `autograd::engine::evaluate_function: <Node>` event is
  charged to the category of the forward op with the same sequence number.
Times are the profiler's self CPU times summed per category (intra-op threads included in their
op's time), so the categories add up to the profiled step.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

from invobench.models import build_model, get_model_spec
from invobench.nn import Involution2d

log = logging.getLogger(__name__)

CATEGORIES = ("involution apply", "kernel generation", "convolution", "normalisation", "other")
SCOPE_PREFIX = "invobench.breakdown::"
STEP_SCOPE = SCOPE_PREFIX + "step"
APPLY_OP_PREFIX = "invobench::involution_"
BACKWARD_NODE_PREFIX = "autograd::engine::evaluate_function: "


@dataclass
class Breakdown:
    """Per-category time of one profiled step (mean over `steps`), milliseconds."""

    model: str
    involution_variant: Optional[str]
    step: str  # "inference" | "train"
    batch: int
    image: str
    threads: int
    steps: int
    wall_ms: float  # wall time of one step without the profiler
    profiled_ms: float  # the profiled step's total (sum of the categories)
    category_ms: dict[str, float]
    other_top: list[tuple[str, float]] = field(default_factory=list)  # largest "other" ops by self time

    def percent(self, category: str) -> float:
        return 100.0 * self.category_ms.get(category, 0.0) / self.profiled_ms if self.profiled_ms else 0.0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["percent"] = {c: round(self.percent(c), 2) for c in CATEGORIES}
        return d


class _ScopeHooks:
    """Forward pre/post hooks that wrap involution layers, convs and BNs (outside involution layers) in scopes."""

    def __init__(self, model: nn.Module):
        inside_involution = {id(sub) for m in model.modules() if isinstance(m, Involution2d)
                             for sub in m.modules() if sub is not m}
        self.handles = []
        self.stack: list = []
        for m in model.modules():
            if isinstance(m, Involution2d):
                category = "kernel generation"
            elif id(m) in inside_involution:
                continue
            elif isinstance(m, nn.Conv2d):
                category = "convolution"
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                category = "normalisation"
            else:
                continue
            self.handles.append(m.register_forward_pre_hook(self._enter(SCOPE_PREFIX + category)))
            self.handles.append(m.register_forward_hook(self._exit))

    def _enter(self, name: str):
        def hook(module, args):
            scope = record_function(name)
            scope.__enter__()
            self.stack.append(scope)

        return hook

    def _exit(self, module, args, output):
        self.stack.pop().__exit__(None, None, None)

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def attribute(events) -> tuple[dict[str, float], list[tuple[str, float]]]:
    """(category -> self CPU ms, top "other" ops) of the events inside the step scope(s); see the module doc."""
    category_of: dict[int, Optional[str]] = {}
    in_backward: dict[int, bool] = {}
    seq_category: dict[int, str] = {}
    totals_us: dict[str, float] = defaultdict(float)
    other_us: dict[str, float] = defaultdict(float)
    for e in sorted(events, key=lambda ev: (ev.time_range.start, -ev.time_range.end)):
        parent = e.cpu_parent
        if e.name == STEP_SCOPE:
            category_of[id(e)], in_backward[id(e)] = "other", False
            continue
        if parent is None or id(parent) not in category_of:
            continue  # outside the profiled step (profiler start/stop bookkeeping)
        backward = in_backward[id(parent)]
        if e.name.startswith(SCOPE_PREFIX):
            category = e.name[len(SCOPE_PREFIX):]
        elif e.name.startswith(APPLY_OP_PREFIX):
            category = "involution apply"
        elif e.name.startswith(BACKWARD_NODE_PREFIX):
            backward = True
            category = seq_category.get(e.sequence_nr, "other")
        else:
            category = category_of[id(parent)]
        category_of[id(e)], in_backward[id(e)] = category, backward
        if not backward and e.sequence_nr >= 0:
            seq_category[e.sequence_nr] = category  # the node-creating op is the last to see its number
        totals_us[category] += e.self_cpu_time_total
        if category == "other":
            other_us[e.name] += e.self_cpu_time_total
    category_ms = {c: totals_us.get(c, 0.0) / 1e3 for c in CATEGORIES}
    top = sorted(((name, us / 1e3) for name, us in other_us.items()), key=lambda kv: -kv[1])[:6]
    return category_ms, top


def _profile(call, steps: int) -> tuple[dict[str, float], list[tuple[str, float]]]:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            with record_function(STEP_SCOPE):
                call()
    category_ms, top = attribute(prof.events())
    return {c: v / steps for c, v in category_ms.items()}, [(n, v / steps) for n, v in top]


def _wall_ms(call, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        call()
    return (time.perf_counter() - start) * 1e3 / steps


def profile_model(name: str, variant: Optional[str] = None, batch: int = 1, size: int = 224, steps: int = 1,
                  warmup: int = 1, train: bool = True, inference: bool = True) -> list[Breakdown]:
    """Profile one inference step (eval, no_grad) and one training step (fwd + loss + bwd + SGD) of a model on the CPU.

    `warmup` untimed steps come first (the first call of some variants compiles or builds a kernel).
    """
    spec = get_model_spec(name)
    involution_variant = (variant or "auto") if spec.involution else None
    model = build_model(name, variant)
    gen = torch.Generator().manual_seed(0)
    image = torch.randn(batch, 3, size, size, generator=gen)
    labels = torch.randint(0, 1000, (batch,), generator=gen)
    results = []
    hooks = _ScopeHooks(model)
    try:
        plans = []
        if inference:
            def infer() -> None:
                with torch.no_grad():
                    model(image)

            plans.append(("inference", infer, lambda: model.eval()))
        if train:
            optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            loss_fn = nn.CrossEntropyLoss()

            def train_step() -> None:
                optimizer.zero_grad(set_to_none=True)
                loss_fn(model(image), labels).backward()
                optimizer.step()

            plans.append(("train", train_step, lambda: model.train()))
        for step_name, call, set_mode in plans:
            set_mode()
            for _ in range(warmup):
                call()
            wall = _wall_ms(call, steps)
            category_ms, top = _profile(call, steps)
            results.append(Breakdown(
                model=name, involution_variant=involution_variant, step=step_name, batch=batch, image=f"{size}x{size}",
                threads=torch.get_num_threads(), steps=steps, wall_ms=wall, profiled_ms=sum(category_ms.values()),
                category_ms=category_ms, other_top=top,
            ))
            log.info("%s %s: wall %.1f ms, profiled %.1f ms", name, step_name, wall, results[-1].profiled_ms)
    finally:
        hooks.remove()
    return results
