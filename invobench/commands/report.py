"""`invobench report RESULTS... -o report.html`: one self-contained interactive HTML page."""
from __future__ import annotations

import sys

import click


@click.command("report")
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("-o", "--out", "out", default="report.html", show_default=True, type=click.Path(dir_okay=False),
              help="HTML file to write (parent folders are created).")
@click.option("--baseline", default=None, metavar="VARIANT",
              help="Variant the speedup chart divides by (family.variant or name; default involution.eager, "
                   "else conv.depthwise).")
def command(results: tuple[str, ...], out: str, baseline: str | None) -> None:
    """Write an HTML report of RESULTS (results files, or directories searched for *.jsonl).

    Several files are shown side by side (one column per run in every chart). The page embeds
    plotly.js and needs no network.
    """
    from invobench.report.page import write_report
    from invobench.report.inputs import ReportInputError

    try:
        summary = write_report(results, out, baseline=baseline)
    except ReportInputError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for warning in summary.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"wrote {summary.path} ({summary.bytes_ / 1e6:.1f} MB, {summary.records:,} records from "
               f"{summary.runs} run(s), {summary.seconds:.1f} s)")
