"""`invobench compare BASE NEW`: per-case ratio of medians, bootstrap CI, Mann–Whitney p, regression gate."""
from __future__ import annotations

import sys

import click


@click.command("compare")
@click.argument("base", type=click.Path(path_type=str))
@click.argument("new", type=click.Path(path_type=str))
@click.option("--threshold", default=0.05, show_default=True, type=float,
              help="Smallest slowdown that counts, as a fraction: a regression's whole CI lies above 1 + threshold.")
@click.option("--alpha", default=0.05, show_default=True, type=float, help="Significance level of the Mann–Whitney U test.")
@click.option("--normalize-by", "normalize_by", default=None, metavar="VARIANT",
              help="Divide each latency by this variant's latency in the same run at the same case "
                   "(e.g. conv.depthwise), to cancel machine speed when BASE and NEW ran on different machines.")
@click.option("--format", "fmt", type=click.Choice(["table", "md", "json"]), default="table", show_default=True,
              help="table: for the terminal; md: a PR comment; json: for machines.")
@click.option("--html", "html_path", default=None, type=click.Path(dir_okay=False),
              help="Also write an HTML comparison report here.")
@click.option("--fail-on-regression", is_flag=True, help="Exit 1 when any case regresses or newly fails.")
@click.option("--correction", type=click.Choice(["holm", "none"]), default="holm", show_default=True,
              help="Multiple-comparison correction of the p-values over all judged cases (holm: ALPHA bounds the "
                   "chance of any false alarm in the whole comparison; none: per case).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the bootstrap.")
@click.option("--resamples", default=2000, show_default=True, type=click.IntRange(100, 100_000),
              help="Bootstrap resamples per case.")
def command(base: str, new: str, threshold: float, alpha: float, normalize_by: str | None, fmt: str,
            html_path: str | None, fail_on_regression: bool, correction: str, seed: int, resamples: int) -> None:
    """Compare results file NEW against BASE, case by case (matched by case id).

    A case regresses when the whole 95% bootstrap interval of median(NEW)/median(BASE) lies
    above 1 + THRESHOLD and the Mann–Whitney U p-value (Holm-adjusted over all judged cases) is
    below ALPHA; improvements likewise below 1/(1 + THRESHOLD). A directory argument must hold
    exactly one results file.
    """
    from pathlib import Path

    from invobench.report.compare import CompareError, compare_runs, to_json, to_markdown, to_rich_table
    from invobench.report.inputs import ReportInputError, find_results_files, load_results

    try:
        sides = []
        for name, arg in (("BASE", base), ("NEW", new)):
            files = find_results_files([arg])
            if len(files) != 1:
                raise ReportInputError(f"{name} {arg}: holds {len(files)} results files; give one file "
                                       f"(merge shards first with `invobench merge`)")
            sides.append(load_results(files)[0])
        comparison = compare_runs(sides[0], sides[1], threshold=threshold, alpha=alpha, normalize_by=normalize_by,
                                  n_resamples=resamples, seed=seed, correction=correction)
    except (ReportInputError, CompareError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if fmt == "json":
        click.echo(to_json(comparison))
    elif fmt == "md":
        click.echo(to_markdown(comparison), nl=False)
    else:
        from rich.console import Console

        console = Console()
        if not console.is_terminal:
            console = Console(width=200)  # piped into a file or a CI log: don't fold the table into 80 columns
        console.print(to_rich_table(comparison))
        console.print(comparison.summary_line())
    for warning in comparison.warnings:
        click.echo(f"warning: {warning}", err=True)
    if html_path:
        from invobench.report.compare_page import render_comparison_html

        out = Path(html_path)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(render_comparison_html(comparison), encoding="utf-8")
        except OSError as exc:
            click.echo(f"error: {out}: cannot write the HTML comparison: {exc.strerror}", err=True)
            sys.exit(2)
        click.echo(f"wrote {out}", err=True)
    failures = comparison.gate_failures
    if fail_on_regression and failures:
        click.echo(f"FAIL: {len(failures)} case(s) regressed or newly failed "
                   f"(threshold {threshold:.0%}, alpha {alpha})", err=True)
        sys.exit(1)
