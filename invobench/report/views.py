"""Summary tables of results files, for `invobench show --view` and the generated blocks of README and docs.

Each view is a pure function of results files returning a pandas DataFrame (or a line of text):

- `records`: one row per record (case parameters, status, latency, roofline, memory); `detail=True` adds
  every statistic, count, byte figure and the full reasons and error.
- `export_frame`: `records` in detail for several runs, with each run's fingerprint as columns and
  identifier-safe column names: what `invobench export` writes (CSV, JSON) for pandas, spreadsheets
  and databases.
- `cpu`: per case and pass of a CPU run, involution.cpu against the other CPU forms of the apply
  (eager, unfold, compile) and the depthwise conv of the same MACs; how much faster it is than the
  best other form, and the % of the run's roofline a call 10× faster than that form would need
  (over 100 %: no implementation can be 10× faster on that machine).
- `models`: RedNet against the ResNet of the same depth, per batch and pass.
- `reference`: per run, every variant at one case (the suite's largest op-level case by default),
  with its latency relative to the depthwise conv and its % of roofline.
- `verdict`: per case and pass, the fastest involution variant and its median ÷ each denominator's
  (depthwise, grouped, dense conv, the fastest local self-attention), with `verdict_lines`: the
  bottom line and the recommended variant per device and dtype (`report.verdict`).
- `run_facts`: one line of provenance and the run's measured roofline.

Latencies are the medians the records carry; ratios are taken within one run.
"""
from __future__ import annotations

import fnmatch
from typing import Iterable, Optional, Sequence

import pandas as pd

from invobench.report.inputs import machine_name
from invobench.results import Record, ResultsFile

VIEWS = ("records", "cpu", "models", "reference", "verdict")
#: the other CPU forms of the apply the cpu view compares involution.cpu against
CPU_OTHERS = ("eager", "unfold", "compile")
PEER = "conv.depthwise"


def _median(record: Record) -> Optional[float]:
    return record.stats.median_ms if record.status == "ok" and record.stats is not None else None


def shape_label(case: dict) -> str:
    """'B8 C256 56x56 K7 G16' (+ ' s2' for a strided case)."""
    stride = f" s{case.get('stride')}" if case.get("stride", 1) != 1 else ""
    return f"B{case.get('B')} C{case.get('C')} {case.get('H')}x{case.get('W')} K{case.get('K')} G{case.get('G')}{stride}"


#: case parameters records_frame names itself (the others follow, with `detail`, under their own names)
_CASE_COLUMNS = {"B": "B", "C": "C", "H": "H", "W": "W", "K": "K", "G": "G", "stride": "s", "dilation": "d",
                 "dtype": "dtype", "device": "device", "level": "level"}
#: integer columns: nullable integers, so a missing value does not turn a count into a float
_INT_COLUMNS = ("B", "C", "H", "W", "K", "G", "s", "d", "n", "warmup_calls", "macs", "flops", "params", "peak_bytes",
                "saved_for_backward_bytes", "min_bytes", "count_macs_fwd", "count_macs_bwd", "count_flops_fwd",
                "count_flops_bwd", "count_params", "count_min_bytes_fwd", "count_min_bytes_bwd")


def _detail(r: Record) -> dict:
    """The columns `records_frame(detail=True)` adds: the rest of the case, statistics, counts, bytes, full texts."""
    s, roof, mem, timer = r.stats, r.roofline, r.memory, r.timer
    row = {"label": r.label}
    row.update({k: v for k, v in r.case.items() if k not in _CASE_COLUMNS})
    row.update({
        "q1_ms": s.q1_ms if s else None, "q3_ms": s.q3_ms if s else None, "iqr_ms": s.iqr_ms if s else None,
        "max_ms": s.max_ms if s else None, "std_ms": s.std_ms if s else None,
        "timer_method": timer.method if timer else None, "warmup_calls": timer.warmup_calls if timer else None,
        "achieved_flops": roof.achieved_flops if roof else None, "bound_ms": roof.bound_ms if roof else None,
        "peak_bytes": mem.peak_bytes if mem else None, "peak_method": mem.peak_method if mem else None,
        "saved_for_backward_bytes": mem.saved_for_backward_bytes if mem else None,
        "min_bytes": mem.min_bytes if mem else None,
    })
    for key in ("macs_fwd", "macs_bwd", "flops_fwd", "flops_bwd", "params", "min_bytes_fwd", "min_bytes_bwd",
                "intensity_fwd"):
        row[f"count_{key}"] = (r.counts or {}).get(key)
    row.update({"reasons": "; ".join(r.reasons), "error": r.error or "", "started_utc": r.started_utc,
                "duration_s": r.duration_s})
    return row


def records_frame(records: Iterable[Record], detail: bool = False) -> pd.DataFrame:
    """One row per record: case parameters, status, latency statistics, roofline and memory fields (`detail`: all)."""
    rows = []
    for r in records:
        c = r.case
        s, roof, mem = r.stats, r.roofline, r.memory
        rows.append({
            "case_id": r.case_id, "family": r.family, "variant": f"{r.family}.{r.variant}", "pass": r.pass_,
            "B": c.get("B"), "C": c.get("C"), "H": c.get("H"), "W": c.get("W"), "K": c.get("K"), "G": c.get("G"),
            "s": c.get("stride"), "d": c.get("dilation"), "dtype": c.get("dtype"), "device": c.get("device"),
            "level": c.get("level"), "status": r.status,
            "median_ms": s.median_ms if s else None, "iqr_%": 100 * s.iqr_ms / s.median_ms if s and s.median_ms else None,
            "n": s.n if s else None, "min_ms": s.min_ms if s else None, "mean_ms": s.mean_ms if s else None,
            "GB/s": roof.achieved_gbps if roof else None,
            "GFLOP/s": roof.achieved_flops / 1e9 if roof and roof.achieved_flops is not None else None,
            "FLOP/B": roof.intensity_flop_per_byte if roof else None,
            "%roof": roof.pct_of_roofline if roof else None, "bound": roof.bound_by if roof else None,
            "peak_MiB": mem.peak_bytes / 2**20 if mem and mem.peak_bytes is not None else None,
            "saved_MiB": mem.saved_for_backward_bytes / 2**20 if mem and mem.saved_for_backward_bytes is not None else None,
            "min_MiB": mem.min_bytes / 2**20 if mem and mem.min_bytes is not None else None,
            "macs": r.macs, "flops": r.flops, "params": r.params,
            "stop": r.timer.stop_reason if r.timer else None,
            "timer_overhead_ms": r.timer.overhead_ms if r.timer else None,
            "note": (r.error or "; ".join(r.reasons) or "")[:70],
            **(_detail(r) if detail else {}),
        })
    df = pd.DataFrame(rows)
    numeric = ["median_ms", "iqr_%", "n", "min_ms", "mean_ms", "GB/s", "GFLOP/s", "FLOP/B", "%roof", "peak_MiB",
               "saved_MiB", "min_MiB", "timer_overhead_ms"]
    for col in numeric:
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    for col in _INT_COLUMNS:
        if col in df.columns:
            values = pd.to_numeric(df[col], errors="coerce")
            if values.dropna().mod(1).eq(0).all():
                df[col] = values.astype("Int64")
    return df


#: records_frame's column names as `export` writes them: letters, digits and underscores only
EXPORT_NAMES = {"s": "stride", "d": "dilation", "iqr_%": "iqr_pct", "GB/s": "achieved_gbps",
                "GFLOP/s": "achieved_gflops", "FLOP/B": "intensity_flop_per_byte", "%roof": "pct_of_roofline",
                "bound": "bound_by", "stop": "stop_reason"}
#: records_frame columns `export` leaves out: the MiB figures (it has the bytes) and the note cut at 70 characters
EXPORT_DROPS = ("peak_MiB", "saved_MiB", "min_MiB", "note")


def _run_columns(run: ResultsFile) -> dict:
    """The columns every record of `run` shares: its file, run, suite and the machine's fingerprint."""
    h = run.header
    fp = h.fingerprint
    used_cuda = any(r.case.get("device") == "cuda" for r in run.records)
    return {
        "results_file": run.path, "run_id": h.run_id, "suite": h.suite.name, "suite_sha256": h.suite.sha256,
        "machine": fp.machine_name(used_cuda), "hostname": fp.hostname, "cpu_model": fp.cpu.model,
        "cpu_simd": fp.cpu.widest_simd(), "cpu_logical_cores": fp.cpu.logical_cores, "gpu": fp.gpu_name(),
        "cuda_driver": fp.cuda.driver, "torch_cuda": fp.cuda.torch_cuda, "torch_version": fp.torch.version,
        "torch_threads": fp.torch.threads, "python": fp.python, "os": fp.os, "invobench_version": fp.invobench,
        "git_commit": fp.git.commit, "git_dirty": fp.git.dirty, "run_time_utc": fp.time_utc,
    }


def export_frame(runs: Sequence[ResultsFile]) -> pd.DataFrame:
    """One tidy row per record of every run: records_frame in detail, the run's roofline for the record's device
    and dtype, and the run's fingerprint columns; identifier-safe names (EXPORT_NAMES)."""
    frames = []
    for run in runs:
        df = records_frame(run.records, detail=True)
        if df.empty:
            continue
        roofs = {(roof.device, roof.dtype): roof for roof in run.rooflines if not roof.error}
        keys = list(zip(df["device"], df["dtype"]))
        df["roofline_copy_gbps"] = [getattr(roofs.get(k), "copy_bandwidth_gbps", None) for k in keys]
        peaks = [getattr(roofs.get(k), "matmul_peak_flops", None) for k in keys]
        df["roofline_matmul_gflops"] = [p / 1e9 if p else None for p in peaks]
        for name, value in _run_columns(run).items():
            df[name] = value
        frames.append(df)
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    df = df.drop(columns=[c for c in EXPORT_DROPS if c in df.columns]).rename(columns=EXPORT_NAMES)
    front = ["results_file", "run_id", "machine", "case_id", "family", "variant", "pass", "status"]
    return df[front + [c for c in df.columns if c not in front]]


def filter_frame(df: pd.DataFrame, families: Optional[list[str]] = None, variants: Optional[list[str]] = None,
                 statuses: Optional[list[str]] = None, passes: Optional[list[str]] = None) -> pd.DataFrame:
    if df.empty:
        return df
    keep = df.index == df.index
    if families:
        keep &= df["family"].isin(families)
    if variants:
        def match(v: str) -> bool:
            short = v.split(".", 1)[1]
            return any(fnmatch.fnmatchcase(v, p) or fnmatch.fnmatchcase(short, p) for p in variants)
        keep &= df["variant"].map(match)
    if statuses:
        keep &= df["status"].isin(statuses)
    if passes:
        keep &= df["pass"].isin(passes)
    return df[keep]


def cpu_view(run: ResultsFile) -> pd.DataFrame:
    """involution.cpu against the other CPU forms, per case and pass (module docstring)."""
    by_case: dict[tuple, dict[str, Record]] = {}
    for r in run.records:
        if r.status == "ok" and r.case.get("device") == "cpu" and r.case.get("level") == "op" and \
                (r.family == "involution" or f"{r.family}.{r.variant}" == PEER):
            by_case.setdefault((r.pass_, shape_label(r.case)), {})[r.variant] = r
    rows = []
    for (pass_, label), by in by_case.items():
        cpu = by.get("cpu")
        if cpu is None:
            continue
        med = {name: _median(rec) for name, rec in by.items()}
        roof = cpu.roofline
        best = min((k for k in CPU_OTHERS if med.get(k)), key=lambda k: med[k], default=None)
        rows.append({
            "case": label, "pass": pass_, "cpu ms": med["cpu"],
            "% roofline": roof.pct_of_roofline if roof else None,
            **{f"{k} ms": med.get(k) for k in CPU_OTHERS}, "depthwise ms": med.get("depthwise"),
            "× best other": med[best] / med["cpu"] if best else None, "best other": best,
            "10× needs % roofline": (100 * roof.bound_ms / (med[best] / 10)) if best and roof and roof.bound_ms else None,
        })
    df = pd.DataFrame(rows)
    if not df.empty:
        df = df.sort_values(["pass", "case"], key=lambda col: col.map(_pass_rank) if col.name == "pass" else col,
                            kind="stable").reset_index(drop=True)
    return df


def _pass_rank(pass_: str) -> int:
    order = ("fwd", "bwd", "fwd+bwd", "train")
    return order.index(pass_) if pass_ in order else len(order)


def models_view(run: ResultsFile) -> pd.DataFrame:
    """RedNet against the ResNet of the same depth, per batch and pass: latency, ratio, params, MACs, peak memory."""
    from invobench.models import MODELS, split_variant_name

    by_key: dict[tuple, dict[str, Record]] = {}
    for r in run.records:
        if r.family != "model" or r.status != "ok":
            continue
        model, involution = split_variant_name(r.variant)
        depth = MODELS[model].depth
        kind = f"rednet ({involution})" if involution else "resnet"
        by_key.setdefault((depth, r.case.get("B"), r.pass_), {})[kind] = r
    rows = []
    for (depth, batch, pass_), by in sorted(by_key.items(), key=lambda kv: (kv[0][0], kv[0][1], _pass_rank(kv[0][2]))):
        resnet = by.get("resnet")
        for kind, red in by.items():
            if kind == "resnet" or resnet is None:
                continue
            peak = lambda rec: rec.memory.peak_bytes / 2**20 if rec.memory and rec.memory.peak_bytes else None  # noqa: E731
            rows.append({
                "depth": depth, "B": batch, "pass": pass_, "RedNet": kind.split("(")[1].rstrip(")"),
                "ResNet ms": _median(resnet), "RedNet ms": _median(red), "RedNet ÷ ResNet": _median(red) / _median(resnet),
                "ResNet params M": resnet.params / 1e6 if resnet.params else None,
                "RedNet params M": red.params / 1e6 if red.params else None,
                "ResNet GMACs": resnet.macs / 1e9 if resnet.macs else None,
                "RedNet GMACs": red.macs / 1e9 if red.macs else None,
                "ResNet peak MiB": peak(resnet), "RedNet peak MiB": peak(red),
            })
    return pd.DataFrame(rows)


def largest_case(run: ResultsFile) -> Optional[str]:
    """The shape label of the op-level case with the most input elements (the suite's 'main' case)."""
    best, size = None, -1
    for r in run.records:
        c = r.case
        if c.get("level") != "op":
            continue
        n = c.get("B", 0) * c.get("C", 0) * c.get("H", 0) * c.get("W", 0)
        if n > size:
            best, size = shape_label(c), n
    return best


def reference_view(runs: Sequence[ResultsFile], case: Optional[str] = None) -> pd.DataFrame:
    """Per run and pass, every ok variant at one case: median, × the depthwise conv's median, % of roofline."""
    rows = []
    for run in runs:
        label = case or largest_case(run)
        chosen = [r for r in run.records if r.status == "ok" and shape_label(r.case) == label]
        peers = {r.pass_: _median(r) for r in chosen if f"{r.family}.{r.variant}" == PEER}
        for r in sorted(chosen, key=lambda r: (_pass_rank(r.pass_), _median(r))):
            peer = peers.get(r.pass_)
            rows.append({
                "machine": machine_name(run), "case": f"{label} {r.case.get('dtype')}", "pass": r.pass_,
                "variant": f"{r.family}.{r.variant}", "median ms": _median(r),
                "× depthwise conv": _median(r) / peer if peer else None,
                "% roofline": r.roofline.pct_of_roofline if r.roofline else None,
            })
    return pd.DataFrame(rows)


def verdict_view(run: ResultsFile) -> pd.DataFrame:
    """The verdict's cells: case, pass, the fastest involution variant and its median, × each denominator present."""
    from invobench.report.verdict import build_verdicts

    verdict = build_verdicts([run])[0]
    denominators = verdict.denominators()
    rows = []
    for cell in verdict.cells:
        runner_up = cell.runner_up
        rows.append({
            "case": cell.case, "pass": cell.pass_, "fastest involution": cell.fastest, "median ms": cell.median_ms,
            **{f"× {d.noun}": cell.ratios.get(d.key) for d in denominators},
            "next fastest": runner_up[0] if runner_up else None,
            "next ÷ fastest": runner_up[1] if runner_up else None,
        })
    return pd.DataFrame(rows)


def verdict_lines(run: ResultsFile) -> list[str]:
    """The verdict's bottom line, then one line per (device, dtype) naming the variant to use."""
    from invobench.report.verdict import build_verdicts

    verdict = build_verdicts([run])[0]
    return [verdict.bottom_line] + [r.sentence() for r in verdict.recommendations]


def run_facts(run: ResultsFile) -> str:
    """'machine, threads, torch; suite and commit; copy bandwidth, matmul peak' of one run (the date is in results/README.md)."""
    fp = run.header.fingerprint
    threads = next((roof.threads for roof in run.rooflines if roof.threads), fp.torch.threads)
    roofs = "; ".join(
        f"{roof.device} {roof.dtype}: copy {roof.copy_bandwidth_gbps:.1f} GB/s, matmul {roof.matmul_peak_flops / 1e9:.0f} GFLOP/s"
        for roof in run.rooflines if roof.copy_bandwidth_gbps and roof.matmul_peak_flops) or "roofline not measured"
    commit = str(fp.git.commit or "?")[:7] + (" (dirty)" if fp.git.dirty else "")
    return (f"{machine_name(run)}, {threads} threads, torch {fp.torch.version}; suite `{run.header.suite.name}` at "
            f"commit {commit}; {roofs}")


def to_markdown(df: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as a GitHub Markdown table (numbers to `digits` significant digits)."""
    if df.empty:
        return "(no records)"

    def cell(value) -> str:
        if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
            return "–"
        if isinstance(value, float):
            return f"{value:,.{digits}g}" if abs(value) < 10 ** digits else f"{value:,.0f}"
        return str(value).replace("|", "\\|")

    head = "| " + " | ".join(str(c) for c in df.columns) + " |"
    rule = "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(df[c]) else "---" for c in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])
