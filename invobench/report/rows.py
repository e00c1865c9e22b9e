"""One row per record: the facts of a results record that the report shows, latency summarised from its raw
samples (the record's own stats only where samples are missing)."""
from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from invobench.report.escape import esc
from invobench.report.stats import as_samples
from invobench.results import Record, ResultsFile

PASS_ORDER = ("fwd", "bwd", "fwd+bwd", "train")


def _finite(value: Any) -> Optional[float]:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


# ---- one row per record ----------------------------------------------------------------------

@dataclass
class Row:
    """The facts of one record that the report shows (latency summarised from its raw samples)."""

    run: int
    record: Record
    key: str  # family.variant
    case_key: tuple  # (pass, case parameters): how variants of one case find each other
    elements: Optional[int]
    median_ms: Optional[float] = None
    q1_ms: Optional[float] = None
    q3_ms: Optional[float] = None
    n: int = 0
    from_samples: bool = False
    flops: Optional[float] = None
    intensity: Optional[float] = None
    achieved_flops: Optional[float] = None
    pct_roofline: Optional[float] = None
    reason: str = ""
    #: status ok and a positive median latency: the record can be plotted
    ok: bool = False
    hover: str = ""


def _elements(case: dict) -> Optional[int]:
    dims = [case.get(k) for k in ("B", "C", "H", "W")]
    if all(isinstance(d, int) and d > 0 for d in dims):
        return math.prod(dims)
    return None


def _freeze(case: dict) -> tuple:
    """A hashable, order-independent key of a case's parameters: sorted (name, value) pairs."""
    try:
        key = tuple(sorted(case.items()))
        hash(key)
        return key
    except TypeError:  # a list or dict among the values
        return tuple(sorted((k, json.dumps(v, sort_keys=True, default=str)) for k, v in case.items()))


def _quartiles_by_size(samples: list[np.ndarray]) -> np.ndarray:
    """(q1, median, q3) of each sample array, shape (len(samples), 3); one vectorised percentile per distinct length."""
    out = np.full((len(samples), 3), np.nan)
    by_size: dict[int, list[int]] = defaultdict(list)
    for i, a in enumerate(samples):
        if a.size:
            by_size[a.size].append(i)
    for size, members in by_size.items():
        stacked = np.stack([samples[i] for i in members])
        out[members] = np.percentile(stacked, [25.0, 50.0, 75.0], axis=1).T
    return out


def make_rows(runs: Sequence[ResultsFile], warnings: list[str]) -> list[Row]:
    """Summarise every record: quartiles from raw samples (the record's stats only where samples are missing)."""
    rows = []
    for run_index, run in enumerate(runs):
        no_samples = 0
        all_samples = [as_samples(record.samples_ms) for record in run.records]
        quartiles = _quartiles_by_size(all_samples)
        for record, samples, (q1, median, q3) in zip(run.records, all_samples, quartiles):
            row = Row(run_index, record, f"{record.family}.{record.variant}", (record.pass_, _freeze(record.case)),
                      _elements(record.case))
            if samples.size:
                row.q1_ms, row.median_ms, row.q3_ms = float(q1), float(median), float(q3)
                row.n, row.from_samples = int(samples.size), True
            elif record.stats is not None:
                row.q1_ms, row.median_ms, row.q3_ms = record.stats.q1_ms, record.stats.median_ms, record.stats.q3_ms
                row.n = record.stats.n
                if record.status == "ok":
                    no_samples += 1
            row.flops = _finite(record.flops)
            roof = record.roofline
            min_bytes = record.memory.min_bytes if record.memory is not None else None
            row.intensity = _finite(roof.intensity_flop_per_byte) if roof is not None else None
            if row.intensity is None and row.flops and min_bytes:
                row.intensity = row.flops / min_bytes
            row.ok = record.status == "ok" and row.median_ms is not None and row.median_ms > 0
            if row.ok and row.flops:
                # from the median of the samples, so the chart agrees with the latency column
                row.achieved_flops = row.flops / (row.median_ms * 1e-3)
            if roof is not None and roof.bound_ms and row.ok:
                row.pct_roofline = 100.0 * roof.bound_ms / row.median_ms
            elif roof is not None:
                row.pct_roofline = _finite(roof.pct_of_roofline)
            detail = record.error or "; ".join(record.reasons)
            row.reason = detail.strip() if detail else ""
            row.hover = esc(f"{row.key} {record.pass_}: {record.label}")
            rows.append(row)
        if no_samples:
            warnings.append(f"{run.path}: {no_samples} ok records carry no raw samples; their latency comes from the "
                            f"summary stats the runner wrote")
    return rows


def _attr(row: Row, name: str) -> str:
    """A case parameter of the row's record, or its pass."""
    return row.record.pass_ if name == "pass" else str(row.record.case.get(name))


def _varying(rows: Iterable[Row], fields: Sequence[str]) -> list[str]:
    """The fields (case parameters or 'pass') that take more than one value among `rows`."""
    values: dict[str, set] = defaultdict(set)
    for row in rows:
        for f in fields:
            values[f].add(_attr(row, f))
    return [f for f in fields if len(values[f]) > 1]


def _sub(row: Row, fields: Sequence[str]) -> str:
    return "/".join(_attr(row, f) for f in fields)


def _passes(rows: Iterable[Row]) -> list[str]:
    present = {row.record.pass_ for row in rows}
    return [p for p in PASS_ORDER if p in present] + sorted(present - set(PASS_ORDER))


def _hover(row: Row) -> str:
    return row.hover
