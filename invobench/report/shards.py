"""Merged runs whose shards ran on different machines: `report` and `compare` say so.

A merged file (`invobench merge`, `invobench run --executor`) lists its shard files under
`options.merged_from`, each with its fingerprint and, for shards run as jobs, the jobs that wrote
it (`jobs`: host, job id, fingerprint); every record names its source in `info.shard`. Shards
run on different GPU (or CPU) models give latencies that are not comparable across shards. Within
one case they still are: all variants of a case and pass run in one shard.
"""
from __future__ import annotations

from typing import Any, Optional

from invobench.results import Fingerprint, ResultsFile


def _fingerprint(value: Any) -> Optional[Fingerprint]:
    if isinstance(value, Fingerprint):
        return value
    if isinstance(value, dict):
        try:
            return Fingerprint.model_validate(value)
        except ValueError:
            return None
    return None


def shard_machines(run: ResultsFile) -> dict[str, list[str]]:
    """Machine name -> the shards (and hosts, jobs) that measured on it, for a merged file; {} otherwise."""
    sources = run.header.options.get("merged_from")
    if not isinstance(sources, list):
        return {}
    used: dict[tuple[int, Optional[int]], bool] = {}  # (source, job) -> measured a CUDA case
    any_cuda = False
    for record in run.records:
        cuda = record.case.get("device") == "cuda"
        any_cuda = any_cuda or cuda
        where = record.info.get("shard")
        if isinstance(where, dict) and isinstance(where.get("merged_from"), int):
            key = (where["merged_from"], where.get("job") if isinstance(where.get("job"), int) else None)
            used[key] = used.get(key, False) or cuda
    machines: dict[str, list[str]] = {}
    for index, source in enumerate(sources):
        if not isinstance(source, dict):
            continue
        shard = source.get("shard") or source.get("path") or f"file {index + 1}"
        jobs = [j for j in source.get("jobs") or [] if isinstance(j, dict)]
        entries = [(None, source.get("fingerprint"), source.get("host"), None)] if not jobs else [
            (number, job.get("fingerprint"), job.get("host"), job.get("job_id")) for number, job in enumerate(jobs)]
        for number, fp_value, host, job_id in entries:
            fp = _fingerprint(fp_value)
            if fp is None:
                continue
            if jobs and (index, number) not in used and any(k[0] == index for k in used):
                continue  # a job that wrote no record of this file (it failed before its first one)
            cuda = used.get((index, number), used.get((index, None), any_cuda))
            host = host or fp.hostname
            label = f"shard {shard}" + (f" on {host}" if host else "") + (f" (job {job_id})" if job_id else "")
            machines.setdefault(fp.machine_name(cuda), []).append(label)
    return machines


def shard_warning(run: ResultsFile) -> Optional[str]:
    """A warning when the shards of a merged file ran on different GPU or CPU models; None otherwise."""
    machines = shard_machines(run)
    if len(machines) < 2:
        return None
    parts = "; ".join(f"{name}: {', '.join(where)}" for name, where in sorted(machines.items()))
    return (f"{run.path}: its shards ran on different machines ({parts}): absolute latencies from different shards "
            "are not comparable; speedups within a case are (all variants of a case ran in one shard); rerun the "
            "odd shards on one model (or ask SLURM for it: --slurm constraint=...) to compare across cases")
