"""Results schema v1: one JSON Lines file per run — a header line, roofline lines, one line per record.

    {"type": "header",   ...RunHeader}     first line: the run's fingerprint and suite
    {"type": "roofline", ...Roofline}      copy bandwidth and matmul peak measured in this run
    {"type": "record",   ...Record}        one per case × variant × pass, appended as it finishes

The runner writes these, `report`/`compare`/`show` read them; nothing else crosses that
boundary. A JSON Schema of the three line types is generated from these models into
`invobench/results/schema.json` (kept in sync by a test). Reading and writing: `invobench.results.io`.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

SCHEMA_VERSION = 1
STATUSES = ("ok", "error", "skipped", "crashed", "oom", "timeout")


class _Model(BaseModel):
    """A part of a results line. Fields this version does not know are kept, not refused: a newer writer
    of schema v1 only adds optional fields, and a v1 reader that rewrites a file (merge, A/B split)
    must not drop them."""

    model_config = ConfigDict(extra="allow")


def _positive_finite(value: float, what: str) -> float:
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a finite number > 0, got {value!r}")
    return value


class _Open(_Model):
    """A part of the environment fingerprint: every field optional (older and newer writers record more
    or less of the machine)."""


class GitInfo(_Open):
    commit: Optional[str] = None
    dirty: Optional[bool] = None


class CpuInfo(_Open):
    model: Optional[str] = None
    machine: Optional[str] = None
    logical_cores: Optional[int] = None
    affinity_cores: Optional[int] = None
    family: Optional[str] = None
    model_id: Optional[str] = None
    stepping: Optional[str] = None
    part: Optional[str] = None
    simd: list[str] = Field(default_factory=list, description="instruction-set flags of /proc/cpuinfo worth recording")
    caches: dict[str, str] = Field(default_factory=dict, description="cache sizes as CPU 0 sees them")

    def widest_simd(self) -> Optional[str]:
        """'avx512', 'avx2', 'sve' or 'neon': one CPU model name can cover AVX2 and AVX-512 generations."""
        for flag, name in (("avx512f", "avx512"), ("avx2", "avx2"), ("sve", "sve"), ("asimd", "neon")):
            if flag in self.simd:
                return name
        return None


class TorchInfo(_Open):
    version: Optional[str] = None
    threads: Optional[int] = None
    interop_threads: Optional[int] = None
    mkldnn: Optional[bool] = None
    openmp: Optional[bool] = None


class CudaDevice(_Open):
    name: Optional[str] = None
    capability: Optional[str] = None
    memory_bytes: Optional[int] = None
    multiprocessors: Optional[int] = None


class CudaInfo(_Open):
    available: bool = False
    torch_cuda: Optional[str] = None
    driver: Optional[str] = None
    devices: list[CudaDevice] = Field(default_factory=list)


class Fingerprint(_Open):
    """The environment a run measured in (`invobench env`): enough to trace a number to a machine and a commit."""

    invobench: Optional[str] = None
    time_utc: Optional[str] = None
    git: GitInfo = Field(default_factory=GitInfo)
    python: Optional[str] = None
    os: Optional[str] = None
    platform: Optional[str] = None
    hostname: Optional[str] = None
    cpu: CpuInfo = Field(default_factory=CpuInfo)
    torch: TorchInfo = Field(default_factory=TorchInfo)
    cuda: CudaInfo = Field(default_factory=CudaInfo)
    packages: dict[str, Optional[str]] = Field(default_factory=dict)
    transparent_hugepages: Optional[str] = None
    env: dict[str, str] = Field(default_factory=dict, description="environment variables of the benchmark workers")

    def gpu_name(self) -> Optional[str]:
        return self.cuda.devices[0].name if self.cuda.devices else None

    def machine_name(self, used_cuda: bool = False) -> str:
        """A short name for the machine: the GPU if the run used one, else the CPU model and its widest SIMD."""
        if used_cuda and self.gpu_name():
            return str(self.gpu_name())
        name = self.cpu.model or "unknown machine"
        simd = self.cpu.widest_simd()
        return f"{name} {simd}" if simd else name

    def machine_slug(self, used_cuda: bool = False) -> str:
        """The machine's folder name under results/, e.g. 'amd-epyc-avx512-2c' or 'nvidia-h100-80gb-hbm3'."""
        import re

        text = self.machine_name(used_cuda)
        if not (used_cuda and self.gpu_name()) and self.cpu.logical_cores:
            text += f" {self.cpu.logical_cores}c"
        return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


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
    fingerprint: Fingerprint
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

    @field_validator("median_ms", "q1_ms", "q3_ms", "min_ms", "max_ms", "mean_ms")
    @classmethod
    def _latency(cls, value: float, info) -> float:
        return _positive_finite(value, info.field_name)


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

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    @field_validator("samples_ms")
    @classmethod
    def _samples(cls, values: list[float]) -> list[float]:
        for i, value in enumerate(values):
            _positive_finite(value, f"samples_ms[{i}]")
        return values

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


SCHEMA_FILE = Path(__file__).with_name("schema.json")
