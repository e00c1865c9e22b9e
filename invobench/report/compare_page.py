"""The HTML page of one `invobench compare`: verdict, rule, the ratios chart, and every case in a table."""
from __future__ import annotations

import math
from typing import Optional

from invobench.report.compare import describe_rule
from invobench.report.escape import esc
from invobench.report.figures import Figure, facet_layout
from invobench.report.page import _figure_block, render_page
from invobench.report.tables import _round


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
