"""The interactive HTML report: one self-contained file, plotly.js embedded once, no network requests.

    build_report(runs, baseline=None) -> str      the page for one or more results files
    write_report(paths, out, baseline=None)       find, read, build, write; returns a ReportSummary

Every chart puts the runs side by side (one column of subplots per results file, a shared
y axis), so several machines compare at a glance. Tables (records, counts, failures) are
JSON rendered by a small vanilla-JS component (`assets/report.js`): sortable, filterable,
paged, so 10,000 records stay usable. Text from results files only ever reaches the page
through `html.escape`, JSON with `<`, `>` and `&` escaped (inside <script>), or `textContent`
(in the table component). The report computes no timings; it summarises the samples the
runner recorded.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

from invobench.report.escape import esc, script_json
from invobench.report.figures import (
    PALETTE, Figure, choose_baseline, latency_figure, memory_figure, roofline_figure, speedup_figure, sweep_figure,
)
from invobench.report.inputs import ReportInputError, load_results, machine_name, run_titles
from invobench.report.rows import make_rows
from invobench.report.shards import shard_warning
from invobench.report.tables import counts_table, failures_table, records_table, summary_html
from invobench.report.models_figure import model_figure
from invobench.report.verdict import build_verdicts, machine_points
from invobench.report.verdict_figures import machine_figure, verdict_html
from invobench.results import ResultsFile

TABLE_PAGE_SIZE = 100


def asset(name: str) -> str:
    """A file of `invobench/report/assets/` (the page's CSS and JavaScript), read as package data."""
    return resources.files("invobench.report").joinpath("assets", name).read_text(encoding="utf-8")


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
        f"<title>{esc(title)}</title><style>{asset('report.css')}</style>"
        f"<script type=\"text/javascript\">{_plotly_js()}</script></head>"
        f"<body data-figures=\"{len(figures)}\"><header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>"
        f"<nav>{nav}</nav><main>{body}</main>"
        f"<script type=\"application/json\" id=\"ib-data\">{script_json(payload)}</script>"
        f"<script type=\"text/javascript\">{asset('report.js')}</script></body></html>\n"
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
        duplicates = run.duplicate_warning()
        if duplicates:
            warnings.append(duplicates)
        if shard := shard_warning(run):  # shards merged from different GPU/CPU models
            warnings.append(shard)
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

    verdicts = build_verdicts(runs, rows, titles)
    inner, used = verdict_html(verdicts)
    figures.extend(used)
    sections.append(("verdict", "Verdict: is involution worth it here, and which variant?",
                     '<p class="note">Per results file: the fastest involution variant at each case and pass, its median '
                     '÷ the median of the depthwise conv (the same MACs), the grouped or dense conv, or the fastest '
                     'local self-attention variant, all in the same run. The buttons switch the denominator.</p>'
                     '<div id="warnings"></div>' + inner))
    if n_runs > 1:
        add("machines", "Machines side by side",
            esc("Per results file (and dtype): the fastest variant of each family at the cases they share, as latency "
                "and as % of that machine's own measured roofline, so machines of any size compare fairly."),
            machine_figure(machine_points(runs, rows)), "The results files share no case.")
    n_ok = sum(r.record.status == "ok" for r in rows)
    sections.append(("summary", "Run summary and environment",
                     f'<p class="note">{len(runs)} results file(s), {len(rows):,} records ({n_ok:,} ok). '
                     f'Latencies are medians of the raw samples each record carries; error bars span q1–q3.</p>'
                     + summary_html(runs, rows, titles)))
    sections.append(("records", "Records", '<p class="note">Click a column to sort; type to filter (every word must '
                     'match somewhere in the row).</p><div class="ib-table" id="tbl-records"></div>'))
    add("latency", "Latency against shape", "", latency_figure(rows, n_runs, titles, colors),
        "No ok op- or layer-level records (model records are in the RedNet against ResNet section).")
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
    models = model_figure(rows, n_runs, titles)
    if models is not None:
        add("models", "RedNet against ResNet", esc("Parameters, MACs per image, inference and training-step latency "
                                                    "and peak memory; hatched bars: the published figures (224×224)."),
            models, "")
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
