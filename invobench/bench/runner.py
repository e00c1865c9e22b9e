"""Orchestration of a run: suite → items → worker subprocesses → records appended to a JSON Lines file.

- Every case group (the variants of one case and pass) runs in a worker subprocess; a segfault, an
  abort, a kill or a hang there becomes a `crashed` / `oom` / `timeout` record for the variant the
  worker's status board names, with the tail of the worker's output, and the sweep goes on in a fresh
  worker. Python exceptions come back as `error` (or `oom`) records.
- Variants that can't run a case (`why_not`) and cases whose estimated peak exceeds the memory
  budget become `skipped` records with the reasons. A watchdog kills a worker whose resident memory
  passes the budget (`oom`).
- Before any timing: the output is created (or, with `resume`, validated and repaired) and the header
  is written, so an unwritable path or a full disk fails at once. Then the roofline of every
  (device, dtype) of the run is measured and written, then each record is appended as it finishes.
- `shard k/n` takes every n-th case group; `merge_shards` joins shard files into one run.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from invobench.bench.ab import SUFFIX as AB_SUFFIX, add_twins, plain_variant
from invobench.bench.cases import BenchItem, CaseGroup, expand_suite, group_items, parse_shard, shard_groups
from invobench.bench.memory import estimate_peak_bytes
from invobench.bench.roofline import roofline_fields
from invobench.bench.suite import LoadedSuite, Suite, SuiteError, load_suite
from invobench.bench.timing import summarize
from invobench.bench.worker import StatusBoard, load_plugins
from invobench.results import (
    SCHEMA_VERSION, MemoryInfo, Record, Roofline, RooflineFields, RunHeader, Stats, SuiteRef, TimerInfo,
    ResultsFileError, append_line, read_results,
)

log = logging.getLogger(__name__)

#: host memory budget when neither --mem-budget nor the suite gives one: this share of MemAvailable
DEFAULT_MEM_FRACTION = 0.6
#: GPU memory budget default: this share of the device's total memory
DEFAULT_GPU_FRACTION = 0.9
#: a worker killed by SIGKILL that we did not send counts as `oom` when its last RSS was above this share of the budget
OOM_KILL_RSS_SHARE = 0.5
#: options that define which items a run holds; `--resume` refuses a file written with other values
SHAPING_OPTIONS = ("device", "variants", "dtype", "quick", "shard")
MIN_FREE_BYTES = 1 << 20


class RunnerError(RuntimeError):
    """A run that cannot start or go on; the message says why and what to do."""


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


# ---- small pure helpers ------------------------------------------------------------------------

_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?)(b?)\s*$", re.IGNORECASE)


def parse_mem_budget(text: str, available_bytes: int) -> int:
    """'60%' or '0.6' → that share of `available_bytes`; '8GiB', '8G' (binary), '8GB' (decimal), '123' → bytes."""
    s = str(text).strip()
    try:
        if s.endswith("%"):
            share = float(s[:-1]) / 100
            if not 0 < share <= 1:
                raise ValueError
            return int(share * available_bytes)
        value = float(s)
        if 0 < value <= 1:
            return int(value * available_bytes)
        if value > 1 and value == int(value):
            return int(value)
    except ValueError:
        pass
    m = _SIZE.match(s)
    if m and m.group(2):
        number, unit, binary, b = float(m.group(1)), m.group(2).lower(), m.group(3), m.group(4)
        power = "kmgt".index(unit) + 1
        base = 1000 if (b and not binary) else 1024
        return int(number * base**power)
    raise ValueError(f"--mem-budget {text!r} is not a size: use a share of available memory (60%, 0.6) "
                     "or an amount (8GiB, 512MiB, 8GB, 8G)")


def available_memory_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def rss_bytes(pid: int) -> Optional[int]:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def fmt_bytes(n: Optional[float]) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


#: samples per side an A/B run takes at least: the paired signed-rank test of n rounds cannot reach
#: p < 0.05 / 36 (Holm over a smoke suite's 36 cases) with fewer than ~12; 5 pairs cannot go below 0.0625
AB_MIN_SAMPLES = 20


def ab_budget(suite: Suite) -> Suite:
    """An A/B run's budget: at least AB_MIN_SAMPLES samples of every variant and twin."""
    b = suite.budget
    n = max(b.min_samples, AB_MIN_SAMPLES)
    budget = b.model_copy(update=dict(min_samples=n, max_samples=max(b.max_samples, n)))
    return suite.model_copy(update=dict(budget=budget))


def quick_budget(suite: Suite) -> Suite:
    """`--quick`: short warm-up and sampling, few samples, a small roofline — numbers for a smoke check only."""
    b, r = suite.budget, suite.roofline
    budget = b.model_copy(update=dict(warmup_s=min(b.warmup_s, 0.05), case_s=min(b.case_s, 0.2), min_samples=3,
                                      max_samples=min(b.max_samples, 20)))
    roof = r.model_copy(update=dict(copy_mib=min(r.copy_mib, 64), matmul_max_n=min(r.matmul_max_n, 1024),
                                    time_s=min(r.time_s, 0.1)))
    return suite.model_copy(update=dict(budget=budget, roofline=roof))


def pass_counts(counts, pass_: str) -> tuple[Optional[int], Optional[int]]:
    """(MACs, minimum bytes) of a pass: fwd, bwd, or both for fwd+bwd and train (optimizer update not counted)."""
    if counts is None:
        return None, None
    if pass_ == "fwd":
        return counts.macs_fwd, counts.min_bytes_fwd
    if pass_ == "bwd":
        return counts.macs_bwd, counts.min_bytes_bwd
    both = None if counts.min_bytes_fwd is None or counts.min_bytes_bwd is None else counts.min_bytes_fwd + counts.min_bytes_bwd
    return counts.macs_fwd + counts.macs_bwd, both


def analytic_counts_or_none(item: BenchItem):
    """The spec's counts of an item, or None where no formula exists (then the record carries none)."""
    from invobench.counting import analytic_counts

    try:
        return analytic_counts(item.family, plain_variant(item.variant), item.case)
    except (ValueError, KeyError, ZeroDivisionError) as exc:
        first_error = exc
    if item.family == "model":  # whole networks count themselves (spec §5), outside counting/
        try:
            from invobench.models.workloads import model_counts

            return model_counts(plain_variant(item.variant), item.case)
        except (ImportError, ValueError, KeyError) as exc:
            first_error = exc
    log.info("no analytic counts for %s: %s", item.key, first_error)
    return None


def make_record(item: BenchItem, status: str, *, reasons: Optional[list[str]] = None, measurement: Optional[dict] = None,
                roofline: Optional[Roofline] = None, error: Optional[str] = None, stderr_tail: Optional[str] = None,
                estimate: Optional[int] = None) -> Record:
    """A results record for an item: counts always; samples, stats, memory and roofline fields when measured."""
    m = measurement or {}
    counts = analytic_counts_or_none(item)
    macs, min_bytes = pass_counts(counts, item.pass_)
    flops = 2 * macs if macs is not None else None
    samples = [float(s) for s in m.get("samples_ms", [])]
    stats = Stats(**summarize(samples)) if samples else None
    mem = dict(m.get("memory") or {})
    memory = MemoryInfo(min_bytes=min_bytes, **{k: v for k, v in mem.items() if k in MemoryInfo.model_fields})
    roof = None
    if stats is not None:
        roof = RooflineFields(**roofline_fields(
            flops, min_bytes, stats.median_ms,
            roofline.copy_bandwidth_gbps if roofline else None, roofline.matmul_peak_flops if roofline else None))
    info = dict(m.get("info") or {})
    if estimate is not None:
        info.setdefault("estimated_peak_bytes", estimate)
    params = counts.params if counts is not None else info.get("module_params")
    return Record(
        case_id=item.case_id, family=item.family, variant=item.variant, pass_=item.pass_, case=item.case.as_dict(),
        label=item.case.label(), status=status, reasons=list(reasons or m.get("reasons") or []),
        error=error if error is not None else m.get("error"),
        stderr_tail=stderr_tail if stderr_tail is not None else m.get("stderr_tail"),
        samples_ms=samples, stats=stats, timer=TimerInfo(**m["timer"]) if m.get("timer") else None,
        counts=counts.as_dict() if counts is not None else None, flops=flops, macs=macs, params=params,
        memory=memory, roofline=roof, info=info, started_utc=m.get("started_utc"), duration_s=m.get("duration_s"),
    )


def summary_line(record: Record) -> str:
    """One line per finished record: status, variant, pass, case, median ± IQR/median, GB/s, % of roofline."""
    key = f"{record.family}.{record.variant}"
    head = f"{record.status:<8} {key:<24} {record.pass_:<7} {record.label}"
    if record.stats is not None and record.status == "ok":
        s = record.stats
        text = f"{head}  {s.median_ms:9.3f} ms ±{100 * s.iqr_ms / s.median_ms:4.1f}% n={s.n}"
        r = record.roofline
        if r is not None and r.achieved_gbps is not None:
            text += f"  {r.achieved_gbps:7.2f} GB/s"
        if r is not None and r.pct_of_roofline is not None:
            text += f"  {r.pct_of_roofline:5.1f}% of roofline ({r.bound_by})"
        return text
    why = record.error or "; ".join(record.reasons)
    return f"{head}  {why[:160]}"


# ---- the worker process, seen from the runner -----------------------------------------------------

@dataclass
class WorkerDeath:
    """The worker stopped without answering: how, and what its status board said it was doing."""

    status: str            # crashed | oom | timeout
    reason: str
    board: str
    stderr_tail: str


class WorkerProcess:
    """A `python -m invobench.bench.worker` child: requests on its stdin, replies on a private pipe."""

    def __init__(self, tmpdir: Path, threads: Optional[int] = None, rss_limit: Optional[int] = None):
        self.tmpdir, self.threads, self.rss_limit = tmpdir, threads, rss_limit
        self.proc: Optional[subprocess.Popen] = None
        self.count = 0
        self.hello: dict = {}
        self.env: dict[str, str] = {}  # the worker's environment (env.worker_environment), set by start()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout_s: float = 300) -> None:
        self.count += 1
        self.board_path = str(self.tmpdir / f"board-{self.count}")
        StatusBoard.create(self.board_path)
        self.log_path = self.tmpdir / f"worker-{self.count}.log"
        self.log_file = open(self.log_path, "wb")
        read_fd, write_fd = os.pipe()
        cmd = [sys.executable, "-m", "invobench.bench.worker", "--result-fd", str(write_fd), "--board", self.board_path]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        # A session of its own: Ctrl-C reaches the runner only, and a kill takes the worker's children too.
        from invobench.env import worker_environment

        self.env = worker_environment()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     pass_fds=(write_fd,), start_new_session=True, env=self.env)
        os.close(write_fd)
        self.read_fd, self.buffer, self.last_rss = read_fd, b"", 0
        reply = self.receive(timeout_s)
        if isinstance(reply, WorkerDeath) or reply.get("kind") != "hello":
            tail = reply.stderr_tail if isinstance(reply, WorkerDeath) else str(reply)
            raise RunnerError(f"the benchmark worker failed to start:\n{tail}")
        self.hello = reply

    def log_offset(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_tail(self, since: int = 0, chars: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(since)
                data = fh.read()
        except OSError:
            return ""
        text = data.decode(errors="replace")
        # the profiler's USDT chatter is noise in a crash report
        text = "\n".join(line for line in text.splitlines() if "USDT:" not in line)
        return text[-chars:]

    def send(self, obj: dict) -> bool:
        try:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode())
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def receive(self, stall_timeout_s: float, log_since: int = 0) -> "dict | WorkerDeath":
        """The next reply, or how the worker died. Times out after `stall_timeout_s` without progress
        (no reply and no change on the status board)."""
        last_board, last_progress = None, time.monotonic()
        while True:
            if b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                return json.loads(line)
            ready, _, _ = select.select([self.read_fd], [], [], 0.1)
            if ready:
                chunk = os.read(self.read_fd, 1 << 16)
                if chunk:
                    self.buffer += chunk
                    continue
            if self.proc.poll() is not None:
                if ready or not self._drain():
                    return self._death(None, log_since)
                continue
            board = StatusBoard.read(self.board_path)
            if board != last_board:
                last_board, last_progress = board, time.monotonic()
            rss = rss_bytes(self.proc.pid)
            if rss is not None:
                self.last_rss = rss
                if self.rss_limit and rss > self.rss_limit:
                    self.kill()
                    return self._death("oom", log_since, f"the worker's resident memory ({fmt_bytes(rss)}) exceeded the "
                                                         f"memory budget ({fmt_bytes(self.rss_limit)}); it was killed"
                                                         + self._heap_hint())
            if time.monotonic() - last_progress > stall_timeout_s:
                self.kill()
                return self._death("timeout", log_since, f"no progress for {stall_timeout_s:g} s (the suite's "
                                                         "budget.timeout_s); the worker was killed")

    def _heap_hint(self) -> str:
        """What to try when the workers' heap setting holds the memory (env.CPU_HEAP_TUNABLES), else ''."""
        from invobench.env import CPU_HEAP_TUNABLES

        if self.env.get("GLIBC_TUNABLES") != CPU_HEAP_TUNABLES:
            return ""
        return (" (a case's variants keep their freed large blocks on the heap until the case ends, which "
                "can hold more than the largest of them needs: GLIBC_TUNABLES= returns them at once, at the "
                "cost of zero-filled pages in every call; or raise --mem-budget)")

    def _drain(self) -> bool:
        """Read whatever the exited worker left in the pipe; True if there was something."""
        ready, _, _ = select.select([self.read_fd], [], [], 0)
        if not ready:
            return False
        chunk = os.read(self.read_fd, 1 << 16)
        self.buffer += chunk
        return bool(chunk)

    def _death(self, status: Optional[str], log_since: int, reason: Optional[str] = None) -> WorkerDeath:
        code = self.proc.wait()
        board = StatusBoard.read(self.board_path)
        if status is None:
            if code < 0:
                sig = signal.Signals(-code)
                if sig == signal.SIGKILL and self.rss_limit and self.last_rss > OOM_KILL_RSS_SHARE * self.rss_limit:
                    status = "oom"
                    reason = (f"the worker was killed by SIGKILL (the kernel's OOM killer's signal) with "
                              f"{fmt_bytes(self.last_rss)} resident")
                else:
                    status = "crashed"
                    reason = f"the worker died with {sig.name} (signal {-code})"
            else:
                status, reason = "crashed", f"the worker exited with code {code} in the middle of a case"
        self.close()
        return WorkerDeath(status, reason or status, board, self.log_tail(log_since))

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()

    def close(self) -> None:
        if getattr(self, "read_fd", None) is not None:
            try:
                os.close(self.read_fd)
            except OSError:
                pass
            self.read_fd = None
        if getattr(self, "log_file", None) is not None:
            self.log_file.close()
            self.log_file = None
        if self.proc is not None and self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:  # a dead worker's pipe
                pass

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.alive:
            self.send({"kind": "exit"})
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc.wait()
        self.close()
        self.proc = None


# ---- the run --------------------------------------------------------------------------------------

def _known_variants() -> list[str]:
    from invobench.registry import all_variants

    return [v.key for v in all_variants()]


def default_out(suite_name: str) -> Path:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Path("out") / f"{suite_name}-{stamp}.jsonl"


def _ensure_writable(out: Path) -> None:
    """Fail before any timing when the results cannot be written (no directory, no permission, no space)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunnerError(f"cannot create the directory of --out {out}: {exc.strerror or exc}") from exc
    try:
        st = os.statvfs(out.parent)
        free = st.f_bavail * st.f_frsize
    except OSError:
        free = None
    if free is not None and free < MIN_FREE_BYTES:
        raise RunnerError(f"only {fmt_bytes(free)} free on the file system of --out {out}; need at least "
                          f"{fmt_bytes(MIN_FREE_BYTES)}. Free some space or choose another --out")


def _write_line(out: Path, line) -> None:
    try:
        append_line(out, line)
    except OSError as exc:
        raise RunnerError(f"cannot write results to {out}: {exc.strerror or exc}. Every line written so far is "
                          "intact; free space (or fix the path) and rerun with --resume") from exc


class Runner:
    def __init__(self, config: RunConfig, console=None, on_record: Optional[Callable[[Record], None]] = None):
        self.config = config
        self.console = console
        self.on_record = on_record or (lambda record: None)
        #: (variant key, case) -> reason, for variants whose earlier pass of the case hit the time guard
        self.time_guarded: dict[tuple[str, str], str] = {}

    # ---- planning --------------------------------------------------------------------------
    def load(self) -> tuple[LoadedSuite, list[CaseGroup]]:
        load_plugins()
        known = _known_variants()
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
        from invobench.registry import get

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
        summary = RunSummary(out=None)
        if self.config.dry_run:
            for item in items:
                reasons = self.skip_reasons(item)
                summary.planned.append((item, "skip: " + "; ".join(reasons) if reasons else "run"))
            return summary

        out = Path(self.config.out) if self.config.out else default_out(loaded.name)
        summary.out = out
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
            _ensure_writable(out)
        else:
            if out.exists() and out.stat().st_size > 0 and not out.is_char_device():
                raise RunnerError(f"--out {out} already exists; pass --resume to continue that run, or choose another path")
            _ensure_writable(out)
            from invobench.env import fingerprint

            header = RunHeader(
                run_id=uuid.uuid4().hex, schema_version=SCHEMA_VERSION,
                suite=SuiteRef(name=loaded.name, path=loaded.path, sha256=loaded.sha256, config=loaded.config()),
                fingerprint=fingerprint(), options=options,
            )
            _write_line(out, header)

        pending_groups = []
        for g in groups:
            todo = [i for i in g.items if i.case_id not in done]
            if todo:
                pending_groups.append(CaseGroup(g.case, g.pass_, todo))
        n_pending = sum(len(g.items) for g in pending_groups)
        self._progress_start(n_pending, summary.already_done)
        with tempfile.TemporaryDirectory(prefix="invobench-worker-") as tmp:
            worker = WorkerProcess(Path(tmp), self.config.threads, rss_limit=host_budget)
            try:
                self._run_groups(pending_groups, suite, out, worker, rooflines, summary)
            except BaseException:  # Ctrl-C, SIGTERM, a write error: stop measuring now, not after the group
                worker.kill()
                raise
            finally:
                worker.stop()
                self._progress_stop()
        summary.rooflines = list(rooflines.values())
        summary.wall_s = time.perf_counter() - t_start
        return summary

    def _emit(self, out: Path, record: Record, summary: RunSummary) -> None:
        _write_line(out, record)
        summary.records.append(record)
        self.on_record(record)
        self._progress_advance(record)

    def _guard(self, out: Path, summary: RunSummary, runnable: list, budget: int) -> list:
        """Skip (with a record) the items whose estimated peak exceeds `budget`; returns the rest."""
        fits = []
        for item, estimate in runnable:
            if estimate is not None and estimate > budget:
                reason = (f"memory guard: estimated peak {fmt_bytes(estimate)} exceeds the budget "
                          f"{fmt_bytes(budget)} (--mem-budget)")
                self._emit(out, make_record(item, "skipped", reasons=[reason], estimate=estimate), summary)
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
                runnable.append((item, estimate_peak_bytes(item.family, plain_variant(item.variant), item.case, item.pass_)))
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
            self._status(f"measuring the roofline of {device} {dtype}")
            if not worker.alive:
                worker.start()
            worker.send({"kind": "roofline", "device": device, "dtype": dtype, "config": suite.roofline.model_dump()})
            reply = worker.receive(max(suite.budget.timeout_s, 60))
            if isinstance(reply, WorkerDeath):
                line = Roofline(device=device, dtype=dtype, error=f"{reply.status}: {reply.reason}")
            else:
                line = Roofline(**reply["roofline"])
            rooflines[(device, dtype)] = line
            _write_line(out, line)
            self._roofline_line(line)

        for g, runnable in plan:
            budget = self.host_budget if g.case.device != "cuda" else gpu_budget
            for chunk in _pack_by_memory(runnable, budget):
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
            self._status(f"{group.pass_} {group.case.label()}: {', '.join(pending)}")
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

    # ---- progress (rich, on stderr) --------------------------------------------------------------
    def _progress_start(self, total: int, done: int) -> None:
        self.progress = None
        if self.console is None:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 console=self.console, transient=True)
        self.progress.start()
        self.task = self.progress.add_task("starting", total=max(total, 1))
        if done:
            self.console.print(f"resuming: {done} records already in the file")

    def _progress_advance(self, record: Record) -> None:
        if self.console is None:
            return
        style = {"ok": "green", "skipped": "dim", "error": "red", "crashed": "bold red", "oom": "bold red",
                 "timeout": "bold red"}.get(record.status, "")
        line = summary_line(record)
        self.console.print(line, style=style, highlight=False, markup=False, soft_wrap=True)
        if self.progress is not None:
            self.progress.advance(self.task)

    def _status(self, text: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=text[:60])

    def _roofline_line(self, line: Roofline) -> None:
        if self.console is None:
            return
        if line.error:
            self.console.print(f"roofline {line.device} {line.dtype}: not measured ({line.error})", style="red")
        else:
            self.console.print(f"roofline {line.device} {line.dtype}: copy {line.copy_bandwidth_gbps:.1f} GB/s, "
                               f"matmul peak {line.matmul_peak_flops / 1e9:.1f} GFLOP/s (n={line.matmul_n}, "
                               f"{line.threads} threads)", highlight=False)

    def _progress_stop(self) -> None:
        if getattr(self, "progress", None) is not None:
            self.progress.stop()


def _case_key(item: BenchItem) -> str:
    return json.dumps(item.case.as_dict(), sort_keys=True)


def _pack_by_memory(items: list[tuple[BenchItem, Optional[int]]], budget: int) -> list[list[tuple[BenchItem, Optional[int]]]]:
    """Split a group's variants into chunks whose summed estimates fit the budget (all of a chunk is live at once)."""
    chunks: list[list] = []
    current, used = [], 0
    for item, estimate in items:
        need = estimate or 0
        if current and used + need > budget:
            chunks.append(current)
            current, used = [], 0
        current.append((item, estimate))
        used += need
    if current:
        chunks.append(current)
    return chunks


def run_suite(config: RunConfig, console=None) -> RunSummary:
    """Run a suite; raises RunnerError (or SuiteError) with a message for the user."""
    return Runner(config, console).run()


# ---- merging shard files ----------------------------------------------------------------------------

def merge_shards(paths: list[Path], out: Path) -> tuple[int, list[str]]:
    """Join the shard files of one suite into one results file; returns (records, warnings).

    All files must come from the same suite (same sha256) and distinct shards; a case id present in
    two files is an error. The merged header is the first shard's, with every shard's run id,
    shard and fingerprint listed under options.merged_from. Roofline lines are kept from every shard
    (each shard's records were computed against its own).
    """
    if not paths:
        raise RunnerError("merge: no input files")
    files = []
    for p in paths:
        try:
            files.append(read_results(p))
        except ResultsFileError as exc:
            raise RunnerError(f"merge: {exc}") from exc
    first = files[0]
    warnings: list[str] = []
    shards = []
    for f in files:
        if f.header.suite.sha256 != first.header.suite.sha256:
            raise RunnerError(f"merge: {f.path} is a run of suite {f.header.suite.name!r} (sha256 {f.header.suite.sha256[:12]}), "
                              f"{first.path} of {first.header.suite.name!r} (sha256 {first.header.suite.sha256[:12]}); "
                              "only shards of one suite merge")
        for key in ("device", "variants", "dtype", "quick"):
            if f.header.options.get(key) != first.header.options.get(key):
                raise RunnerError(f"merge: {f.path} was run with {key}={f.header.options.get(key)!r}, {first.path} with "
                                  f"{first.header.options.get(key)!r}; shards of one run share their options")
        shards.append(f.header.options.get("shard"))
    named = [s for s in shards if s]
    if len(set(named)) != len(named):
        raise RunnerError(f"merge: the same shard appears twice: {', '.join(sorted(named))}")
    ns = {parse_shard(s)[1] for s in named}
    if len(ns) > 1:
        raise RunnerError(f"merge: shards of different splits ({', '.join(sorted(named))})")
    if ns:
        n = ns.pop()
        missing = sorted(set(range(1, n + 1)) - {parse_shard(s)[0] for s in named})
        if missing:
            warnings.append(f"shards {', '.join(f'{k}/{n}' for k in missing)} are missing; the merged run is incomplete")
    seen: dict[str, str] = {}
    records: list[Record] = []
    for f in files:
        for r in f.records:
            if r.case_id in seen:
                raise RunnerError(f"merge: case id {r.case_id} ({r.family}.{r.variant} {r.pass_} {r.label}) is in both "
                                  f"{seen[r.case_id]} and {f.path}")
            seen[r.case_id] = f.path
            records.append(r)
    options = {k: v for k, v in first.header.options.items() if k != "shard"}
    options["merged_from"] = [{"path": f.path, "run_id": f.header.run_id, "shard": f.header.options.get("shard"),
                               "fingerprint": f.header.fingerprint} for f in files]
    header = first.header.model_copy(update={"run_id": uuid.uuid4().hex, "options": options})
    if out.exists() and out.stat().st_size > 0:
        raise RunnerError(f"merge: {out} already exists; choose another output path")
    _ensure_writable(out)
    tmp = out.with_name(out.name + ".partial")
    try:
        with open(tmp, "w") as fh:
            fh.write(header.model_dump_json(by_alias=True) + "\n")
            for f in files:
                for line in f.rooflines:
                    fh.write(line.model_dump_json(by_alias=True) + "\n")
            for r in records:
                fh.write(r.model_dump_json(by_alias=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RunnerError(f"merge: cannot write {out}: {exc.strerror or exc}") from exc
    return len(records), warnings
