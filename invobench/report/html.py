"""The interactive HTML report: one self-contained file, plotly.js embedded once, no network requests.

    build_report(runs, baseline=None) -> str      the page for one or more results files
    write_report(paths, out, baseline=None)       find, read, build, write; returns a ReportSummary

Every chart puts the runs side by side (one column of subplots per results file, a shared
y axis), so several machines compare at a glance. Tables (records, counts, failures) are
JSON rendered by a small vanilla-JS component: sortable, filterable, paged, so 10,000 records
stay usable. Text from results files only ever reaches the page through `html.escape`, JSON
with `<`, `>` and `&` escaped (inside <script>), or `textContent` (in the table component).
The report computes no timings; it summarises the samples the runner recorded.
"""
from __future__ import annotations

import html
import json
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np

from invobench.report.inputs import ReportInputError, load_results, machine_name, run_titles
from invobench.report.stats import as_samples
from invobench.results import Record, ResultsFile

PASS_ORDER = ("fwd", "bwd", "fwd+bwd", "train")
#: per trace; beyond this a trace keeps evenly spaced points along x (the section says how many were shown)
MAX_POINTS_PER_TRACE = 600
#: per subplot of a sweep chart; the series with the most points are kept
MAX_SWEEP_SERIES = 16
TABLE_PAGE_SIZE = 100
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#7f7f7f", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354")
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "cross", "star", "hexagon", "triangle-down", "pentagon")
PREFERRED_BASELINES = ("involution.eager", "conv.depthwise")


def esc(value: Any) -> str:
    """Text from a results file, escaped for HTML element content and attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def script_json(value: Any) -> str:
    """JSON that is safe inside <script>: no `</script>`, `<!--` or U+2028 can break out of it."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False, default=_json_default)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


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


# ---- figures ---------------------------------------------------------------------------------

@dataclass
class Figure:
    div_id: str
    data: list[dict]
    layout: dict
    note: str = ""


def _axis_names(row: int, col: int, n_cols: int) -> tuple[str, str]:
    k = (row - 1) * n_cols + col
    return ("x", "y") if k == 1 else (f"x{k}", f"y{k}")


def facet_layout(n_rows: int, n_cols: int, *, row_titles: Sequence[str] = (), col_titles: Sequence[str] = (),
                 x_title: str, y_title: str, x_type: str = "log", y_type: str = "log", title: str = "",
                 row_height: int = 320) -> dict:
    """A plotly layout of n_rows × n_cols subplots (runs as columns), y shared along each row."""
    gap_x, gap_y = 0.05 if n_cols > 1 else 0.0, 0.1 if n_rows > 1 else 0.0
    width = (1.0 - gap_x * (n_cols - 1)) / n_cols
    height = (1.0 - gap_y * (n_rows - 1)) / n_rows
    layout: dict = {
        "title": {"text": title, "x": 0.01, "font": {"size": 15}},
        "height": 120 + row_height * n_rows,
        "margin": {"l": 70, "r": 30, "t": 80, "b": 60},
        "hovermode": "closest",
        "legend": {"groupclick": "toggleitem", "font": {"size": 11}},
        "paper_bgcolor": "white",
        "plot_bgcolor": "#fafafa",
        "annotations": [],
        "shapes": [],
    }
    for r in range(1, n_rows + 1):
        for c in range(1, n_cols + 1):
            xa, ya = _axis_names(r, c, n_cols)
            x0 = (c - 1) * (width + gap_x)
            y1 = 1.0 - (r - 1) * (height + gap_y)
            first_y = _axis_names(r, 1, n_cols)[1]
            layout["xaxis" + xa[1:]] = {
                "domain": [x0, x0 + width], "anchor": ya, "type": x_type, "gridcolor": "#e5e5e5",
                "title": {"text": x_title if r == n_rows else ""}, "automargin": True,
            }
            layout["yaxis" + ya[1:]] = {
                "domain": [y1 - height, y1], "anchor": xa, "type": y_type, "gridcolor": "#e5e5e5",
                "title": {"text": (y_title + (f" — {row_titles[r - 1]}" if row_titles else "")) if c == 1 else ""},
                "automargin": True,
                **({"matches": first_y} if c > 1 else {}),
            }
            if r == 1 and col_titles:
                layout["annotations"].append({
                    "text": col_titles[c - 1], "xref": "paper", "yref": "paper", "x": x0 + width / 2, "y": 1.0,
                    "yshift": 12, "showarrow": False, "font": {"size": 12}, "xanchor": "center", "yanchor": "bottom",
                })
    return layout


def _thin(order: np.ndarray, limit: int) -> np.ndarray:
    """Evenly spaced positions of `order` (indices sorted by x), keeping both ends."""
    if order.size <= limit:
        return order
    return order[np.unique(np.linspace(0, order.size - 1, limit).round().astype(int))]


class TraceSet:
    """Point traces keyed by (variant, sub-kind); colours per variant, symbols per sub-kind, one legend entry each."""

    def __init__(self, colors: dict[str, str]):
        self.colors = colors
        self.points: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        self.shown = 0
        self.total = 0

    def add(self, variant: str, sub: str, axes: tuple[str, str], x: float, y: float, text: str,
            err_minus: Optional[float] = None, err_plus: Optional[float] = None) -> None:
        bucket = self.points[(variant, sub, axes)]
        bucket["x"].append(x)
        bucket["y"].append(y)
        bucket["text"].append(text)
        bucket["em"].append(err_minus)
        bucket["ep"].append(err_plus)

    def traces(self, y_format: str = ".4g", mode: str = "markers") -> list[dict]:
        subs = sorted({sub for (_, sub, _) in self.points})
        legend_seen: set[tuple[str, str]] = set()
        out = []
        for (variant, sub, axes), bucket in sorted(self.points.items()):
            x = np.asarray(bucket["x"], dtype=float)
            order = np.argsort(x, kind="stable")
            keep = _thin(order, MAX_POINTS_PER_TRACE)
            self.total += order.size
            self.shown += keep.size
            name = variant if not sub else f"{variant} · {sub}"
            trace = {
                "type": "scatter", "mode": mode, "name": esc(name), "legendgroup": esc(name),
                "showlegend": (variant, sub) not in legend_seen, "xaxis": axes[0], "yaxis": axes[1],
                "x": [bucket["x"][i] for i in keep], "y": [bucket["y"][i] for i in keep],
                "text": [bucket["text"][i] for i in keep],
                "hovertemplate": "%{text}<br>%{x:.4g}, %{y:" + y_format + "}<extra>" + esc(name) + "</extra>",
                "marker": {"color": self.colors.get(variant, "#444"), "size": 7, "opacity": 0.85,
                           "symbol": SYMBOLS[subs.index(sub) % len(SYMBOLS)]},
                "line": {"color": self.colors.get(variant, "#444"), "width": 1.5},
            }
            if any(v is not None for v in bucket["em"]):
                trace["error_y"] = {"type": "data", "symmetric": False, "thickness": 1, "width": 2,
                                    "array": [bucket["ep"][i] or 0.0 for i in keep],
                                    "arrayminus": [bucket["em"][i] or 0.0 for i in keep]}
            legend_seen.add((variant, sub))
            out.append(trace)
        return out

    def note(self) -> str:
        if self.shown < self.total:
            return f"Showing {self.shown:,} of {self.total:,} points (at most {MAX_POINTS_PER_TRACE} per trace, evenly spaced along x)."
        return ""


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


def latency_figure(rows: list[Row], n_runs: int, titles: list[str], colors: dict[str, str]) -> Optional[Figure]:
    ok = [r for r in rows if r.ok and r.elements]
    if not ok:
        return None
    passes = _passes(ok)
    varying = _varying(ok, ("level", "dtype", "device"))
    traces = TraceSet(colors)
    for row in ok:
        axes = _axis_names(passes.index(row.record.pass_) + 1, row.run + 1, n_runs)
        em = row.median_ms - row.q1_ms if row.q1_ms is not None else None
        ep = row.q3_ms - row.median_ms if row.q3_ms is not None else None
        traces.add(row.key, _sub(row, varying), axes, row.elements, row.median_ms, _hover(row), em, ep)
    layout = facet_layout(len(passes), n_runs, row_titles=[esc(p) for p in passes],
                          col_titles=[esc(t) for t in titles] if n_runs > 1 else (),
                          x_title="input elements B·C·H·W", y_title="median latency, ms",
                          title="Latency against shape (error bars: interquartile range of the samples)")
    data = traces.traces()
    return Figure("fig-latency", data, layout, traces.note())


def choose_baseline(rows: list[Row], requested: Optional[str]) -> tuple[Optional[str], Optional[str]]:
    """(baseline key, problem): the requested variant (family.variant or bare name), else a preferred one present."""
    keys = sorted({r.key for r in rows if r.ok})
    if requested:
        if requested in keys:
            return requested, None
        matches = [k for k in keys if k.split(".", 1)[1] == requested]
        if len(matches) == 1:
            return matches[0], None
        return None, (f"baseline {requested!r} has no ok records in these results"
                      f"{' (ambiguous: ' + ', '.join(matches) + ')' if matches else ''}; "
                      f"variants with ok records: {', '.join(keys) or 'none'}")
    for key in PREFERRED_BASELINES:
        if key in keys:
            return key, None
    return (keys[0], None) if keys else (None, "no ok records")


def speedup_figure(rows: list[Row], baseline: str, n_runs: int, titles: list[str], colors: dict[str, str]) -> Optional[Figure]:
    base = {(r.run, r.case_key): r.median_ms for r in rows if r.ok and r.key == baseline}
    pairs = [r for r in rows if r.ok and r.elements and r.key != baseline and (r.run, r.case_key) in base]
    if not pairs:
        return None
    passes = _passes(pairs)
    varying = _varying(pairs, ("level", "dtype", "device"))
    traces = TraceSet(colors)
    for row in pairs:
        axes = _axis_names(passes.index(row.record.pass_) + 1, row.run + 1, n_runs)
        speedup = base[(row.run, row.case_key)] / row.median_ms
        traces.add(row.key, _sub(row, varying), axes, row.elements, speedup, _hover(row))
    layout = facet_layout(len(passes), n_runs, row_titles=[esc(p) for p in passes],
                          col_titles=[esc(t) for t in titles] if n_runs > 1 else (),
                          x_title="input elements B·C·H·W", y_title=f"speedup over {esc(baseline)}",
                          title=f"Speedup against {esc(baseline)} (its median ÷ the variant's median, same run)")
    for p in range(1, len(passes) + 1):
        for c in range(1, n_runs + 1):
            xa, ya = _axis_names(p, c, n_runs)
            layout["shapes"].append({"type": "line", "xref": f"{xa} domain", "yref": ya, "x0": 0, "x1": 1, "y0": 1, "y1": 1,
                                     "line": {"color": "#555", "width": 1, "dash": "dot"}})
    return Figure("fig-speedup", traces.traces(y_format=".3f"), layout, traces.note())


def roofline_figure(rows: list[Row], runs: Sequence[ResultsFile], titles: list[str], colors: dict[str, str]) -> Optional[Figure]:
    points = [r for r in rows if r.ok and r.intensity and r.achieved_flops]
    ceilings = [(i, roof) for i, run in enumerate(runs) for roof in run.rooflines
                if roof.copy_bandwidth_gbps and roof.matmul_peak_flops]
    if not points and not ceilings:
        return None
    n_runs = len(runs)
    varying = _varying(points, ("pass", "dtype", "device")) if points else []
    traces = TraceSet(colors)
    for row in points:
        traces.add(row.key, _sub(row, varying), _axis_names(1, row.run + 1, n_runs), row.intensity, row.achieved_flops, _hover(row))
    data = traces.traces(y_format=".3s")
    intensities = [r.intensity for r in points] or [0.1, 100.0]
    lo, hi = min(intensities) / 4.0, max(intensities) * 4.0
    for k, (run_index, roof) in enumerate(ceilings):
        bandwidth = roof.copy_bandwidth_gbps * 1e9
        ridge = roof.matmul_peak_flops / bandwidth
        xs = sorted({lo, hi, min(max(ridge, lo), hi)})
        name = esc(f"roofline {roof.device} {roof.dtype}: {roof.copy_bandwidth_gbps:.3g} GB/s, "
                   f"{roof.matmul_peak_flops / 1e9:.4g} GFLOP/s")
        xa, ya = _axis_names(1, run_index + 1, n_runs)
        data.append({"type": "scatter", "mode": "lines", "name": name, "legendgroup": "roofline",
                     "x": xs, "y": [min(bandwidth * x, roof.matmul_peak_flops) for x in xs], "xaxis": xa, "yaxis": ya,
                     "line": {"color": "#222", "dash": ("dash", "dot", "dashdot", "longdash")[k % 4], "width": 1.5},
                     "hovertemplate": name + "<extra></extra>"})
    layout = facet_layout(1, n_runs, col_titles=[esc(t) for t in titles] if n_runs > 1 else (),
                          x_title="arithmetic intensity, FLOP/byte (spec minimum bytes)", y_title="achieved FLOP/s",
                          title="Roofline: achieved FLOP/s against arithmetic intensity, ceilings measured in the same run",
                          row_height=420)
    return Figure("fig-roofline", data, layout, traces.note())


def memory_figure(rows: list[Row], n_runs: int, titles: list[str], colors: dict[str, str]) -> Optional[Figure]:
    kinds = (("peak_bytes", "peak memory above inputs"), ("saved_for_backward_bytes", "saved for backward"))
    traces = TraceSet(colors)
    rows_used = [r for r in rows if r.record.memory is not None and r.elements]
    varying = _varying(rows_used, ("dtype", "device", "level"))
    present = set()
    for row in rows_used:
        for k, (attr, _) in enumerate(kinds):
            value = getattr(row.record.memory, attr)
            if value:
                present.add(k)
                sub = _sub(row, ["pass"] + varying)
                traces.add(row.key, sub, _axis_names(k + 1, row.run + 1, n_runs), row.elements, float(value),
                           _hover(row) + f"<br>{esc(kinds[k][1])}: {_human_bytes(value)}")
    if not present:
        return None
    used_kinds = [k for k in range(len(kinds)) if k in present]
    # re-map rows so an absent kind leaves no empty row
    data = traces.traces(y_format=".3s")
    remap = {_axis_names(k + 1, c, n_runs): _axis_names(used_kinds.index(k) + 1, c, n_runs)
             for k in used_kinds for c in range(1, n_runs + 1)}
    for trace in data:
        trace["xaxis"], trace["yaxis"] = remap[(trace["xaxis"], trace["yaxis"])]
    layout = facet_layout(len(used_kinds), n_runs, row_titles=[kinds[k][1] for k in used_kinds],
                          col_titles=[esc(t) for t in titles] if n_runs > 1 else (),
                          x_title="input elements B·C·H·W", y_title="bytes",
                          title="Memory: peak allocated above the inputs, and bytes saved for backward")
    return Figure("fig-memory", data, layout, traces.note())


def _case_text(case: dict, drop: str) -> str:
    parts = []
    for key, fmt in (("B", "B{}"), ("C", "C{}"), ("H", None), ("K", "K{}"), ("G", "G{}"), ("stride", "s{}"),
                     ("dtype", "{}"), ("level", "{}")):
        if key == drop or key not in case:
            continue
        if key == "H":
            parts.append(f"{case.get('H')}x{case.get('W')}")
        elif key == "stride" and case.get("stride") == 1:
            continue
        else:
            parts.append(fmt.format(case[key]))
    return " ".join(parts)


def sweep_figure(rows: list[Row], axis: str, n_runs: int, titles: list[str], colors: dict[str, str]) -> Optional[Figure]:
    """Latency against one case parameter (G or K), one line per (variant, pass, other parameters) with ≥ 2 values."""
    series: dict[tuple, list[Row]] = defaultdict(list)
    for row in rows:
        if row.ok and isinstance(row.record.case.get(axis), (int, float)):
            rest = tuple(kv for kv in row.case_key[1] if kv[0] != axis)
            series[(row.run, row.key, row.record.pass_, rest)].append(row)
    series = {k: v for k, v in series.items() if len({r.record.case[axis] for r in v}) >= 2}
    if not series:
        return None
    per_run: dict[int, list[tuple]] = defaultdict(list)
    for key in series:
        per_run[key[0]].append(key)
    kept, total = 0, len(series)
    data = []
    legend_seen = set()
    for run_index, keys in per_run.items():
        keys.sort(key=lambda k: (-len(series[k]), k[1], k[2], str(k[3])))
        for key in keys[:MAX_SWEEP_SERIES]:
            kept += 1
            pts = sorted(series[key], key=lambda r: r.record.case[axis])
            name = esc(f"{key[1]} {key[2]} {_case_text(pts[0].record.case, axis)}")
            xa, ya = _axis_names(1, run_index + 1, n_runs)
            data.append({
                "type": "scatter", "mode": "lines+markers", "name": name, "legendgroup": name,
                "showlegend": name not in legend_seen, "xaxis": xa, "yaxis": ya,
                "x": [r.record.case[axis] for r in pts], "y": [r.median_ms for r in pts],
                "text": [_hover(r) for r in pts],
                "error_y": {"type": "data", "symmetric": False, "thickness": 1, "width": 2,
                            "array": [(r.q3_ms - r.median_ms) if r.q3_ms is not None else 0.0 for r in pts],
                            "arrayminus": [(r.median_ms - r.q1_ms) if r.q1_ms is not None else 0.0 for r in pts]},
                "hovertemplate": "%{text}<br>" + axis + "=%{x}, %{y:.4g} ms<extra></extra>",
                "marker": {"color": colors.get(key[1], "#444"), "size": 6},
                "line": {"color": colors.get(key[1], "#444"), "width": 1.5,
                         "dash": ("solid", "dash", "dot", "dashdot")[PASS_ORDER.index(key[2]) % 4 if key[2] in PASS_ORDER else 0]},
            })
            legend_seen.add(name)
    what = {"G": "group count G", "K": "kernel size K"}.get(axis, axis)
    layout = facet_layout(1, n_runs, col_titles=[esc(t) for t in titles] if n_runs > 1 else (),
                          x_title=what, y_title="median latency, ms", x_type="log" if axis == "G" else "linear",
                          title=f"Sweep over the {what} (other parameters fixed; error bars: IQR)", row_height=420)
    if axis == "G":
        for key in list(layout):
            if key.startswith("xaxis"):
                layout[key]["dtick"] = math.log10(2)
    note = f"Showing {kept} of {total} series (at most {MAX_SWEEP_SERIES} per run, the longest)." if kept < total else ""
    return Figure(f"fig-sweep-{axis}", data, layout, note)


# ---- tables ----------------------------------------------------------------------------------

def _human_bytes(value: Optional[float]) -> str:
    if value is None:
        return "–"
    value = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1024
    return f"{value:.3g} TiB"


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
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items() if v not in (None, "", [], {}))
    if isinstance(value, list):
        return "; ".join(_fmt_fp(v) for v in value)
    return "" if value is None else str(value)


def host_loads(run: ResultsFile) -> list[float]:
    """The 1-minute load averages the runner recorded at the start of each case group (info.host_load)."""
    loads = []
    for record in run.records:
        value = record.info.get("host_load") if isinstance(record.info, dict) else None
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], (int, float)):
            loads.append(float(value[0]))
    return loads


def _load_range(run: ResultsFile) -> str:
    loads = host_loads(run)
    if not loads:
        return "not recorded"
    cores = (run.header.fingerprint.get("cpu") or {}).get("logical_cores") if isinstance(run.header.fingerprint, dict) else None
    return (f"1-min load average {min(loads):.1f}–{max(loads):.1f}" + (f" on {cores} logical cores" if cores else "")
            + (" (busy host: samples inflated and spread)" if cores and max(loads) > cores else ""))


def summary_html(runs: Sequence[ResultsFile], rows: list[Row], titles: list[str]) -> str:
    """One column per run: provenance, status counts and the run's measured rooflines."""
    def fp(run: ResultsFile, *path: str) -> Any:
        node: Any = run.header.fingerprint
        for p in path:
            node = node.get(p) if isinstance(node, dict) else None
        return node

    def git(run: ResultsFile) -> str:
        info = fp(run, "git") or {}
        commit = str(info.get("commit") or "?")[:12]
        return commit + (" (dirty)" if info.get("dirty") else "")

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
        devices = fp(run, "cuda", "devices") or []
        names = [str(d.get("name")) for d in devices if isinstance(d, dict)]
        driver = fp(run, "cuda", "driver")
        return ", ".join(names) + (f" (driver {driver})" if driver else "") if names else "none"

    fields = [
        ("results file", lambda i, r: r.path + (" (partial last line dropped)" if r.dropped_partial_line else "")),
        ("run id", lambda i, r: r.header.run_id),
        ("suite", lambda i, r: f"{r.header.suite.name} (sha256 {r.header.suite.sha256[:12]})"),
        ("started", lambda i, r: fp(r, "time_utc")),
        ("machine", lambda i, r: machine_name(r)),
        ("CPU", lambda i, r: _fmt_fp(fp(r, "cpu"))),
        ("GPU", lambda i, r: gpus(r)),
        ("torch", lambda i, r: _fmt_fp(fp(r, "torch"))),
        ("packages", lambda i, r: _fmt_fp(fp(r, "packages"))),
        ("Python / OS", lambda i, r: f"{fp(r, 'python')} / {fp(r, 'os')}"),
        ("git commit", lambda i, r: git(r)),
        ("environment", lambda i, r: _fmt_fp(fp(r, "env")) or "–"),
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


# ---- the page --------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fff}
header{background:#1f2937;color:#fff;padding:12px 24px}
header h1{margin:0;font-size:20px} header p{margin:4px 0 0;color:#cbd5e1;font-size:13px}
nav{position:sticky;top:0;z-index:10;background:#f3f4f6;border-bottom:1px solid #ddd;padding:6px 24px;font-size:13px}
nav a{margin-right:14px;color:#1d4ed8;text-decoration:none}
main{padding:8px 24px 40px} section{margin:28px 0} h2{font-size:17px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
.note{color:#555;font-size:13px} .warn{background:#fff7ed;border-left:4px solid #f59e0b;padding:6px 10px;margin:4px 0;font-size:13px}
table{border-collapse:collapse;font-size:12.5px} th,td{border:1px solid #e5e7eb;padding:3px 6px;vertical-align:top;text-align:left}
table.summary td{max-width:520px;word-break:break-word} table.summary tbody th{background:#f9fafb;white-space:nowrap}
.ib-table .controls{display:flex;gap:8px;align-items:center;margin:6px 0;flex-wrap:wrap;font-size:13px}
.ib-table input[type=search]{width:380px;padding:4px 6px;font-size:13px}
.ib-table th{cursor:pointer;background:#f3f4f6;position:sticky;top:0;z-index:1;user-select:none;white-space:nowrap}
.ib-table th.sorted-asc::after{content:" ▲"} .ib-table th.sorted-desc::after{content:" ▼"}
.ib-table td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.ib-table td.text{max-width:460px;word-break:break-word}
.ib-table .wrap{overflow:auto;max-height:70vh;border:1px solid #e5e7eb}
td.status-ok{color:#166534} td.status-skipped{color:#6b7280} td.status-error,td.status-crashed,td.status-oom,td.status-timeout{color:#b91c1c;font-weight:600}
td.status-regression,td.status-broken{color:#b91c1c;font-weight:600} td.status-improvement,td.status-fixed{color:#166534;font-weight:600}
.plot{width:100%;min-height:300px}
"""

_APP_JS = r"""
(function(){
"use strict";
var DATA = JSON.parse(document.getElementById("ib-data").textContent);
function fmt(v, kind){
  if (v === null || v === undefined || v === "") return "";
  if (kind === "int") return Number(v).toLocaleString("en-US");
  if (kind === "num") { var a = Math.abs(v); return (a !== 0 && (a < 1e-3 || a >= 1e6)) ? Number(v).toExponential(3) : String(Number(Number(v).toPrecision(4))); }
  if (kind === "bytes") { var u = ["B","KiB","MiB","GiB","TiB"], x = Number(v), i = 0; while (Math.abs(x) >= 1024 && i < u.length - 1) { x /= 1024; i++; } return (i ? x.toPrecision(3) : String(x)) + " " + u[i]; }
  return String(v);
}
function makeTable(host, spec){
  var cols = spec.columns, rows = spec.rows, pageSize = spec.pageSize || 100;
  var hay = rows.map(function(r){ return r.map(function(v, j){ return fmt(v, cols[j].kind); }).join("\u0001").toLowerCase(); });
  var statusCol = -1; cols.forEach(function(c, j){ if (c.kind === "status" && statusCol < 0) statusCol = j; });
  var state = {filter: "", status: "", sortCol: -1, sortDir: 1, page: 0};
  var controls = document.createElement("div"); controls.className = "controls";
  var input = document.createElement("input"); input.type = "search"; input.className = "filter";
  input.placeholder = spec.placeholder || "filter"; input.setAttribute("aria-label", "filter rows");
  controls.appendChild(input);
  var select = null;
  if (statusCol >= 0) {
    select = document.createElement("select"); select.className = "status-filter";
    var seen = {}; rows.forEach(function(r){ seen[r[statusCol]] = (seen[r[statusCol]] || 0) + 1; });
    var opt = document.createElement("option"); opt.value = ""; opt.textContent = "any " + cols[statusCol].label; select.appendChild(opt);
    Object.keys(seen).sort().forEach(function(s){ var o = document.createElement("option"); o.value = s; o.textContent = s + " (" + seen[s] + ")"; select.appendChild(o); });
    controls.appendChild(select);
  }
  var prev = document.createElement("button"); prev.textContent = "◀ prev"; prev.className = "prev";
  var next = document.createElement("button"); next.textContent = "next ▶"; next.className = "next";
  var count = document.createElement("span"); count.className = "count";
  controls.appendChild(prev); controls.appendChild(next); controls.appendChild(count);
  var wrap = document.createElement("div"); wrap.className = "wrap";
  var table = document.createElement("table"), thead = document.createElement("thead"), tbody = document.createElement("tbody");
  var tr = document.createElement("tr");
  cols.forEach(function(c, j){
    var th = document.createElement("th"); th.textContent = c.label; th.title = "sort by " + c.label;
    th.addEventListener("click", function(){ if (state.sortCol === j) state.sortDir = -state.sortDir; else { state.sortCol = j; state.sortDir = 1; } state.page = 0; render(); });
    tr.appendChild(th);
  });
  thead.appendChild(tr); table.appendChild(thead); table.appendChild(tbody); wrap.appendChild(table);
  host.appendChild(controls); host.appendChild(wrap);
  var view = [];
  function compute(){
    var words = state.filter.toLowerCase().split(/\s+/).filter(function(w){ return w.length > 0; });
    view = [];
    for (var i = 0; i < rows.length; i++) {
      if (state.status && rows[i][statusCol] !== state.status) continue;
      var ok = true;
      for (var w = 0; w < words.length; w++) { if (hay[i].indexOf(words[w]) < 0) { ok = false; break; } }
      if (ok) view.push(i);
    }
    if (state.sortCol >= 0) {
      var j = state.sortCol, dir = state.sortDir, numeric = cols[j].kind !== "text" && cols[j].kind !== "status";
      view.sort(function(a, b){
        var x = rows[a][j], y = rows[b][j];
        if (x === null || x === undefined || x === "") return (y === null || y === undefined || y === "") ? a - b : 1;
        if (y === null || y === undefined || y === "") return -1;
        var c = numeric ? (x - y) : String(x).localeCompare(String(y));
        return c !== 0 ? dir * c : a - b;
      });
    }
  }
  function render(){
    compute();
    var pages = Math.max(1, Math.ceil(view.length / pageSize));
    state.page = Math.min(state.page, pages - 1);
    var start = state.page * pageSize, end = Math.min(view.length, start + pageSize);
    var frag = document.createDocumentFragment();
    for (var k = start; k < end; k++) {
      var r = rows[view[k]], tr = document.createElement("tr");
      for (var j = 0; j < cols.length; j++) {
        var td = document.createElement("td"), kind = cols[j].kind;
        td.textContent = fmt(r[j], kind);
        td.className = (kind === "text") ? "text" : (kind === "status" ? "status-" + String(r[j]).replace(/[^a-z ]/gi, "").replace(/ /g, "-") : "num");
        tr.appendChild(td);
      }
      frag.appendChild(tr);
    }
    tbody.replaceChildren(frag);
    Array.prototype.forEach.call(tr_head(), function(th, j){ th.className = j === state.sortCol ? (state.sortDir > 0 ? "sorted-asc" : "sorted-desc") : ""; });
    count.textContent = (view.length ? (start + 1) + "–" + end : "0") + " of " + view.length.toLocaleString("en-US") + " matching (" + rows.length.toLocaleString("en-US") + " in all), page " + (state.page + 1) + "/" + pages;
    host.setAttribute("data-matching", String(view.length));
    prev.disabled = state.page === 0; next.disabled = state.page >= pages - 1;
  }
  function tr_head(){ return thead.querySelectorAll("th"); }
  input.addEventListener("input", function(){ state.filter = input.value; state.page = 0; render(); });
  if (select) select.addEventListener("change", function(){ state.status = select.value; state.page = 0; render(); });
  prev.addEventListener("click", function(){ state.page--; render(); });
  next.addEventListener("click", function(){ state.page++; render(); });
  render();
}
Object.keys(DATA.tables).forEach(function(id){ var host = document.getElementById(id); if (host) makeTable(host, DATA.tables[id]); });
var config = {responsive: true, displaylogo: false, showLink: false, showEditInChartStudio: false, showSendToCloud: false};
DATA.figures.forEach(function(f){ Plotly.newPlot(f.id, f.data, f.layout, config); });
document.body.setAttribute("data-rendered", "1");
})();
"""


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def render_page(title: str, subtitle: str, sections: list[tuple[str, str, str]], figures: list[Figure],
                tables: dict[str, dict]) -> str:
    """The whole document. sections: (anchor id, heading, inner HTML); figures/tables are placed by their div ids."""
    nav = "".join(f'<a href="#{esc(anchor)}">{esc(heading)}</a>' for anchor, heading, _ in sections)
    body = "".join(f'<section id="{esc(anchor)}"><h2>{esc(heading)}</h2>{inner}</section>'
                   for anchor, heading, inner in sections)
    payload = {
        "figures": [{"id": f.div_id, "data": f.data, "layout": f.layout} for f in figures],
        "tables": {k: {**v, "pageSize": TABLE_PAGE_SIZE} for k, v in tables.items()},
    }
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        # no network: nothing outside this file may load, whatever a results file contains
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
        "style-src 'unsafe-inline'; img-src data: blob:; font-src data:\">"
        f"<title>{esc(title)}</title><style>{_CSS}</style>"
        f"<script type=\"text/javascript\">{_plotly_js()}</script></head>"
        f"<body data-figures=\"{len(figures)}\"><header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>"
        f"<nav>{nav}</nav><main>{body}</main>"
        f"<script type=\"application/json\" id=\"ib-data\">{script_json(payload)}</script>"
        f"<script type=\"text/javascript\">{_APP_JS}</script></body></html>\n"
    )


def _figure_block(figure: Optional[Figure], missing: str) -> tuple[str, list[Figure]]:
    if figure is None:
        return f'<p class="note">{esc(missing)}</p>', []
    note = f'<p class="note">{esc(figure.note)}</p>' if figure.note else ""
    return f'{note}<div class="plot" id="{esc(figure.div_id)}"></div>', [figure]


def build_report(runs: Sequence[ResultsFile], baseline: Optional[str] = None,
                 warnings: Optional[list[str]] = None) -> str:
    """The report page for `runs` (one column per run in every chart). Appends what it noticed to `warnings`."""
    warnings = warnings if warnings is not None else []
    for run in runs:
        if not run.records:
            warnings.append(f"{run.path}: the run has a header but no records yet")
        if run.dropped_partial_line:
            warnings.append(f"{run.path}: a partial last line was dropped")
    rows = make_rows(runs, warnings)
    titles = run_titles(list(runs))
    n_runs = len(runs)
    variants = sorted({r.key for r in rows})
    colors = {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(variants)}
    baseline_key, problem = choose_baseline(rows, baseline)
    if problem and baseline:
        warnings.append(problem)

    figures: list[Figure] = []
    sections: list[tuple[str, str, str]] = []

    def add(anchor: str, heading: str, intro: str, figure: Optional[Figure], missing: str) -> None:
        block, used = _figure_block(figure, missing)
        figures.extend(used)
        sections.append((anchor, heading, (f'<p class="note">{intro}</p>' if intro else "") + block))

    n_ok = sum(r.record.status == "ok" for r in rows)
    sections.append(("summary", "Run summary and environment",
                     f'<p class="note">{len(runs)} results file(s), {len(rows):,} records ({n_ok:,} ok). '
                     f'Latencies are medians of the raw samples each record carries; error bars span q1–q3.</p>'
                     + summary_html(runs, rows, titles) + '<div id="warnings"></div>'))
    sections.append(("records", "Records", '<p class="note">Click a column to sort; type to filter (every word must '
                     'match somewhere in the row).</p><div class="ib-table" id="tbl-records"></div>'))
    add("latency", "Latency against shape", "", latency_figure(rows, n_runs, titles, colors), "No ok records with a B, C, H, W shape.")
    if baseline_key:
        add("speedup", "Speedup against a baseline",
            esc(f"Baseline {baseline_key} (choose another with --baseline). Above 1: faster than the baseline."),
            speedup_figure(rows, baseline_key, n_runs, titles, colors),
            f"No other variant shares a case with {baseline_key}.")
    else:
        sections.append(("speedup", "Speedup against a baseline", f'<p class="note">{esc(problem or "no baseline")}</p>'))
    add("roofline", "Roofline", esc("Ceilings: copy bandwidth and matmul peak measured in the same run "
                                    "(spec §6); points: FLOPs ÷ median latency at the spec's minimum bytes."),
        roofline_figure(rows, runs, titles, colors), "No roofline measurements and no records with intensity and FLOPs.")
    add("memory", "Memory", "", memory_figure(rows, n_runs, titles, colors), "No memory measurements in these results.")
    add("groups", "Group-count sweep", "", sweep_figure(rows, "G", n_runs, titles, colors),
        "No case was run at two or more group counts with everything else equal.")
    add("kernels", "Kernel-size sweep", "", sweep_figure(rows, "K", n_runs, titles, colors),
        "No case was run at two or more kernel sizes with everything else equal.")
    sections.append(("counts", "FLOPs, MACs and parameters",
                     '<p class="note">Analytic counts of the spec (MACs: multiply-accumulates, the paper\'s "FLOPs"; '
                     'FLOPs = 2·MACs), one row per variant, pass and case.</p><div class="ib-table" id="tbl-counts"></div>'))
    failures = failures_table(rows, n_runs)
    sections.append(("failures", "Failed and skipped cases",
                     (f'<p class="note">{len(failures["rows"])} distinct (status, variant, pass, reason) groups.</p>'
                      if failures["rows"] else '<p class="note">Every record ran: nothing failed or was skipped.</p>')
                     + '<div class="ib-table" id="tbl-failures"></div>'))
    # warnings found while building go at the top of the page
    warn_html = "".join(f'<div class="warn">{esc(w)}</div>' for w in warnings)
    sections[0] = (sections[0][0], sections[0][1], sections[0][2].replace('<div id="warnings"></div>',
                                                                         f'<div id="warnings">{warn_html}</div>'))
    tables = {"tbl-records": records_table(rows, n_runs), "tbl-counts": counts_table(rows), "tbl-failures": failures}
    machines = sorted({machine_name(r) for r in runs})
    return render_page("invobench report", f"{len(rows):,} records from {len(runs)} run(s) on {', '.join(machines)}",
                       sections, figures, tables)


@dataclass
class ReportSummary:
    path: Path
    bytes_: int
    runs: int
    records: int
    seconds: float
    warnings: list[str] = field(default_factory=list)


def write_report(paths: Iterable[Union[str, Path]], out: Union[str, Path], baseline: Optional[str] = None) -> ReportSummary:
    """Read the results under `paths`, build the page and write it to `out` (parent folders created)."""
    started = time.perf_counter()
    runs = load_results(paths)
    warnings: list[str] = []
    page = build_report(runs, baseline=baseline, warnings=warnings)
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ReportInputError(f"{out}: cannot write the report: {exc.strerror}") from exc
    return ReportSummary(out, out.stat().st_size, len(runs), sum(len(r.records) for r in runs),
                         time.perf_counter() - started, warnings)


# ---- the comparison page ---------------------------------------------------------------------

VERDICT_COLORS = {"regression": "#d62728", "broken": "#9d174d", "improvement": "#2ca02c", "fixed": "#17becf",
                  "no change": "#7f7f7f", "not judged": "#c7c7c7", "reference": "#c7c7c7"}


def comparison_figure(comparison) -> Optional[Figure]:
    """Every judged case's ratio with its interval, sorted, against the gate's two thresholds (log y)."""
    judged = sorted((c for c in comparison.cases if c.ci_low is not None), key=lambda c: c.ratio)
    if not judged:
        return None
    data = []
    for verdict_name, color in VERDICT_COLORS.items():
        members = [(rank, c) for rank, c in enumerate(judged, start=1) if c.verdict == verdict_name]
        if not members:
            continue
        data.append({
            "type": "scatter", "mode": "markers", "name": f"{verdict_name} ({len(members)})", "x": [m[0] for m in members],
            "y": [m[1].ratio for m in members], "marker": {"color": color, "size": 6},
            "text": [esc(f"{c.variant_key} {c.pass_}: {c.label}") for _, c in members],
            "error_y": {"type": "data", "symmetric": False, "thickness": 1, "width": 0,
                        "array": [c.ci_high - c.ratio for _, c in members],
                        "arrayminus": [c.ratio - c.ci_low for _, c in members]},
            "hovertemplate": "%{text}<br>ratio %{y:.3f}<extra></extra>",
        })
    layout = facet_layout(1, 1, x_title="cases, sorted by ratio", y_title="NEW / BASE median",
                          x_type="linear", y_type="log", row_height=380,
                          title=f"Ratio of medians with {comparison.confidence:.0%} bootstrap intervals")
    for level, label in ((1 + comparison.threshold, "regression threshold"), (1 / (1 + comparison.threshold), "improvement threshold")):
        layout["shapes"].append({"type": "line", "xref": "x domain", "yref": "y", "x0": 0, "x1": 1, "y0": level, "y1": level,
                                 "line": {"color": "#555", "width": 1, "dash": "dash"}})
        layout["annotations"].append({"text": f"{label} {level:.3f}", "xref": "x domain", "yref": "y", "x": 0.0,
                                      "y": math.log10(level), "showarrow": False, "xanchor": "left", "yanchor": "bottom",
                                      "font": {"size": 10, "color": "#555"}})
    return Figure("fig-compare", data, layout)


def render_comparison_html(comparison) -> str:
    """A self-contained page for one `invobench compare`: verdict, rule, chart, and every case in a table."""
    from invobench.report.compare import describe_rule

    failures = comparison.gate_failures
    verdict_line = (f"{len(failures)} case(s) regressed or newly failed" if failures else "no regression")
    info = (f"<table class=\"summary\"><tbody>"
            f"<tr><th>BASE</th><td>{esc(comparison.base_path)} · {esc(comparison.base_run_id)} · {esc(comparison.base_machine)}</td></tr>"
            f"<tr><th>NEW</th><td>{esc(comparison.new_path)} · {esc(comparison.new_run_id)} · {esc(comparison.new_machine)}</td></tr>"
            f"<tr><th>rule</th><td>{esc(describe_rule(comparison))}</td></tr>"
            f"<tr><th>cases</th><td>{esc(comparison.summary_line())}</td></tr>"
            f"<tr><th>bootstrap</th><td>{comparison.n_resamples} resamples, seed {comparison.seed}; "
            f"multiple-comparison correction: {esc(comparison.correction)}</td></tr>"
            f"</tbody></table>")
    warn_html = "".join(f'<div class="warn">{esc(w)}</div>' for w in comparison.warnings)
    figure = comparison_figure(comparison)
    block, figures = _figure_block(figure, "No case could be judged (see the table's notes).")
    columns = [("verdict", "verdict", "status"), ("variant", "variant", "text"), ("pass", "pass", "text"),
               ("case", "case", "text"), ("base", "BASE median ms", "num"), ("new", "NEW median ms", "num"),
               ("ratio", "ratio" if comparison.normalize_by is None else f"ratio (÷ {comparison.normalize_by})", "num"),
               ("lo", "CI low", "num"), ("hi", "CI high", "num"), ("p", "p", "num"),
               ("padj", "p (Holm)" if comparison.correction == "holm" else "p used", "num"),
               ("nb", "n BASE", "int"), ("nn", "n NEW", "int"), ("note", "note", "text"), ("case_id", "case id", "text")]
    rows = [[c.verdict, c.variant_key, c.pass_, c.label, _round(c.base_median_ms), _round(c.new_median_ms),
             _round(c.ratio, 4), _round(c.ci_low, 4), _round(c.ci_high, 4), _round(c.p_value, 3), _round(c.p_adjusted, 3), c.n_base, c.n_new,
             c.note, c.case_id] for c in comparison.cases]
    only = ""
    if comparison.only_in_base or comparison.only_in_new:
        only = (f'<p class="note">Only in BASE: {len(comparison.only_in_base)} '
                f'({esc("; ".join(comparison.only_in_base[:5]))}{" …" if len(comparison.only_in_base) > 5 else ""}). '
                f'Only in NEW: {len(comparison.only_in_new)} '
                f'({esc("; ".join(comparison.only_in_new[:5]))}{" …" if len(comparison.only_in_new) > 5 else ""}).</p>')
    sections = [
        ("summary", "Summary", info + warn_html + only),
        ("ratios", "Ratios", block),
        ("cases", "Cases", '<div class="ib-table" id="tbl-cases"></div>'),
    ]
    tables = {"tbl-cases": {"columns": [{"key": k, "label": label, "kind": kind} for k, label, kind in columns],
                            "rows": rows, "placeholder": "filter cases, e.g.  regression eager"}}
    return render_page(f"invobench compare: {verdict_line}", f"{comparison.base_run_id} → {comparison.new_run_id}",
                       sections, figures, tables)
