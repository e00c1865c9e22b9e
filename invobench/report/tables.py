"""The report's tables (records, counts, failures: JSON for the page's table component) and its run summary."""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Optional, Sequence

from invobench.report.escape import esc
from invobench.report.inputs import host_loads, machine_name
from invobench.report.rows import Row
from invobench.results import ResultsFile


def _round(value: Optional[float], digits: int = 5) -> Optional[float]:
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def records_table(rows: list[Row], n_runs: int) -> dict:
    columns = [("run", "run", "int"), ("variant", "variant", "text"), ("pass", "pass", "text"), ("case", "case", "text"),
               ("status", "status", "status"), ("median_ms", "median ms", "num"), ("q1_ms", "q1 ms", "num"),
               ("q3_ms", "q3 ms", "num"), ("n", "n", "int"), ("gflops", "GFLOP/s", "num"),
               ("pct_roofline", "% roofline", "num"), ("peak", "peak mem", "bytes"), ("reasons", "reasons / error", "text"),
               ("case_id", "case id", "text")]
    if n_runs == 1:
        columns = columns[1:]
    data = []
    for r in rows:
        memory = r.record.memory
        row = [r.run + 1, r.key, r.record.pass_, r.record.label, r.record.status, _round(r.median_ms),
               _round(r.q1_ms), _round(r.q3_ms), r.n or None,
               _round(r.achieved_flops / 1e9 if r.achieved_flops else None, 4), _round(r.pct_roofline, 3),
               memory.peak_bytes if memory is not None else None, r.reason[:500], r.record.case_id]
        data.append(row if n_runs > 1 else row[1:])
    return {"columns": [{"key": k, "label": label, "kind": kind} for k, label, kind in columns], "rows": data,
            "placeholder": "filter records: words all must match, e.g.  eager fwd ok"}


def counts_table(rows: list[Row]) -> dict:
    seen: dict[tuple, list] = {}
    for r in rows:
        rec = r.record
        counts = rec.counts or {}
        flops, macs, params = rec.flops, rec.macs, rec.params
        if flops is None and macs is None and params is None and not counts:
            continue
        key = (r.key, rec.pass_, rec.label)
        if key in seen:
            continue
        min_bytes = rec.memory.min_bytes if rec.memory is not None else None
        seen[key] = [r.key, rec.pass_, rec.label, flops, macs if macs is not None else None,
                     params if params is not None else counts.get("params"), min_bytes,
                     _round(flops / min_bytes, 4) if flops and min_bytes else _round(r.intensity, 4)]
    columns = [("variant", "variant", "text"), ("pass", "pass", "text"), ("case", "case", "text"),
               ("flops", "FLOPs (2·MACs)", "int"), ("macs", "MACs", "int"), ("params", "parameters", "int"),
               ("min_bytes", "min bytes", "bytes"), ("intensity", "FLOP/byte", "num")]
    return {"columns": [{"key": k, "label": label, "kind": kind} for k, label, kind in columns],
            "rows": list(seen.values()), "placeholder": "filter counts, e.g.  conv dense fwd"}


def failures_table(rows: list[Row], n_runs: int) -> dict:
    groups: dict[tuple, list[Row]] = defaultdict(list)
    for r in rows:
        if r.record.status != "ok":
            first_line = r.reason.splitlines()[0][:300] if r.reason else ""
            groups[(r.run, r.record.status, r.key, r.record.pass_, first_line)].append(r)
    data = []
    for (run, status, key, pass_, reason), members in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        examples = "; ".join(m.record.label for m in members[:3]) + (" …" if len(members) > 3 else "")
        tail = next((m.record.stderr_tail for m in members if m.record.stderr_tail), None) or ""
        row = [run + 1, status, key, pass_, len(members), reason, examples, tail[-300:]]
        data.append(row if n_runs > 1 else row[1:])
    columns = [("run", "run", "int"), ("status", "status", "status"), ("variant", "variant", "text"),
               ("pass", "pass", "text"), ("count", "cases", "int"), ("reason", "reason / error", "text"),
               ("examples", "example cases", "text"), ("stderr", "stderr tail", "text")]
    if n_runs == 1:
        columns = columns[1:]
    return {"columns": [{"key": k, "label": label, "kind": kind} for k, label, kind in columns], "rows": data,
            "placeholder": "filter failures and skips"}


def _fmt_fp(value: Any) -> str:
    """A part of the fingerprint as 'key=value, ...' (empty values left out)."""
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items() if v not in (None, "", [], {}))
    if isinstance(value, list):
        return "; ".join(_fmt_fp(v) for v in value)
    return "" if value is None else str(value)


def _load_range(run: ResultsFile) -> str:
    loads = host_loads(run)
    if not loads:
        return "not recorded"
    cores = run.header.fingerprint.cpu.logical_cores
    return (f"1-min load average {min(loads):.1f}–{max(loads):.1f}" + (f" on {cores} logical cores" if cores else "")
            + (" (busy host: samples inflated and spread)" if cores and max(loads) > cores else ""))


def summary_html(runs: Sequence[ResultsFile], rows: list[Row], titles: list[str]) -> str:
    """One column per run: provenance, status counts and the run's measured rooflines."""
    def git(run: ResultsFile) -> str:
        info = run.header.fingerprint.git
        return str(info.commit or "?")[:12] + (" (dirty)" if info.dirty else "")

    def statuses(i: int, run: ResultsFile) -> str:
        counts: dict[str, int] = defaultdict(int)
        for r in rows:
            if r.run == i:
                counts[r.record.status] += 1
        return ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: (kv[0] != "ok", kv[0]))) or "no records"

    def rooflines(run: ResultsFile) -> str:
        parts = []
        for roof in run.rooflines:
            if roof.error:
                parts.append(f"{roof.device} {roof.dtype}: error: {roof.error}")
            else:
                bw = f"{roof.copy_bandwidth_gbps:.3g} GB/s" if roof.copy_bandwidth_gbps else "–"
                peak = f"{roof.matmul_peak_flops / 1e9:.4g} GFLOP/s" if roof.matmul_peak_flops else "–"
                parts.append(f"{roof.device} {roof.dtype}: copy {bw}, matmul {peak}" +
                             (f" ({roof.threads} threads)" if roof.threads else ""))
        return "; ".join(parts) or "not measured"

    def gpus(run: ResultsFile) -> str:
        cuda = run.header.fingerprint.cuda
        names = [str(d.name) for d in cuda.devices]
        return ", ".join(names) + (f" (driver {cuda.driver})" if cuda.driver else "") if names else "none"

    fields = [
        ("results file", lambda i, r: r.path + (" (partial last line dropped)" if r.dropped_partial_line else "")),
        ("run id", lambda i, r: r.header.run_id),
        ("suite", lambda i, r: f"{r.header.suite.name} (sha256 {r.header.suite.sha256[:12]})"),
        ("started", lambda i, r: r.header.fingerprint.time_utc),
        ("machine", lambda i, r: machine_name(r)),
        ("CPU", lambda i, r: _fmt_fp(r.header.fingerprint.cpu)),
        ("GPU", lambda i, r: gpus(r)),
        ("torch", lambda i, r: _fmt_fp(r.header.fingerprint.torch)),
        ("packages", lambda i, r: _fmt_fp(r.header.fingerprint.packages)),
        ("Python / OS", lambda i, r: f"{r.header.fingerprint.python} / {r.header.fingerprint.os}"),
        ("git commit", lambda i, r: git(r)),
        ("environment", lambda i, r: _fmt_fp(r.header.fingerprint.env) or "–"),
        ("run options", lambda i, r: _fmt_fp(r.header.options) or "–"),
        ("records", statuses),
        ("host load", lambda i, r: _load_range(r)),
        ("measured roofline", lambda i, r: rooflines(r)),
    ]
    head = "".join(f"<th>{esc(t)}</th>" for t in titles)
    body = "".join(
        f"<tr><th>{esc(name)}</th>" + "".join(f"<td>{esc(get(i, run))}</td>" for i, run in enumerate(runs)) + "</tr>"
        for name, get in fields
    )
    return f'<table class="summary"><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>'
