"""The report's plotly figures: latency, speedup, roofline, memory and sweeps, one column of subplots per run."""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from invobench.report.cases import case_labels, freeze, use_case_axis
from invobench.report.escape import esc
from invobench.report.rows import PASS_ORDER, Row, _hover, _passes, _sub, _varying
from invobench.results import ResultsFile

#: per trace; beyond this a trace keeps evenly spaced points along x (the section says how many were shown)
MAX_POINTS_PER_TRACE = 600
#: per subplot of a sweep chart; the series with the most points are kept
MAX_SWEEP_SERIES = 16
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#7f7f7f", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354")
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "cross", "star", "hexagon", "triangle-down", "pentagon")
PREFERRED_BASELINES = ("involution.eager", "conv.depthwise")


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

    def add(self, variant: str, sub: str, axes: tuple[str, str], x: float | str, y: float, text: str,
            err_minus: Optional[float] = None, err_plus: Optional[float] = None, order: Optional[float] = None) -> None:
        """One point; `order` sorts and thins points along a categorical x (default: x itself)."""
        bucket = self.points[(variant, sub, axes)]
        bucket["x"].append(x)
        bucket["order"].append(x if order is None else order)
        bucket["y"].append(y)
        bucket["text"].append(text)
        bucket["em"].append(err_minus)
        bucket["ep"].append(err_plus)

    def traces(self, y_format: str = ".4g", mode: str = "markers") -> list[dict]:
        subs = sorted({sub for (_, sub, _) in self.points})
        legend_seen: set[tuple[str, str]] = set()
        out = []
        for (variant, sub, axes), bucket in sorted(self.points.items()):
            x = np.asarray(bucket["order"], dtype=float)
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


class ShapeAxes:
    """The x axes of the shape charts, one per run (column): B·C·H·W for a size ladder (or too many cases to
    label), else the run's case labels in suite order (`cases.use_case_axis`). Model-level records are left
    out: their section is "RedNet against ResNet"."""

    def __init__(self, rows: list[Row]):
        by_run: dict[int, dict[tuple, dict]] = defaultdict(dict)
        for row in rows:
            if row.record.case.get("level") != "model":
                by_run[row.run].setdefault(freeze(row.record.case), row.record.case)
        self.labels: dict[int, dict[tuple, str]] = {}
        self.order: dict[int, dict[str, int]] = {}
        for run, cases in by_run.items():
            if use_case_axis(cases.values()):
                self.labels[run] = dict(zip(cases, case_labels(list(cases.values()))))
                self.order[run] = {label: i for i, label in enumerate(dict.fromkeys(self.labels[run].values()))}

    def point(self, row: Row) -> tuple[float | str, Optional[float]]:
        """(x, its order along the axis) of a row."""
        if row.run not in self.labels:
            return row.elements, None
        label = self.labels[row.run][freeze(row.record.case)]
        return esc(label), float(self.order[row.run][label])

    def usable(self, row: Row) -> bool:
        if row.record.case.get("level") == "model":
            return False
        return row.run in self.labels or bool(row.elements)

    def apply(self, layout: dict, n_cols: int) -> None:
        """Each column's x axis: categories in suite order, or B·C·H·W on a log axis."""
        for key, axis in layout.items():
            if not key.startswith("xaxis"):
                continue
            run = (int(key[5:] or 1) - 1) % n_cols
            if run in self.labels:
                labels = [esc(label) for label in self.order[run]]
                axis.update(type="category", categoryorder="array", categoryarray=labels,
                            tickangle=-40 if len(labels) > 6 else 0)
                title = "case (suite order)"
            else:
                axis["type"] = "log"
                title = "input elements B·C·H·W"
            if axis.get("title", {}).get("text"):
                axis["title"]["text"] = title


def latency_figure(rows: list[Row], n_runs: int, titles: list[str], colors: dict[str, str]) -> Optional[Figure]:
    axis = ShapeAxes([r for r in rows if r.ok])
    ok = [r for r in rows if r.ok and axis.usable(r)]
    if not ok:
        return None
    passes = _passes(ok)
    varying = _varying(ok, ("level", "dtype", "device"))
    traces = TraceSet(colors)
    for row in ok:
        axes = _axis_names(passes.index(row.record.pass_) + 1, row.run + 1, n_runs)
        em = row.median_ms - row.q1_ms if row.q1_ms is not None else None
        ep = row.q3_ms - row.median_ms if row.q3_ms is not None else None
        x, order = axis.point(row)
        traces.add(row.key, _sub(row, varying), axes, x, row.median_ms, _hover(row), em, ep, order=order)
    layout = facet_layout(len(passes), n_runs, row_titles=[esc(p) for p in passes],
                          col_titles=[esc(t) for t in titles] if n_runs > 1 else (),
                          x_title="shape", y_title="median latency, ms",
                          title="Latency against shape (error bars: interquartile range of the samples)")
    axis.apply(layout, n_runs)
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
    axis = ShapeAxes([r for r in rows if r.ok])
    pairs = [r for r in rows if r.ok and axis.usable(r) and r.key != baseline and (r.run, r.case_key) in base]
    if not pairs:
        return None
    passes = _passes(pairs)
    varying = _varying(pairs, ("level", "dtype", "device"))
    traces = TraceSet(colors)
    for row in pairs:
        axes = _axis_names(passes.index(row.record.pass_) + 1, row.run + 1, n_runs)
        speedup = base[(row.run, row.case_key)] / row.median_ms
        x, order = axis.point(row)
        traces.add(row.key, _sub(row, varying), axes, x, speedup, _hover(row), order=order)
    layout = facet_layout(len(passes), n_runs, row_titles=[esc(p) for p in passes],
                          col_titles=[esc(t) for t in titles] if n_runs > 1 else (),
                          x_title="shape", y_title=f"speedup over {esc(baseline)}",
                          title=f"Speedup against {esc(baseline)} (its median ÷ the variant's median, same run)")
    axis.apply(layout, n_runs)
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
    axis = ShapeAxes([r for r in rows if r.record.memory is not None])
    rows_used = [r for r in rows if r.record.memory is not None and axis.usable(r)]
    varying = _varying(rows_used, ("dtype", "device", "level"))
    present = set()
    for row in rows_used:
        for k, (attr, _) in enumerate(kinds):
            value = getattr(row.record.memory, attr)
            if value:
                present.add(k)
                sub = _sub(row, ["pass"] + varying)
                x, order = axis.point(row)
                traces.add(row.key, sub, _axis_names(k + 1, row.run + 1, n_runs), x, float(value),
                           _hover(row) + f"<br>{esc(kinds[k][1])}: {_human_bytes(value)}", order=order)
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
                          x_title="shape", y_title="bytes",
                          title="Memory: peak allocated above the inputs, and bytes saved for backward")
    axis.apply(layout, n_runs)
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


def _human_bytes(value: Optional[float]) -> str:
    if value is None:
        return "–"
    value = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1024
    return f"{value:.3g} TiB"
