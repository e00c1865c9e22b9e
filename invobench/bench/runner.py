"""Orchestration of a run: suite → items → worker subprocesses → records appended to a JSON Lines file.

- Every case group (the variants of one case and pass) runs in a worker subprocess
  (`invobench.bench.protocol`); a segfault, an abort, a kill or a hang there becomes a `crashed` /
  `oom` / `timeout` record for the variant the worker's status board names, with the tail of the
  worker's output, and the sweep goes on in a fresh worker. Python exceptions come back as `error`
  (or `oom`) records.
- Variants that can't run a case (`why_not`) and cases whose estimated peak exceeds the memory
  budget become `skipped` records with the reasons. A watchdog kills a worker whose resident memory
  passes the budget (`oom`).
- Before any timing: the output is created (or, with `resume`, validated and repaired) and the header
  is written, so an unwritable path or a full disk fails at once. Then the roofline of every
  (device, dtype) of the run is measured and written, then each record is appended as it finishes.
- `shard k/n` takes every n-th case group (`invobench.bench.merge` joins shard files).

The runner displays nothing: it reports what happens as events (`RunStarted`, `StatusChanged`,
`RooflineMeasured`, `RecordWritten`) to the `on_event` callback; the `run` command shows them.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

from invobench.bench.ab import SUFFIX as AB_SUFFIX, add_twins, plain_variant
from invobench.bench.budget import (
    DEFAULT_GPU_FRACTION, DEFAULT_MEM_FRACTION, ab_budget, available_memory_bytes, fmt_bytes, pack_by_memory,
    parse_mem_budget, quick_budget,
)
from invobench.bench.cases import BenchItem, CaseGroup, expand_suite, group_items, parse_shard, shard_groups
from invobench.bench.memory import estimate_peak_bytes
from invobench.bench.output import RunnerError, default_out, ensure_writable, lock, write_line
from invobench.bench.protocol import WorkerDeath, WorkerProcess, WorkerStartError
from invobench.bench.records import make_record
from invobench.bench.suite import LoadedSuite, Suite, SuiteError, load_suite
from invobench.env import fingerprint
from invobench.registry import PluginError, all_variants, get, load_plugins
from invobench.results import SCHEMA_VERSION, Record, Roofline, RunHeader, SuiteRef, ResultsFileError, read_results

log = logging.getLogger(__name__)

#: options that define which items a run holds; `--resume` refuses a file written with other values
SHAPING_OPTIONS = ("device", "variants", "dtype", "quick", "shard")

__all__ = ["RunConfig", "RunSummary", "Runner", "RunnerError", "run_suite", "default_out", "RunEvent", "RunStarted",
           "StatusChanged", "RooflineMeasured", "RecordWritten"]


@dataclass
class RunConfig:
    suite: str
    out: Optional[Path] = None
    device: Optional[str] = None
    variants: Optional[list[str]] = None
    dtypes: Optional[list[str]] = None
    resume: bool = False
    shard: Optional[str] = None
    mem_budget: Optional[str] = None
    quick: bool = False
    threads: Optional[int] = None
    dry_run: bool = False
    #: measure each item's BASE twin (`<variant>@base`, invobench.bench.ab) in the same case group
    ab: bool = False


@dataclass
class RunSummary:
    out: Optional[Path]
    records: list[Record] = field(default_factory=list)
    rooflines: list[Roofline] = field(default_factory=list)
    wall_s: float = 0.0
    already_done: int = 0
    planned: list[tuple[BenchItem, str]] = field(default_factory=list)
    repaired: bool = False


# ---- what the runner reports ---------------------------------------------------------------------

@dataclass(frozen=True)
class RunStarted:
    """Measuring starts: `total` records to produce, `already_done` kept from a resumed file."""

    out: Path
    total: int
    already_done: int


@dataclass(frozen=True)
class StatusChanged:
    """What the runner is doing now (measuring a roofline, a case group)."""

    text: str


@dataclass(frozen=True)
class RooflineMeasured:
    line: Roofline


@dataclass(frozen=True)
class RecordWritten:
    """A record was appended to the results file (measured, skipped or failed)."""

    record: Record


RunEvent = Union[RunStarted, StatusChanged, RooflineMeasured, RecordWritten]


def _ignore(event: RunEvent) -> None:
    pass


# ---- the run --------------------------------------------------------------------------------------

class Runner:
    def __init__(self, config: RunConfig, on_event: Optional[Callable[[RunEvent], None]] = None):
        self.config = config
        self.on_event = on_event or _ignore
        #: (variant key, case) -> reason, for variants whose earlier pass of the case hit the time guard
        self.time_guarded: dict[tuple[str, str], str] = {}

    # ---- planning --------------------------------------------------------------------------
    def load(self) -> tuple[LoadedSuite, list[CaseGroup]]:
        try:
            load_plugins()
        except PluginError as exc:
            raise RunnerError(str(exc)) from exc
        known = [v.key for v in all_variants()]
        loaded = load_suite(self.config.suite, known)
        if self.config.quick:
            loaded = loaded.model_copy(update={"suite": quick_budget(loaded.suite)})
        elif self.config.ab:
            loaded = loaded.model_copy(update={"suite": ab_budget(loaded.suite)})
        try:
            items = expand_suite(loaded, known, variants=self.config.variants, device=self.config.device,
                                 dtypes=self.config.dtypes)
        except SuiteError as exc:
            raise RunnerError(str(exc)) from exc
        if self.config.ab:
            items = add_twins(items, set(known))
        groups = group_items(items)
        if self.config.shard:
            try:
                k, n = parse_shard(self.config.shard)
            except ValueError as exc:
                raise RunnerError(str(exc)) from exc
            groups = shard_groups(groups, k, n)
        return loaded, groups

    def options(self) -> dict[str, Any]:
        c = self.config
        return {"device": c.device, "variants": c.variants, "dtype": c.dtypes, "quick": c.quick, "shard": c.shard,
                "mem_budget": c.mem_budget, "threads": c.threads, "ab": c.ab, "argv": sys.argv[1:],
                # provenance for shared machines: a busy host explains noisy samples
                "host_load_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}

    def skip_reasons(self, item: BenchItem) -> list[str]:
        variant = get(item.key)
        return variant.why_not(item.case, backward=item.pass_ != "fwd")

    # ---- the run ---------------------------------------------------------------------------
    def run(self) -> RunSummary:
        t_start = time.perf_counter()
        loaded, groups = self.load()
        suite = loaded.suite
        host_available = available_memory_bytes()
        mem_text = self.config.mem_budget or (str(suite.mem_budget) if suite.mem_budget is not None else None)
        try:
            host_budget = parse_mem_budget(mem_text, host_available) if mem_text else int(DEFAULT_MEM_FRACTION * host_available)
        except ValueError as exc:
            raise RunnerError(str(exc)) from exc
        self.host_budget = host_budget
        items = [item for g in groups for item in g.items]
        #: the memory guard's estimate of every item, made once: the up-front check, the dry run and the guard read it
        self.estimates: dict[str, Optional[int]] = {item.case_id: _estimate(item) for item in items}
        self._refuse_budget_below_every_case(items, host_budget, mem_text)
        summary = RunSummary(out=None)
        if self.config.dry_run:
            for item in items:
                reasons = self.skip_reasons(item)
                if not reasons and item.case.device != "cuda":
                    estimate = self.estimates[item.case_id]
                    if estimate is not None and estimate > host_budget:
                        reasons = [_guard_reason(estimate, host_budget)]
                summary.planned.append((item, "skip: " + "; ".join(reasons) if reasons else "run"))
            return summary

        out = Path(self.config.out) if self.config.out else default_out(loaded.name)
        summary.out = out
        ensure_writable(out)
        with lock(out) as held:  # one writer for the whole run: a second run or resume on `out` is refused
            if held.took_over:
                log.warning("took over the lock of %s left by %s, which is no longer running", out,
                            held.took_over.get("pid", "a process"))
            self._run_locked(out, loaded, groups, items, host_budget, summary)
        summary.wall_s = time.perf_counter() - t_start
        return summary

    def _refuse_budget_below_every_case(self, items: list[BenchItem], budget: int, given: Optional[str]) -> None:
        """A host budget below the smallest CPU case's estimated need would skip everything: refuse it up front."""
        needs = [(self.estimates[item.case_id], item) for item in items
                 if item.case.device != "cuda" and self.estimates[item.case_id] is not None]
        if not needs:
            return
        smallest, item = min(needs, key=lambda pair: pair[0])
        if smallest > budget:
            raise RunnerError(f"the memory budget {fmt_bytes(budget)} ({'--mem-budget ' + given if given else 'the default'}) "
                              f"is below what the smallest case needs ({fmt_bytes(smallest)}, {item.describe()}): every "
                              f"case would be skipped; give at least --mem-budget {fmt_bytes(smallest * 1.25).replace(' ', '')}")

    def _run_locked(self, out: Path, loaded: LoadedSuite, groups: list[CaseGroup], items: list[BenchItem],
                    host_budget: int, summary: RunSummary) -> None:
        suite = loaded.suite
        done: set[str] = set()
        rooflines: dict[tuple[str, str], Roofline] = {}
        options = {**self.options(), "mem_budget_bytes": host_budget,
                   "budget": suite.budget.model_dump(), "roofline": suite.roofline.model_dump()}
        if self.config.resume and out.exists():
            try:
                previous = read_results(out, repair=True)
            except ResultsFileError as exc:
                raise RunnerError(f"cannot resume: {exc}") from exc
            summary.repaired = previous.dropped_partial_line
            ref = previous.header.suite
            if ref.sha256 != loaded.sha256 or ref.name != loaded.name:
                raise RunnerError(f"cannot resume {out}: it holds a run of suite {ref.name!r} (sha256 {ref.sha256[:12]}), "
                                  f"not of {loaded.name!r} as it is now (sha256 {loaded.sha256[:12]}); "
                                  "use another --out for this suite")
            for key in SHAPING_OPTIONS:
                if previous.header.options.get(key) != options[key]:
                    raise RunnerError(f"cannot resume {out}: it was run with {key}={previous.header.options.get(key)!r}, "
                                      f"this run has {key}={options[key]!r}; rerun with the same options or another --out")
            done = {r.case_id for r in previous.records}
            rooflines = {(r.device, r.dtype): r for r in previous.rooflines}
            summary.already_done = len(done & {i.case_id for i in items})
        else:
            if out.exists() and out.stat().st_size > 0 and not out.is_char_device():
                raise RunnerError(f"--out {out} already exists; pass --resume to continue that run, or choose another path")
            header = RunHeader(
                run_id=uuid.uuid4().hex, schema_version=SCHEMA_VERSION,
                suite=SuiteRef(name=loaded.name, path=loaded.path, sha256=loaded.sha256, config=loaded.config()),
                fingerprint=fingerprint(), options=options,
            )
            write_line(out, header)

        pending_groups = []
        for g in groups:
            todo = [i for i in g.items if i.case_id not in done]
            if todo:
                pending_groups.append(CaseGroup(g.case, g.pass_, todo))
        n_pending = sum(len(g.items) for g in pending_groups)
        self.on_event(RunStarted(out, n_pending, summary.already_done))
        with tempfile.TemporaryDirectory(prefix="invobench-worker-") as tmp:
            worker = WorkerProcess(Path(tmp), self.config.threads, rss_limit=host_budget)
            try:
                self._run_groups(pending_groups, suite, out, worker, rooflines, summary)
            except WorkerStartError as exc:
                raise RunnerError(str(exc)) from exc
            except BaseException:  # Ctrl-C, SIGTERM, a write error: stop measuring now, not after the group
                worker.kill()
                raise
            finally:
                worker.stop()
        summary.rooflines = list(rooflines.values())

    def _emit(self, out: Path, record: Record, summary: RunSummary) -> None:
        write_line(out, record)
        summary.records.append(record)
        self.on_event(RecordWritten(record))

    def _guard(self, out: Path, summary: RunSummary, runnable: list, budget: int) -> list:
        """Skip (with a record) the items whose estimated peak exceeds `budget`; returns the rest."""
        fits = []
        for item, estimate in runnable:
            if estimate is not None and estimate > budget:
                self._emit(out, make_record(item, "skipped", reasons=[_guard_reason(estimate, budget)], estimate=estimate),
                           summary)
            else:
                fits.append((item, estimate))
        return fits

    def _run_groups(self, groups: list[CaseGroup], suite: Suite, out: Path, worker: WorkerProcess,
                    rooflines: dict, summary: RunSummary) -> None:
        # Skips first (why_not, and the host-memory guard for CPU cases), so that nothing starts a
        # worker when nothing can run; CUDA cases are guarded once the worker has reported the GPU's memory.
        plan: list[tuple[CaseGroup, list[tuple[BenchItem, Optional[int]]]]] = []
        for g in groups:
            runnable = []
            for item in g.items:
                reasons = self.skip_reasons(item)
                if reasons:
                    self._emit(out, make_record(item, "skipped", reasons=reasons), summary)
                    continue
                runnable.append((item, self.estimates[item.case_id]))
            if g.case.device != "cuda":
                runnable = self._guard(out, summary, runnable, self.host_budget)
            if runnable:
                plan.append((g, runnable))
        if not plan:
            return
        worker.start()
        cuda_total = worker.hello.get("cuda", {}).get("total_bytes")
        if cuda_total:
            gpu_budget = int(DEFAULT_GPU_FRACTION * cuda_total)
            if self.config.mem_budget:
                gpu_budget = parse_mem_budget(self.config.mem_budget, cuda_total)
            plan = [(g, self._guard(out, summary, runnable, gpu_budget) if g.case.device == "cuda" else runnable)
                    for g, runnable in plan]
            plan = [(g, runnable) for g, runnable in plan if runnable]

        # the roofline of every (device, dtype) that will run, measured once per run (kept on --resume)
        for device, dtype in dict.fromkeys((g.case.device, g.case.dtype) for g, _ in plan):
            if (device, dtype) in rooflines:
                continue
            self.on_event(StatusChanged(f"measuring the roofline of {device} {dtype}"))
            if not worker.alive:
                worker.start()
            worker.send({"kind": "roofline", "device": device, "dtype": dtype, "config": suite.roofline.model_dump()})
            reply = worker.receive(max(suite.budget.timeout_s, 60))
            if isinstance(reply, WorkerDeath):
                line = Roofline(device=device, dtype=dtype, error=f"{reply.status}: {reply.reason}")
            else:
                line = Roofline(**reply["roofline"])
            rooflines[(device, dtype)] = line
            write_line(out, line)
            self.on_event(RooflineMeasured(line))

        for g, runnable in plan:
            budget = self.host_budget if g.case.device != "cuda" else gpu_budget
            for chunk in pack_by_memory(runnable, budget):
                self._run_chunk(g, chunk, suite, out, worker, rooflines.get((g.case.device, g.case.dtype)), summary)

    def _run_chunk(self, group: CaseGroup, chunk: list[tuple[BenchItem, Optional[int]]], suite: Suite, out: Path,
                   worker: WorkerProcess, roofline: Optional[Roofline], summary: RunSummary) -> None:
        pending = {}
        for item, estimate in chunk:
            slow = self.time_guarded.get((item.key, _case_key(item)))
            if slow:  # an earlier pass of this variant and case hit the time guard: its other passes are longer
                self._emit(out, make_record(item, "skipped", reasons=[slow], estimate=estimate), summary)
            else:
                pending[item.key] = (item, estimate)
        seed = int(group.group_id[:8], 16)
        while pending:
            if not worker.alive:
                worker.start()
            since = worker.log_offset()
            self.on_event(StatusChanged(f"{group.pass_} {group.case.label()}: {', '.join(pending)}"))
            request = {"kind": "group", "group_id": group.group_id, "case": group.case.as_dict(), "pass": group.pass_,
                       "variants": list(pending), "seed": seed,
                       # an A/B run: each variant and its BASE twin sample in the same rounds until both stop
                       "ties": [[k, k + AB_SUFFIX] for k in pending if k + AB_SUFFIX in pending] if self.config.ab else [],
                       "policy": {k: getattr(suite.budget, k) for k in ("warmup_s", "case_s", "min_samples", "max_samples", "rel_iqr", "max_call_s")},
                       "timer": {"l2_flush": suite.budget.l2_flush, "cuda_graphs": suite.budget.cuda_graphs}}
            worker.send(request)
            while True:  # until the worker says the group is done (or dies): replies must not leak into the next group
                reply = worker.receive(suite.budget.timeout_s, since)
                if isinstance(reply, WorkerDeath):
                    key = reply.board.split("\t", 1)[0]
                    if key not in pending:  # died between variants: blame the first one still pending
                        key = next(iter(pending))
                    item, estimate = pending.pop(key)
                    phase = reply.board.split("\t")[1] if "\t" in reply.board else "?"
                    reason = f"{reply.reason} (during {phase} of {key})"
                    self._emit(out, make_record(item, reply.status, reasons=[reason], error=reason,
                                                stderr_tail=reply.stderr_tail, estimate=estimate), summary)
                    break
                if reply.get("kind") == "result" and reply.get("key") in pending:
                    item, estimate = pending.pop(reply["key"])
                    if any(r.startswith("time guard:") for r in reply.get("reasons") or []):
                        self.time_guarded[(item.key, _case_key(item))] = (
                            f"time guard: its {item.pass_} pass on this case already took "
                            f"{reply['info']['time_guard_call_ms'] / 1e3:.2f} s per call (budget.max_call_s = {suite.budget.max_call_s:g} s)")
                    self._emit(out, make_record(item, reply.get("status", "ok"), measurement=reply, roofline=roofline,
                                                estimate=estimate), summary)
                elif reply.get("kind") == "group_done":
                    for key, (item, estimate) in list(pending.items()):
                        self._emit(out, make_record(item, "error", error="the worker finished the group without a result "
                                                    "for this variant", estimate=estimate), summary)
                    pending.clear()
                    break


def _estimate(item: BenchItem) -> Optional[int]:
    return estimate_peak_bytes(item.family, plain_variant(item.variant), item.case, item.pass_)


def _guard_reason(estimate: int, budget: int) -> str:
    return f"memory guard: estimated peak {fmt_bytes(estimate)} exceeds the budget {fmt_bytes(budget)} (--mem-budget)"


def _case_key(item: BenchItem) -> str:
    return json.dumps(item.case.as_dict(), sort_keys=True)


def run_suite(config: RunConfig, on_event: Optional[Callable[[RunEvent], None]] = None) -> RunSummary:
    """Run a suite; raises RunnerError (or SuiteError) with a message for the user."""
    return Runner(config, on_event).run()
