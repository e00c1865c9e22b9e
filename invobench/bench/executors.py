"""What a sharded run asks of submitit: the executors, sbatch options, job states, GPUs and job results."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Optional

from invobench.bench.output import RunnerError

EXECUTORS = ("local", "slurm")
INSTALL_HINT = "pip install 'invobench[slurm]'"
#: sbatch options that invobench or submitit set themselves: given with --slurm they are refused
_MANAGED = {"partition": "--partition", "time": "--time-min", "gpus-per-node": "--gpus-per-job",
            "output": None, "error": None, "open-mode": None, "signal": None, "array": None, "job-name": None}
#: SLURM states (sacct) of a job that has not started / is running; every other state is an end
QUEUED_STATES = ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "RESV_DEL_HOLD",
                 "SUSPENDED", "PREEMPTED", "UNKNOWN", "READY")
RUNNING_STATES = ("RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING")


def import_submitit():
    """submitit, or a RunnerError saying how to install it."""
    try:
        import submitit
    except ImportError:
        raise RunnerError(f"--executor needs submitit, which is not installed here: {INSTALL_HINT} "
                          "(or `pip install submitit`)") from None
    return submitit


def parse_slurm_options(values: list[str]) -> dict[str, Any]:
    """`--slurm KEY=VALUE` / `--slurm KEY` as sbatch options (`account=proj` -> `#SBATCH --account=proj`)."""
    options: dict[str, Any] = {}
    for text in values:
        key, sep, value = text.partition("=")
        key = key.strip().lstrip("-").replace("_", "-")
        if not key or (sep and not value.strip()):
            raise RunnerError(f"--slurm {text!r} is not KEY=VALUE (an sbatch option without its dashes, e.g. "
                              "--slurm account=myproject, or --slurm exclusive for a flag)")
        if key in _MANAGED:
            hint = f"use {_MANAGED[key]}" if _MANAGED[key] else "invobench sets it for every job"
            raise RunnerError(f"--slurm {text!r}: the sbatch option --{key} is not passed through: {hint}")
        options[key] = value.strip() if sep else True
    return options


def visible_gpus() -> list[int]:
    """Indices of the GPUs a local job may be given: CUDA_VISIBLE_DEVICES's, else 0..count-1."""
    import torch

    if not torch.cuda.is_available():
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip():
        entries = [v.strip() for v in visible.split(",") if v.strip()]
        if not all(v.isdigit() for v in entries):
            raise RunnerError(f"CUDA_VISIBLE_DEVICES={visible!r} names GPUs by UUID; --executor local gives each shard "
                              "one GPU by index: set CUDA_VISIBLE_DEVICES to indices (e.g. 0,1,2,3)")
        return [int(v) for v in entries][: torch.cuda.device_count()]
    return list(range(torch.cuda.device_count()))


def job_result(job) -> tuple[Optional[dict], Optional[str]]:
    """(what run_shard returned, None) or (None, the last line of its error); (None, None) without a result file."""
    if not Path(job.paths.result_pickle).exists():  # submitit would wait 15 s for it: a killed job never writes it
        return None, None
    try:
        error = job.exception()
        value = job.result() if error is None else None
    except Exception as exc:  # a truncated result file on a slow file system
        return None, f"its result file could not be read ({exc})"
    if error is None:
        return value, None
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    last = lines[-1] if lines else str(error)
    return None, re.sub(r"^[\w.]*(RunnerError|SuiteError): ", "", last)
