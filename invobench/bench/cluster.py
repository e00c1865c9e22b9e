"""One run split into shards that run as jobs through submitit (SLURM, or this machine), then merged.

`invobench run SUITE --executor slurm|local --shards N --out RUN.jsonl` (docs/cluster.md):

- The shards are the runner's own (`--shard k/N`: round-robin case groups, so every variant of a
  case runs in one shard and speedups within a case never mix machines). Each job runs
  `run_suite(shard=k/N, resume=True)` into `<out>.shards/shard-k-of-N.jsonl`, so a job that is
  resubmitted continues its file; the folder must be visible from every node (a shared file system).
- `slurm`: N jobs through `submitit.SlurmExecutor` (partition, GPUs, time limit and any other sbatch
  option). `local`: `submitit.LocalExecutor` on this machine, one shard per GPU at a time
  (CUDA_VISIBLE_DEVICES); a run that times CPU cases runs its shards one after another, because
  shards timed at once share the cores and disturb each other's numbers (`parallel` overrides).
- Progress: each shard is queued, running, done or failed, from the scheduler (sacct) and from the
  records in its file. A shard is done when its file holds every record planned for it; a job that
  ended without that failed, and its log files are named.
- The finished shards are merged into `out` (`merge_shards`), each record marked with the host and
  job that measured it (`<shard file>.jobs.jsonl` lists the jobs that wrote each file).
- `resume`: shards whose files are complete are kept, SLURM jobs still queued or running are
  waited for, the rest are resubmitted; a shard file of another suite, shard count or options is
  refused before anything is submitted.

submitit is an optional dependency (`pip install 'invobench[slurm]'`), imported only here and only
when a run asks for an executor.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Union


from invobench.bench.cases import shard_groups
from invobench.bench.merge import merge_shards
from invobench.bench.executors import (  # noqa: F401  (EXECUTORS, INSTALL_HINT: re-exported for the CLI)
    EXECUTORS, INSTALL_HINT, QUEUED_STATES, RUNNING_STATES, import_submitit, job_result, parse_slurm_options,
    visible_gpus,
)
from invobench.bench.output import RunnerError, ensure_writable, lock
from invobench.bench.runner import SHAPING_OPTIONS, RunConfig, Runner, default_out
from invobench.bench.shard_jobs import (  # noqa: F401  (re-exported: the layout's names belong to a cluster run)
    SHARD_NAME, RecordIds, ShardJob, jobs_file, read_jobs, run_shard, shard_file, shards_folder,
)
from invobench.results import ResultsFileError, parse_line, read_results

MANIFEST = "run.json"
LOGS = "logs"
#: time limit of a local job when --time-min is not given: a week, i.e. none in practice
LOCAL_TIME_MIN = 7 * 24 * 60
SLURM_TIME_MIN = 60

ShardState = Literal["queued", "running", "done", "failed"]


@dataclass
class ClusterConfig:
    executor: str
    shards: int
    partition: Optional[str] = None
    #: GPUs per SLURM job; None: 1 when the run has CUDA cases, else 0
    gpus_per_job: Optional[int] = None
    #: time limit of each job in minutes; None: 60 on SLURM, none in practice locally
    time_min: Optional[int] = None
    #: further sbatch options, "KEY=VALUE" or "KEY" (a flag): `--slurm account=proj --slurm exclusive`
    slurm: list[str] = field(default_factory=list)
    #: local executor: run every shard at once even when that shares CPU cores between timings
    parallel: bool = False
    #: seconds between looks at the jobs; None: 1 locally, 10 on SLURM (submitit spaces its sacct calls itself)
    poll_s: Optional[float] = None


# ---- what the orchestration reports ------------------------------------------------------------

@dataclass(frozen=True)
class ShardsPlanned:
    """The shards of the run: which will run, which are complete already, and how they share the machine."""

    folder: Path
    shards: int
    to_run: tuple[int, ...]
    complete: tuple[int, ...]
    note: Optional[str]


@dataclass(frozen=True)
class JobSubmitted:
    shard: str
    job_id: str
    log: Path
    gpu: Optional[int] = None
    #: a job of an earlier invocation that is still queued or running, waited for instead of resubmitted
    reattached: bool = False


@dataclass(frozen=True)
class ShardsProgress:
    """The state of every shard ("1/3" -> queued | running | done | failed) and the records in their files."""

    states: dict[str, str]
    records: int
    total: int

    def counts(self) -> dict[str, int]:
        return {s: sum(v == s for v in self.states.values()) for s in ("queued", "running", "done", "failed")}


@dataclass
class ShardOutcome:
    shard: str
    state: ShardState
    records: int
    planned: int
    job_id: Optional[str] = None
    host: Optional[str] = None
    reason: Optional[str] = None
    stdout: Optional[Path] = None
    stderr: Optional[Path] = None


@dataclass(frozen=True)
class ShardEnded:
    outcome: ShardOutcome


ClusterEvent = Union[ShardsPlanned, JobSubmitted, ShardsProgress, ShardEnded]


@dataclass
class ClusterSummary:
    out: Path
    folder: Path
    shards: list[ShardOutcome] = field(default_factory=list)
    merged_records: int = 0
    merged: bool = False
    warnings: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def failed(self) -> list[ShardOutcome]:
        return [s for s in self.shards if s.state == "failed"]


class ShardsInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) while the jobs ran; the message says what was left running and how to continue."""


# ---- the orchestration ---------------------------------------------------------------------------

@dataclass
class _Active:
    shard: int
    job: Any
    slot: Optional[int]


class ClusterRun:
    def __init__(self, config: RunConfig, cluster: ClusterConfig,
                 on_event: Optional[Callable[[ClusterEvent], None]] = None):
        if cluster.executor not in EXECUTORS:
            raise RunnerError(f"--executor {cluster.executor!r} is not one of {', '.join(EXECUTORS)}")
        if cluster.shards < 1:
            raise RunnerError(f"--shards {cluster.shards}: give at least 1")
        if config.shard:
            raise RunnerError(f"--shard {config.shard} runs one shard in this process; --executor runs all "
                              f"{cluster.shards}: give one or the other")
        if config.dry_run:
            raise RunnerError("--dry-run lists the records of one process: leave out --executor "
                              "(add --shard k/n to see one shard's)")
        if cluster.executor == "local" and (cluster.partition or cluster.slurm or cluster.gpus_per_job is not None):
            raise RunnerError("--partition, --gpus-per-job and --slurm are options of --executor slurm; "
                              "--executor local runs one shard per GPU of this machine")
        if cluster.executor == "slurm" and cluster.parallel:
            raise RunnerError("--parallel is for --executor local: SLURM jobs run at the same time anyway, "
                              "each on the resources it asks for")
        self.config, self.cluster = config, cluster
        self.readers: dict[int, RecordIds] = {}
        self.poll_s = cluster.poll_s if cluster.poll_s is not None else (1.0 if cluster.executor == "local" else 10.0)
        self.on_event = on_event or (lambda event: None)
        self.extra_sbatch = parse_slurm_options(cluster.slurm) if cluster.executor == "slurm" else {}
        self.submitit = import_submitit()

    # ---- planning --------------------------------------------------------------------------
    def plan(self) -> None:
        n = self.cluster.shards
        base = dataclasses.replace(self.config, shard=None, resume=False, dry_run=False)
        self.loaded, groups = Runner(base).load()
        if n > len(groups):
            raise RunnerError(f"--shards {n}: this run has only {len(groups)} case groups (a case and a pass with all "
                              f"its variants, the unit a shard takes); give --shards {len(groups)} or fewer")
        self.planned = {k: {i.case_id for g in shard_groups(groups, k, n) for i in g.items} for k in range(1, n + 1)}
        self.has_cuda = any(g.case.device == "cuda" for g in groups)
        self.all_cuda = all(g.case.device == "cuda" for g in groups)
        options = Runner(dataclasses.replace(base, shard=f"1/{n}")).options()
        self.identity = {"suite": self.loaded.name, "sha256": self.loaded.sha256, "shards": n,
                         **{k: options[k] for k in SHAPING_OPTIONS if k != "shard"}}

    def shard_config(self, k: int) -> RunConfig:
        n = self.cluster.shards
        return dataclasses.replace(self.config, shard=f"{k}/{n}", resume=True, dry_run=False,
                                   out=shard_file(self.folder, k, n).resolve())

    # ---- checks before anything is submitted -----------------------------------------------
    def check_folder(self) -> dict[str, Any]:
        """Refuse what this run would overwrite or mix with; returns the manifest of an earlier invocation."""
        out, folder, n = self.out, self.folder, self.cluster.shards
        manifest_path = folder / MANIFEST
        manifest: dict[str, Any] = {}
        files = sorted(p for p in folder.glob("shard-*-of-*.jsonl") if SHARD_NAME.match(p.name)) if folder.is_dir() else []
        if not self.config.resume:
            if out.exists() and out.stat().st_size > 0:
                raise RunnerError(f"--out {out} already exists; pass --resume to continue that run, or choose another path")
            if manifest_path.exists() or files:
                raise RunnerError(f"{folder} holds the shards of an earlier run: pass --resume to continue it, "
                                  "or choose another --out")
            return manifest
        if manifest_path.exists():
            try:
                manifest = json.loads(manifest_path.read_text())
            except (OSError, ValueError) as exc:
                raise RunnerError(f"cannot resume: {manifest_path} is not readable JSON ({exc}); "
                                  "move the folder away or choose another --out") from exc
            for key, value in self.identity.items():
                if key in manifest.get("run", {}) and manifest["run"][key] != value:
                    raise RunnerError(self._mismatch(manifest_path, key, manifest["run"][key], value))
        for p in files:
            k, m = map(int, SHARD_NAME.match(p.name).groups())
            if m != n:
                raise RunnerError(self._mismatch(p, "shards", m, n))
        for k in range(1, n + 1):
            self._check_shard_header(shard_file(folder, k, n), k)
        if out.exists() and out.stat().st_size > 0:
            try:
                header = read_results(out).header
            except ResultsFileError as exc:
                raise RunnerError(f"cannot resume: --out {out} is not a merge of {folder} ({exc}); "
                                  "choose another --out") from exc
            sources = header.options.get("merged_from") or []
            ours = [isinstance(s, dict) and Path(str(s.get("path"))).parent.name == folder.name
                    and SHARD_NAME.match(Path(str(s.get("path"))).name) for s in sources]
            if header.suite.sha256 != self.loaded.sha256 or not sources or not all(ours):
                raise RunnerError(f"cannot resume: --out {out} is not a merge of the shards in {folder}; "
                                  "it would be replaced: choose another --out")
        return manifest

    def _mismatch(self, where: Path, key: str, found: Any, wanted: Any) -> str:
        if key == "shards":
            return (f"cannot resume: {where} belongs to a split into {found} shards, this run asks for --shards {wanted}; "
                    f"continue it with --shards {found}, or choose another --out")
        if key == "suite":
            return (f"cannot resume: {where} belongs to a run of suite {found!r}, not of {wanted!r}; "
                    "choose another --out for this suite")
        if key == "sha256":
            return (f"cannot resume: {where} belongs to a run of this suite as it was (sha256 {str(found)[:12]}); "
                    f"the suite file has changed since (sha256 {str(wanted)[:12]}): choose another --out")
        return (f"cannot resume: {where} was run with {key}={found!r}, this run has {key}={wanted!r}; "
                "rerun with the options it was started with, or choose another --out")

    def _check_shard_header(self, path: Path, k: int) -> None:
        try:
            with open(path, "rb") as fh:
                first = fh.readline()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise RunnerError(f"cannot resume: cannot read {path}: {exc.strerror}") from exc
        if not first.strip():
            return  # an empty file: the job died before writing the header; it starts again
        try:
            header = parse_line(json.loads(first))
        except ValueError as exc:
            raise RunnerError(f"cannot resume: {path} is not a results file ({exc}); move it away or choose another --out") from exc
        if header.type != "header":
            raise RunnerError(f"cannot resume: {path} does not start with a run header; move it away or choose another --out")
        if header.suite.name != self.loaded.name:
            raise RunnerError(self._mismatch(path, "suite", header.suite.name, self.loaded.name))
        if header.suite.sha256 != self.loaded.sha256:
            raise RunnerError(f"cannot resume: {path} is a run of suite {header.suite.name!r} as it was (sha256 "
                              f"{header.suite.sha256[:12]}); the suite file has changed since (sha256 "
                              f"{self.loaded.sha256[:12]}): choose another --out for the suite as it is now")
        wanted = {**{key: self.identity[key] for key in SHAPING_OPTIONS if key != "shard"},
                  "shard": f"{k}/{self.cluster.shards}"}
        for key, value in wanted.items():
            found = header.options.get(key)
            if found != value:
                if key == "shard":
                    try:
                        total = int(str(found).split("/")[1])
                    except (IndexError, ValueError):
                        total = None
                    if total is not None and total != self.cluster.shards:
                        raise RunnerError(self._mismatch(path, "shards", total, self.cluster.shards))
                raise RunnerError(self._mismatch(path, key, found, value))

    # ---- executors -------------------------------------------------------------------------
    def make_executor(self):
        logs = self.folder / LOGS
        if self.cluster.executor == "slurm":
            ex = self.submitit.SlurmExecutor(folder=logs)
            gpus = self.cluster.gpus_per_job if self.cluster.gpus_per_job is not None else (1 if self.has_cuda else 0)
            params: dict[str, Any] = {"time": self.cluster.time_min or SLURM_TIME_MIN}
            if gpus:  # no --gpus-per-node=0: a cluster without GPUs (no gres) may refuse it
                params["gpus_per_node"] = gpus
            if self.cluster.partition:
                params["partition"] = self.cluster.partition
            if self.extra_sbatch:
                params["additional_parameters"] = dict(self.extra_sbatch)
            ex.update_parameters(**params)
        else:
            ex = self.submitit.LocalExecutor(folder=logs)
            ex.update_parameters(timeout_min=self.cluster.time_min or LOCAL_TIME_MIN)
        return ex

    def slots(self) -> tuple[list[Optional[int]], Optional[str]]:
        """Where local shards run at once (a GPU index each, or None for no GPU) and why; SLURM: no limit."""
        n = self.cluster.shards
        if self.cluster.executor == "slurm":
            note = None
            if not self.all_cuda:
                note = ("the run times CPU cases: jobs that share a node share its cores and disturb each other's "
                        "numbers; ask for whole nodes (--slurm exclusive) or for the cores (--slurm cpus-per-task=N)")
            return [None] * n, note
        gpus = visible_gpus() if self.has_cuda else []
        if self.all_cuda and gpus:
            used = gpus[:n]
            return list(used), (f"{n} shards over {len(used)} GPU(s) ({', '.join(map(str, used))}), one shard per GPU "
                                f"at a time (CUDA_VISIBLE_DEVICES)")
        if self.cluster.parallel:
            return [None] * n, (f"--parallel: {n} shards time their cases at the same time on this machine's cores; "
                                "they disturb each other's numbers")
        why = ("the run times CPU cases" if not self.has_cuda or not self.all_cuda else "no GPU is visible here")
        return [None], (f"{why}: the {n} shards run one after another, so that no two shards share this machine's "
                        "cores while timing (--parallel runs them at once, with numbers that disturb each other)")

    # ---- the run ---------------------------------------------------------------------------
    def run(self) -> ClusterSummary:
        t0 = time.perf_counter()
        self.out = Path(self.config.out) if self.config.out else default_out(Path(self.config.suite).stem)
        self.folder = shards_folder(self.out)
        self.plan()
        ensure_writable(self.out)
        self.folder.mkdir(parents=True, exist_ok=True)
        summary = ClusterSummary(out=self.out, folder=self.folder)
        # one orchestrator per shard folder; the jobs lock their own shard files
        with lock(self.folder / MANIFEST):
            manifest = self.check_folder()
            manifest["run"] = self.identity
            manifest.setdefault("jobs", {})
            manifest["executor"] = self.cluster.executor
            self.manifest = manifest
            self._write_manifest()
            self._run_jobs(summary)
            self._merge(summary)
        summary.wall_s = time.perf_counter() - t0
        return summary

    def _write_manifest(self) -> None:
        path = self.folder / MANIFEST
        tmp = path.with_name(path.name + ".partial")
        try:
            tmp.write_text(json.dumps(self.manifest, indent=1, default=str) + "\n")
            os.replace(tmp, path)
        except OSError as exc:
            raise RunnerError(f"cannot write {path}: {exc.strerror or exc}") from exc

    def _done(self, k: int) -> int:
        """How many of shard k's planned records its file holds."""
        if k not in self.readers:
            self.readers[k] = RecordIds(shard_file(self.folder, k, self.cluster.shards))
        return len(self.planned[k].intersection(self.readers[k].read()))

    def _run_jobs(self, summary: ClusterSummary) -> None:
        n = self.cluster.shards
        label = {k: f"{k}/{n}" for k in range(1, n + 1)}
        complete = [k for k in range(1, n + 1) if self._done(k) == len(self.planned[k])]
        to_run = [k for k in range(1, n + 1) if k not in complete]
        slots, note = self.slots()
        self.on_event(ShardsPlanned(self.folder, n, tuple(to_run), tuple(complete), note if to_run else None))
        outcomes: dict[int, ShardOutcome] = {k: ShardOutcome(label[k], "done", self._done(k), len(self.planned[k]))
                                             for k in complete}
        states: dict[int, str] = {k: "done" for k in complete}
        states.update({k: "queued" for k in to_run})
        active: dict[int, _Active] = {}
        pending = deque(to_run)
        executor = self.make_executor() if to_run else None
        # SLURM jobs of an earlier invocation that are still queued or running are waited for, not resubmitted
        if self.cluster.executor == "slurm":
            for k in list(pending):
                job = self._live_slurm_job(k)
                if job is not None:
                    pending.remove(k)
                    active[k] = _Active(k, job, None)
                    self.on_event(JobSubmitted(label[k], str(job.job_id), Path(job.paths.stdout), reattached=True))
        free = list(slots)
        for a in active.values():
            if a.slot in free:
                free.remove(a.slot)
        last: Optional[ShardsProgress] = None
        try:
            while pending or active:
                while pending and free:
                    k = pending.popleft()
                    slot = free.pop(0)
                    active[k] = _Active(k, self._submit(executor, k, slot), slot)
                    states[k] = "queued" if self.cluster.executor == "slurm" else "running"
                force = all(self._done(k) == len(self.planned[k]) for k in active)
                for k, a in list(active.items()):
                    state = self._job_state(a.job, force)
                    if state != "ended":
                        states[k] = state
                        continue
                    outcome = self._outcome(k, a.job)
                    outcomes[k], states[k] = outcome, outcome.state
                    del active[k]
                    free.append(a.slot)
                    self.on_event(ShardEnded(outcome))
                progress = ShardsProgress({label[k]: states[k] for k in sorted(states)},
                                          sum(self._done(k) for k in range(1, n + 1)),
                                          sum(len(v) for v in self.planned.values()))
                if progress != last:
                    self.on_event(progress)
                    last = progress
                if active and not (pending and free):
                    time.sleep(self.poll_s)
        except KeyboardInterrupt:
            raise ShardsInterrupted(self._interrupted(active, pending)) from None
        summary.shards = [outcomes[k] for k in sorted(outcomes)]

    def _submit(self, executor, k: int, slot: Optional[int]):
        n = self.cluster.shards
        if self.cluster.executor == "local":
            executor.update_parameters(gpus_per_node=1 if slot is not None else 0,
                                       visible_gpus=(slot,) if slot is not None else ())
        else:
            executor.update_parameters(job_name=f"invobench-{self.loaded.name}-{k}of{n}")
        try:
            job = executor.submit(run_shard, self.shard_config(k), self.cluster.executor)
        except Exception as exc:  # sbatch refused (a wrong partition, account or option): its message says why
            raise RunnerError(f"submitting shard {k}/{n} failed: {str(exc).strip()[-2000:]}") from exc
        self.manifest["jobs"].setdefault(str(k), []).append(
            {"job_id": str(job.job_id), "submitted_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
             "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr), "gpu": slot})
        self._write_manifest()
        self.on_event(JobSubmitted(f"{k}/{n}", str(job.job_id), Path(job.paths.stdout), slot))
        return job

    def _live_slurm_job(self, k: int):
        jobs = self.manifest.get("jobs", {}).get(str(k)) or []
        if not jobs:
            return None
        job = self.submitit.SlurmJob(folder=self.folder / LOGS, job_id=jobs[-1]["job_id"])
        state = self._job_state(job, force=True)
        return job if state in ("queued", "running") else None

    def _job_state(self, job, force: bool = False) -> str:
        """queued | running | ended, from the scheduler (a forced sacct call when every file looks complete)."""
        if self.cluster.executor == "local":
            return "running" if job.state.upper() == "RUNNING" else "ended"
        raw = (job.get_info(mode="force" if force else "standard").get("State") or "UNKNOWN").upper()
        if raw.startswith(RUNNING_STATES):
            return "running"
        if raw.startswith(QUEUED_STATES):
            return "queued"
        return "ended"

    def _outcome(self, k: int, job) -> ShardOutcome:
        n = self.cluster.shards
        done, planned = self._done(k), len(self.planned[k])
        result, error = job_result(job)
        host = (result or {}).get("host")
        stdout, stderr = Path(job.paths.stdout), Path(job.paths.stderr)
        if done == planned:
            return ShardOutcome(f"{k}/{n}", "done", done, planned, str(job.job_id), host, stdout=stdout, stderr=stderr)
        raw = "" if self.cluster.executor == "local" else (job.get_info(mode="force").get("State") or "")
        how = error or (f"the job ended ({raw})" if raw else "the job ended without a result (killed, out of memory "
                                                             "or out of time)")
        reason = f"{planned - done} of {planned} records missing: {how}"
        return ShardOutcome(f"{k}/{n}", "failed", done, planned, str(job.job_id), host, reason, stdout, stderr)

    def _interrupted(self, active: dict[int, _Active], pending: deque) -> str:
        n = self.cluster.shards
        if self.cluster.executor == "local":
            for a in active.values():
                try:
                    a.job.cancel()
                except Exception:  # a job that ended meanwhile
                    pass
            return (f"interrupted: the running shards were stopped; every finished record is in {self.folder}; "
                    "continue with the same command and --resume")
        ids = " ".join(str(a.job.job_id) for a in active.values())
        left = f"SLURM jobs {ids} keep running (cancel them with `scancel {ids}`); " if ids else ""
        unsent = f"shards {', '.join(f'{k}/{n}' for k in pending)} were not submitted; " if pending else ""
        return (f"interrupted: {left}{unsent}the same command with --resume waits for the running jobs, submits the "
                "rest and merges")

    def _merge(self, summary: ClusterSummary) -> None:
        n = self.cluster.shards
        done = [shard_file(self.folder, k, n) for k in range(1, n + 1)
                if self._done(k) == len(self.planned[k]) and shard_file(self.folder, k, n).exists()]
        if not done:
            return
        jobs = {str(p): read_jobs(p) for p in done}
        summary.merged_records, warnings = merge_shards(done, self.out, jobs=jobs, replace=True)
        summary.merged = True
        summary.warnings.extend(warnings)


def run_cluster(config: RunConfig, cluster: ClusterConfig,
                on_event: Optional[Callable[[ClusterEvent], None]] = None) -> ClusterSummary:
    """Run a suite's shards as jobs and merge them; RunnerError (or SuiteError) with a message for the user,
    ShardsInterrupted on Ctrl-C."""
    return ClusterRun(config, cluster, on_event).run()


__all__ = ["ClusterConfig", "ClusterSummary", "ClusterEvent", "ShardsPlanned", "JobSubmitted", "ShardsProgress",
           "ShardEnded", "ShardOutcome", "ShardsInterrupted", "run_cluster", "run_shard", "shards_folder", "shard_file",
           "jobs_file", "read_jobs", "parse_slurm_options", "import_submitit", "INSTALL_HINT", "EXECUTORS"]
