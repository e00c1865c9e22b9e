"""Records of a run: a results record for each work item, from what the worker measured (or why it did not),
and the one line that shows a finished record (the run's display, a job's log).

Counts come from the spec's formulas (`invobench.counting`); samples, statistics, memory and the
roofline fields from the worker's reply and the run's measured roofline.
"""
from __future__ import annotations

import logging
from typing import Optional

from invobench.bench.ab import plain_variant
from invobench.bench.cases import BenchItem
from invobench.bench.roofline import roofline_fields
from invobench.bench.timing import summarize
from invobench.results import MemoryInfo, Record, Roofline, RooflineFields, Stats, TimerInfo

log = logging.getLogger(__name__)


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
        log.info("no analytic counts for %s: %s", item.key, exc)
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
