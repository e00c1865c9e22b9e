"""`invobench export RESULTS... --format csv|json`: one tidy row per record, for pandas, spreadsheets and databases."""
from __future__ import annotations

import sys

import click


@click.command("export")
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True,
              help="csv: a header line and one line per record; json: an array of one object per record.")
@click.option("-o", "--out", "out", default="-", show_default=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="File to write (parent folders are created); '-' writes to stdout.")
def command(results: tuple[str, ...], fmt: str, out: str) -> None:
    """Write every record of RESULTS (results files, or directories searched for *.jsonl) as one row each.

    Columns: the results file, run and machine; the record's id, family, variant, pass and status;
    every case parameter; the summary statistics (ms); the counts (MACs, FLOPs, parameters, minimum
    bytes); memory (bytes); the roofline fields and the run's measured roofline; the fingerprint
    (CPU, GPU, torch, Python, OS, git commit). Names use letters, digits and underscores only.
    Load with `pandas.read_csv(PATH)` or `pandas.read_json(PATH)`.
    """
    import json
    from pathlib import Path

    from invobench.report.inputs import ReportInputError, load_results
    from invobench.report.views import export_frame

    try:
        runs = load_results(results)
    except ReportInputError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for run in runs:
        duplicates = run.duplicate_warning()
        if duplicates:
            click.echo(f"warning: {duplicates}", err=True)
    df = export_frame(runs)
    if fmt == "csv":
        text = df.to_csv(index=False)
    else:  # pandas writes NaN and <NA> as null; re-dumped so paths keep their plain slashes
        text = json.dumps(json.loads(df.to_json(orient="records", double_precision=15)), indent=1,
                          ensure_ascii=False) + "\n"
    if out == "-":
        click.echo(text, nl=False)
        return
    path = Path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        click.echo(f"error: {path}: cannot write the export: {exc.strerror}", err=True)
        sys.exit(2)
    click.echo(f"wrote {path} ({len(df):,} records from {len(runs)} run(s), {len(df.columns)} columns)", err=True)
