"""The verdict section and the machine view of the report: HTML and plotly figures over `verdict`'s results.

    verdict_html(verdicts) -> (HTML, figures)       per run: bottom line, recommendation, ranges, heatmap
    machine_figure(points) -> Figure | None         machines side by side: latency and % of own roofline

The heatmap has one row per case (suite order, top to bottom) and one column per pass; a cell shows
the fastest involution variant and its median ÷ the denominator's, coloured on a log scale centred
at 1 (green: involution faster, red: slower). Plotly `updatemenus` buttons restyle z, text and
hover data to another denominator, so the selector works offline with no script of ours.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

from invobench.report.escape import esc
from invobench.report.figures import PALETTE, Figure, facet_layout, _axis_names
from invobench.report.verdict import MachinePoint, RunVerdict, fmt_x, range_phrase

#: diverging, green where involution is faster (ratio < 1), white at 1, red where it is slower
COLORSCALE = [[0.0, "#1a9850"], [0.25, "#91cf60"], [0.5, "#f7f7f7"], [0.75, "#fc8d59"], [1.0, "#d73027"]]
#: the colour range spans at least 2× and at most 256× either way (log2 units)
MIN_SPAN, MAX_SPAN = 1.0, 8.0
#: pixels per case row: this many up to ROWS_AT_FULL_HEIGHT cases, then shrinking so the figure stays
#: about MAX_HEIGHT tall (cells lose their text below TEXT_MIN_ROW; the hover still tells)
ROW_PX, ROWS_AT_FULL_HEIGHT, MAX_HEIGHT, TEXT_MIN_ROW = 34, 40, 1600, 24
FAMILY_STYLE = {"involution": ("solid", "circle"), "conv": ("dash", "square"), "attention": ("dot", "diamond")}


def _short(variant: str) -> str:
    return variant.split(".", 1)[1] if variant.startswith("involution.") else variant


def _tick(k: int) -> str:
    return f"1/{2 ** -k:,}" if k < 0 else f"{2 ** k:,}"


def heatmap_figure(verdict: RunVerdict) -> Optional[Figure]:
    """The run's heatmap with a selector per denominator present; None when there is nothing to divide by."""
    denominators = verdict.denominators()
    if not denominators or not verdict.cells:
        return None
    span = max([abs(math.log2(r)) for c in verdict.cells for r in c.ratios.values() if r > 0] + [MIN_SPAN])
    span = min(math.ceil(span), MAX_SPAN)
    by = {(c.case, c.pass_): c for c in verdict.cells}
    states = []
    for d in denominators:
        z, text, custom = [], [], []
        for case in verdict.cases:
            zr, tr, cr = [], [], []
            for pass_ in verdict.passes:
                cell = by.get((case, pass_))
                ratio = cell.ratios.get(d.key) if cell else None
                if cell is None:
                    zr.append(None), tr.append(""), cr.append(["", "", "", "", ""])
                    continue
                if ratio is None:
                    zr.append(None)
                    tr.append(esc(_short(cell.fastest)) + "<br>" + esc(f"(no {d.noun})"))
                    cr.append([esc(cell.fastest), "–", "not measured", f"{cell.median_ms:.4g}", "–"])
                    continue
                zr.append(max(-MAX_SPAN, min(MAX_SPAN, math.log2(ratio))))
                tr.append(esc(_short(cell.fastest)) + f"<br>{fmt_x(ratio)}×")
                cr.append([esc(cell.fastest), fmt_x(ratio), esc(cell.against[d.key]), f"{cell.median_ms:.4g}",
                           f"{cell.against_ms[d.key]:.4g}"])
            z.append(zr), text.append(tr), custom.append(cr)
        states.append((d, z, text, custom))
    first, z, text, custom = states[0]
    ticks = [k for k in range(-int(span), int(span) + 1) if k % 2 == 0 or span <= 3]
    trace = {
        "type": "heatmap", "x": [esc(p) for p in verdict.passes], "y": [esc(c) for c in verdict.cases],
        "z": z, "text": text, "customdata": custom, "texttemplate": "%{text}", "textfont": {"size": 11},
        "colorscale": COLORSCALE, "zmin": -span, "zmax": span, "zmid": 0, "xgap": 2, "ygap": 2,
        "hoverongaps": False, "name": "verdict",
        "hovertemplate": ("%{y} · %{x}<br>fastest involution: %{customdata[0]}, %{customdata[3]} ms<br>"
                          "÷ %{customdata[2]} (%{customdata[4]} ms) = %{customdata[1]}×<extra></extra>"),
        "colorbar": {"title": {"text": "involution ÷ it<br>(log scale)", "side": "right"},
                     "tickvals": ticks, "ticktext": [_tick(k) for k in ticks], "len": 0.9},
    }

    def title(d) -> str:
        return esc(f"Fastest involution variant ÷ {d.noun}, same case and pass "
                   f"(below 1: involution faster)")

    buttons = [{"label": esc("÷ " + d.noun), "method": "update",
                "args": [{"z": [zz], "text": [tt], "customdata": [cc]}, {"title.text": title(d)}]}
               for d, zz, tt, cc in states]
    many = len(buttons) > 1
    n = len(verdict.cases)
    row_px = ROW_PX if n <= ROWS_AT_FULL_HEIGHT else max(4, MAX_HEIGHT // n)
    if row_px < TEXT_MIN_ROW:
        trace["texttemplate"] = ""
    if row_px < 10:
        trace["ygap"] = 0
    layout = {
        "title": {"text": title(first), "x": 0.01, "xanchor": "left", "y": 0.995, "yref": "container", "yanchor": "top",
                  "font": {"size": 14}},
        "height": (150 if many else 110) + row_px * n,
        "margin": {"l": 150, "r": 40, "t": 120 if many else 80, "b": 30},
        "xaxis": {"side": "top", "type": "category", "title": {"text": ""}},
        "yaxis": {"type": "category", "autorange": "reversed", "automargin": True},
        "paper_bgcolor": "white", "plot_bgcolor": "white",
        "updatemenus": [{"type": "buttons", "direction": "right", "buttons": buttons, "showactive": True,
                         "x": 0.0, "xanchor": "left", "y": 1.0, "yanchor": "bottom", "pad": {"b": 30},
                         "font": {"size": 12}}] if many else [],
    }
    return Figure(f"fig-verdict-{verdict.run + 1}", [trace], layout)


def _ranges_table(verdict: RunVerdict) -> str:
    """Denominators as rows, passes as columns: the range of the ratio over the cases of that pass."""
    head = "".join(f"<th>{esc(p)}</th>" for p in verdict.passes)
    body = []
    for d in verdict.denominators():
        cells = []
        for p in verdict.passes:
            span = verdict.ratio_range(d.key, p)
            cells.append(f"<td>{esc(range_phrase(*span)) if span else '–'}</td>")
        body.append(f"<tr><th>{esc(d.noun)}</th>{''.join(cells)}</tr>")
    return (f'<table class="ranges"><thead><tr><th>fastest involution against</th>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>') if body else ""


def verdict_html(verdicts: Sequence[RunVerdict]) -> tuple[str, list[Figure]]:
    """The verdict section's inner HTML and its figures (one heatmap per run with something to compare)."""
    blocks, figures = [], []
    for v in verdicts:
        parts = [f'<div class="verdict" id="verdict-{v.run + 1}">']
        if len(verdicts) > 1:
            parts.append(f"<h3>{esc(v.title)}</h3>")
        parts.append(f'<p class="bottom-line">{esc(v.bottom_line)}</p>')
        if v.recommendations:
            parts.append('<ul class="recommend">' + "".join(f"<li>{esc(r.sentence())}</li>" for r in v.recommendations)
                         + "</ul>")
        parts.append(_ranges_table(v))
        figure = heatmap_figure(v)
        if figure is not None:
            figures.append(figure)
            width = 360 + 240 * len(v.passes)  # cells wide enough for their text, not the whole page
            parts.append(f'<div class="plot heatmap" id="{esc(figure.div_id)}" style="max-width:{width}px"></div>')
        elif v.cells:
            parts.append('<p class="note">No convolution or attention record shares a case with the involution '
                         'records of this run: nothing to divide by.</p>')
        parts.append("</div>")
        blocks.append("".join(parts))
    return "".join(blocks), figures


def machine_figure(points: Sequence[MachinePoint]) -> Optional[Figure]:
    """Per machine, the fastest variant of each family at every shared case: latency and % of its own roofline."""
    series = list(dict.fromkeys(p.series for p in points))
    if len(series) < 2:
        return None
    cases = list(dict.fromkeys(p.case for p in points))
    passes = [p for p in ("fwd", "bwd", "fwd+bwd", "train") if any(x.pass_ == p for x in points)]
    passes += sorted({x.pass_ for x in points} - set(passes))
    n_cols = len(passes)
    layout = facet_layout(2, n_cols, col_titles=[esc(p) for p in passes], x_title="case", y_title="",
                          x_type="category", y_type="log",
                          title="Machines side by side: the fastest variant of each family, as latency and as % of "
                                "each machine's own roofline", row_height=340)
    for row, (title, kind) in enumerate((("median latency, ms", "log"), ("% of own roofline", "linear")), start=1):
        for col in range(1, n_cols + 1):
            xa, ya = _axis_names(row, col, n_cols)
            y = layout["yaxis" + ya[1:]]
            y["title"]["text"] = title if col == 1 else ""
            y["type"] = kind
            if kind == "linear":
                y["rangemode"] = "tozero"
            layout["xaxis" + xa[1:]].update(categoryorder="array", categoryarray=[esc(c) for c in cases],
                                            tickangle=-40)
    data = []
    seen: set[tuple] = set()
    groups: dict[tuple, list[MachinePoint]] = {}
    for p in points:
        groups.setdefault((p.series, p.family, p.pass_), []).append(p)
    for (name, family, pass_), members in groups.items():
        color = PALETTE[series.index(name) % len(PALETTE)]
        dash, symbol = FAMILY_STYLE.get(family, ("solid", "circle"))
        members.sort(key=lambda p: cases.index(p.case))
        legend = esc(f"{name} · {family}")
        hover = [esc(f"{p.variant}: {p.median_ms:.4g} ms") + (f", {p.pct_roofline:.3g}% of roofline"
                                                             if p.pct_roofline is not None else "") for p in members]
        for row, values in ((1, [p.median_ms for p in members]), (2, [p.pct_roofline for p in members])):
            xa, ya = _axis_names(row, passes.index(pass_) + 1, n_cols)
            data.append({
                "type": "scatter", "mode": "lines+markers", "name": legend, "legendgroup": legend,
                "showlegend": (name, family) not in seen, "xaxis": xa, "yaxis": ya,
                "x": [esc(p.case) for p in members], "y": values, "text": hover,
                "hovertemplate": "%{x}<br>%{text}<extra>" + legend + "</extra>",
                "line": {"color": color, "dash": dash, "width": 1.5},
                "marker": {"color": color, "symbol": symbol, "size": 7},
            })
            seen.add((name, family))
    return Figure("fig-machines", data, layout)
