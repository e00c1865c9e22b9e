"""The files of a sharded run and what each job runs (`invobench run --executor`, docs/cluster.md).

`<out>.shards/` holds `shard-k-of-N.jsonl` (an ordinary results file, one per shard),
`shard-k-of-N.jobs.jsonl` (one line per job that wrote into it: job id, host, fingerprint, its first
record), `run.json` (the orchestrator's manifest) and `logs/` (submitit's). `run_shard` is the
function every job runs: its shard of the suite into its shard file, continuing what an earlier job
of the shard left there.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict

from invobench.bench.records import summary_line
from invobench.bench.runner import RecordWritten, RooflineMeasured, RunConfig, RunStarted, StatusChanged, run_suite
from invobench.results import append_line

# ---- the shared folder ---------------------------------------------------------------------------

def shards_folder(out: Path) -> Path:
    """`<out>.shards`, beside the merged results file."""
    return Path(out).with_name(Path(out).name + ".shards")


def shard_file(folder: Path, k: int, n: int) -> Path:
    return folder / f"shard-{k}-of-{n}.jsonl"


def jobs_file(shard: Path) -> Path:
    """The jobs that wrote a shard file, one line each: `shard-k-of-n.jsonl` -> `shard-k-of-n.jobs.jsonl`."""
    return shard.with_name(shard.name[: -len(".jsonl")] + ".jobs.jsonl")


SHARD_NAME = re.compile(r"^shard-(\d+)-of-(\d+)\.jsonl$")


class ShardJob(BaseModel):
    """One line of `<shard>.jobs.jsonl`: a job that ran (part of) a shard, from `first_record` on."""

    model_config = ConfigDict(extra="allow")
    type: Literal["job"] = "job"
    job_id: Optional[str]
    executor: Optional[str]
    host: str
    first_record: int
    started_utc: str
    fingerprint: dict[str, Any]


def read_jobs(shard: Path) -> list[dict[str, Any]]:
    """The complete lines of a shard's jobs file (a partial last line, as a kill leaves, is ignored)."""
    try:
        raw = jobs_file(shard).read_bytes()
    except FileNotFoundError:
        return []
    jobs = []
    for blob in raw.split(b"\n")[:-1]:
        try:
            jobs.append(json.loads(blob))
        except ValueError:
            continue
    return jobs


def record_ids(path: Path) -> list[str]:
    """Case ids of the complete record lines of a results file, in file order (a partial last line ignored)."""
    return RecordIds(path).read()


class RecordIds:
    """The case ids of a results file that grows by whole lines, read incrementally (a large shard file is
    looked at every second while it is written)."""

    def __init__(self, path: Path):
        self.path, self.offset, self.ids = Path(path), 0, []

    def read(self) -> list[str]:
        try:
            with open(self.path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < self.offset:  # truncated (a partial line dropped): read it again
                    self.offset, self.ids = 0, []
                fh.seek(self.offset)
                data = fh.read(size - self.offset)
        except FileNotFoundError:
            self.offset, self.ids = 0, []
            return []
        end = data.rfind(b"\n") + 1  # complete lines only: a partial last one is read when it is whole
        for blob in data[:end].split(b"\n"):
            try:
                obj = json.loads(blob)
            except ValueError:
                continue
            if isinstance(obj, dict) and obj.get("type") == "record" and isinstance(obj.get("case_id"), str):
                self.ids.append(obj["case_id"])
        self.offset += end
        return self.ids


# ---- what each job runs --------------------------------------------------------------------------

def run_shard(config: RunConfig, executor: str) -> dict[str, Any]:
    """The function each job runs: its shard of the suite into its shard file, continuing what an
    earlier job of the shard left there. Prints its progress to the job's log."""
    from invobench.env import fingerprint

    job_id = os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID")
    host = platform.node()
    out = Path(config.out)

    def on_event(event) -> None:
        if isinstance(event, RunStarted):
            # the runner holds the file's lock and has dropped any partial line: from here on, records are this job's
            append_line(jobs_file(out), ShardJob(
                job_id=job_id, executor=executor, host=host, first_record=len(record_ids(out)),
                started_utc=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), fingerprint=fingerprint()))
            print(f"shard {config.shard} on {host} (job {job_id}): {event.total} records to measure, "
                  f"{event.already_done} already in {out}", flush=True)
        elif isinstance(event, RecordWritten):
            print(summary_line(event.record), flush=True)
        elif isinstance(event, (StatusChanged, RooflineMeasured)):
            print(event.text if isinstance(event, StatusChanged) else f"roofline {event.line.device} {event.line.dtype}",
                  flush=True)

    summary = run_suite(config, on_event=on_event)
    print(f"shard {config.shard}: {len(summary.records)} records written to {out} in {summary.wall_s:.1f} s", flush=True)
    return {"shard": config.shard, "records": len(summary.records), "job_id": job_id, "host": host,
            "wall_s": summary.wall_s}
