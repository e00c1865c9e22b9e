"""Results schema v1: one JSON Lines file per run — a header line, roofline lines, one line per record.

    {"type": "header",   ...RunHeader}     first line: the run's fingerprint and suite
    {"type": "roofline", ...Roofline}      copy bandwidth and matmul peak measured in this run
    {"type": "record",   ...Record}        one per case × variant × pass, appended as it finishes

The runner writes these, `report`/`compare`/`show` read them; nothing else crosses that
boundary. A JSON Schema of the three line types is generated from these models into
`invobench/results_schema.json` (kept in sync by a test). Appends are single `write` calls of
one line followed by flush+fsync, so a kill leaves at most a partial last line, which
`read_results(repair=True)` drops.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

SCHEMA_VERSION = 1
STATUSES = ("ok", "error", "skipped", "crashed", "oom", "timeout")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SuiteRef(_Model):
    name: str
    path: Optional[str] = None
    sha256: str
    config: dict[str, Any] = Field(default_factory=dict, description="the suite as loaded, after defaults")


class RunHeader(_Model):
    type: Literal["header"] = "header"
    schema_version: int = SCHEMA_VERSION
    run_id: str
    suite: SuiteRef
    fingerprint: dict[str, Any]
    options: dict[str, Any] = Field(default_factory=dict, description="CLI options of the run (shard, mem budget, ...)")


class Roofline(_Model):
    type: Literal["roofline"] = "roofline"
    device: str
    dtype: str
    copy_bandwidth_gbps: Optional[float] = Field(None, description="(read + write bytes) / time of a large copy, GB/s (1e9)")
    matmul_peak_flops: Optional[float] = Field(None, description="2·n³ / time of a square matmul, FLOP/s")
    copy_bytes: Optional[int] = None
    matmul_n: Optional[int] = None
    samples_copy_ms: list[float] = Field(default_factory=list)
    samples_matmul_ms: list[float] = Field(default_factory=list)
    threads: Optional[int] = None
    error: Optional[str] = None


class Stats(_Model):
    n: int
    median_ms: float
    q1_ms: float
    q3_ms: float
    iqr_ms: float
    min_ms: float
    max_ms: float
    mean_ms: float
    std_ms: float


class TimerInfo(_Model):
    method: str = Field(description="perf_counter | cuda_event | cuda_graph")
    overhead_ms: Optional[float] = Field(None, description="median cost of timing an empty call with the same method")
    threads: Optional[int] = None
    warmup_ms: Optional[float] = None
    warmup_calls: Optional[int] = None
    l2_flush: Optional[bool] = None
    stop_reason: Optional[str] = Field(None, description="why sampling stopped: converged | budget | max_samples")


class MemoryInfo(_Model):
    peak_bytes: Optional[int] = Field(None, description="peak allocated above the inputs during one call of the pass")
    peak_method: Optional[str] = None
    saved_for_backward_bytes: Optional[int] = Field(None, description="autograd-saved tensors of one forward, storages once")
    min_bytes: Optional[int] = Field(None, description="spec minimum traffic of the pass")


class RooflineFields(_Model):
    intensity_flop_per_byte: Optional[float] = None
    achieved_gbps: Optional[float] = None
    achieved_flops: Optional[float] = None
    bound_ms: Optional[float] = Field(None, description="max(bytes / bandwidth, FLOPs / peak) from this run's roofline")
    bound_by: Optional[Literal["memory", "compute"]] = None
    pct_of_roofline: Optional[float] = Field(None, description="100 · bound / median latency")


class Record(_Model):
    type: Literal["record"] = "record"
    case_id: str = Field(description="stable id of (family, variant, pass, case); equal across runs and machines")
    family: str
    variant: str
    pass_: str = Field(alias="pass")
    case: dict[str, Any]
    label: str
    status: Literal["ok", "error", "skipped", "crashed", "oom", "timeout"]
    reasons: list[str] = Field(default_factory=list, description="why skipped / what went wrong")
    error: Optional[str] = None
    stderr_tail: Optional[str] = None
    samples_ms: list[float] = Field(default_factory=list, description="every timed sample, milliseconds")
    stats: Optional[Stats] = None
    timer: Optional[TimerInfo] = None
    counts: Optional[dict[str, Any]] = Field(None, description="analytic Counts.as_dict() of the spec")
    flops: Optional[int] = Field(None, description="FLOPs of this pass (2·MACs)")
    macs: Optional[int] = None
    params: Optional[int] = None
    memory: Optional[MemoryInfo] = None
    roofline: Optional[RooflineFields] = None
    info: dict[str, Any] = Field(default_factory=dict, description="variant facts, e.g. the autotuned configuration")
    started_utc: Optional[str] = None
    duration_s: Optional[float] = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


Line = Union[RunHeader, Roofline, Record]
_LINE = TypeAdapter(Line)


def case_id(family: str, variant: str, pass_: str, case: dict[str, Any]) -> str:
    """Stable id: sha1 of the canonical JSON of (family, variant, pass, case), 16 hex digits."""
    canonical = json.dumps({"family": family, "variant": variant, "pass": pass_, "case": case}, sort_keys=True)
    return hashlib.sha1(canonical.encode()).hexdigest()[:16]


def json_schema() -> dict:
    """JSON Schema (draft 2020-12) of one results line."""
    schema = _LINE.json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"invobench results line, schema version {SCHEMA_VERSION}"
    return schema


SCHEMA_FILE = Path(__file__).with_name("results_schema.json")


class ResultsFileError(ValueError):
    """A results file that cannot be read; the message names the file and line."""


class ResultsFile(BaseModel):
    path: str
    header: RunHeader
    rooflines: list[Roofline]
    records: list[Record]
    dropped_partial_line: bool = False


def append_line(path: Path, line: BaseModel) -> None:
    """Append one JSON line atomically enough for a kill: one write of the whole line, then fsync."""
    data = (line.model_dump_json(by_alias=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_results(path: Union[str, Path], repair: bool = False) -> ResultsFile:
    """Parse and validate a results file.

    A partial last line (a run killed mid-write) is an error naming the line, unless `repair`,
    which drops it and — when the file is writable — truncates the file to its valid lines.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot read results file: {exc.strerror}") from exc
    if not raw.strip():
        raise ResultsFileError(f"{path}: empty results file (no header line); was the run started?")
    lines = raw.split(b"\n")
    last_number = max(i for i, blob in enumerate(lines, start=1) if blob.strip())
    header, rooflines, records, dropped = None, [], [], False
    good_bytes = 0
    for number, blob in enumerate(lines, start=1):
        if not blob.strip():
            good_bytes += len(blob) + 1
            continue
        try:
            obj = json.loads(blob)
            parsed = _LINE.validate_python(obj)
        except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
            is_last = number == last_number
            if is_last and repair:
                dropped = True
                break
            detail = str(exc).splitlines()[0][:300]
            hint = " (a partial last line from an interrupted run: `--resume` repairs it)" if is_last else ""
            raise ResultsFileError(f"{path}:{number}: invalid results line{hint}: {detail}") from exc
        if number == 1:
            if not isinstance(parsed, RunHeader):
                raise ResultsFileError(f"{path}:1: first line must be the run header, found type {obj.get('type')!r}")
            if parsed.schema_version != SCHEMA_VERSION:
                raise ResultsFileError(f"{path}:1: schema_version {parsed.schema_version} is not supported "
                                       f"(this invobench reads version {SCHEMA_VERSION})")
            header = parsed
        elif isinstance(parsed, RunHeader):
            raise ResultsFileError(f"{path}:{number}: a second header line; concatenated runs must be merged with `invobench merge`")
        elif isinstance(parsed, Roofline):
            rooflines.append(parsed)
        else:
            records.append(parsed)
        good_bytes += len(blob) + 1
    if header is None:
        raise ResultsFileError(f"{path}: no valid header line")
    if dropped and os.access(path, os.W_OK):
        with open(path, "r+b") as fh:
            fh.truncate(min(good_bytes, len(raw)))
    return ResultsFile(path=str(path), header=header, rooflines=rooflines, records=records, dropped_partial_line=dropped)
