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
@click.option("--screenshot", "screenshot_path", default=None, type=click.Path(dir_okay=False), metavar="PNG",
              help="Also save a picture of the page (headless Chromium; needs chromium, chromium-driver and selenium).")
@click.option("--section", default=None, metavar="ID",
              help="With --screenshot: only this section of the page (e.g. latency, roofline); default the whole page.")
def command(results: tuple[str, ...], out: str, baseline: str | None, screenshot_path: str | None,
            section: str | None) -> None:
    """Write an HTML report of RESULTS (results files, or directories searched for *.jsonl).

    Several files are shown side by side (one column per run in every chart). The page embeds
    plotly.js and needs no network.
    """
    from invobench.report.inputs import ReportInputError
    from invobench.report.page import write_report

    if screenshot_path:  # before the report is built: a missing browser is known at once
        from invobench.report.screenshot import missing

        problem = missing()
        if problem:
            raise click.BadParameter(f"no picture can be taken here: {problem}", param_hint="--screenshot")
    try:
        summary = write_report(results, out, baseline=baseline)
    except ReportInputError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for warning in summary.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"wrote {summary.path} ({summary.bytes_ / 1e6:.1f} MB, {summary.records:,} records from "
               f"{summary.runs} run(s), {summary.seconds:.1f} s)")
    if screenshot_path:
        from invobench.report.screenshot import screenshot

        try:
            png = screenshot(summary.path, screenshot_path, section=section)
        except (RuntimeError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"wrote {png}")
