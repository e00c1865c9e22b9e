"""`invobench merge`: the shard files of one suite (`run --shard k/n`) joined into one results file."""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Optional

from invobench.bench.cases import parse_shard
from invobench.bench.output import RunnerError, ensure_writable, lock
from invobench.results import Record, ResultsFileError, read_results


def merge_shards(paths: list[Path], out: Path, *, jobs: Optional[dict[str, list[dict[str, Any]]]] = None,
                 replace: bool = False) -> tuple[int, list[str]]:
    """Join the shard files of one suite into one results file; returns (records, warnings).

    All files must come from the same suite (same sha256) and distinct shards; a case id present in
    two files is an error. The merged header is the first shard's, with every shard's run id,
    shard, host and fingerprint listed under options.merged_from. Roofline lines are kept from every
    shard (each shard's records were computed against its own).

    Every record gets `info.shard`: its shard, the index of its file in merged_from, and the host
    and job that measured it. `jobs` (str(path) -> the jobs that wrote that file, each with
    `first_record`, the index of its first record in the file, and its `job_id`, `host`,
    `fingerprint`) tells them apart when several jobs wrote one file (a shard resumed on another
    node); without it a record's host is its file's. `replace`: overwrite an existing `out`.
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
    attempts = [sorted((jobs or {}).get(str(f.path)) or [], key=lambda a: a.get("first_record", 0)) for f in files]
    for index, f in enumerate(files):
        for position, r in enumerate(f.records):
            if r.case_id in seen:
                raise RunnerError(f"merge: case id {r.case_id} ({r.family}.{r.variant} {r.pass_} {r.label}) is in both "
                                  f"{seen[r.case_id]} and {f.path}")
            seen[r.case_id] = f.path
            if "shard" not in r.info:  # a file merged before keeps the provenance it has
                r = r.model_copy(update={"info": {**r.info, "shard": _provenance(f, index, attempts[index], position)}})
            records.append(r)
    options = {k: v for k, v in first.header.options.items() if k != "shard"}
    options["merged_from"] = [
        {"path": f.path, "run_id": f.header.run_id, "shard": f.header.options.get("shard"),
         "host": f.header.fingerprint.hostname, "fingerprint": f.header.fingerprint,
         **({"jobs": attempts[index]} if attempts[index] else {})}
        for index, f in enumerate(files)]
    header = first.header.model_copy(update={"run_id": uuid.uuid4().hex, "options": options})
    ensure_writable(out)
    with lock(out):
        if out.exists() and out.stat().st_size > 0 and not replace:
            raise RunnerError(f"merge: {out} already exists; choose another output path")
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
            try:  # the cleanup must not replace the error that matters
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            raise RunnerError(f"merge: cannot write {out}: {exc.strerror or exc}") from exc
    return len(records), warnings


def _provenance(f, index: int, attempts: list[dict[str, Any]], position: int) -> dict[str, Any]:
    """info.shard of the record at `position` of shard file `f` (merged_from[index]): shard, host, job."""
    found = {"shard": f.header.options.get("shard"), "merged_from": index, "host": f.header.fingerprint.hostname,
             "job_id": None}
    for number, attempt in enumerate(attempts):  # sorted by first_record: the last one starting at or before it
        if attempt.get("first_record", 0) <= position:
            found.update(host=attempt.get("host") or found["host"], job_id=attempt.get("job_id"), job=number)
    return found
