"""`invobench show RESULTS`: a results file as a table (every record, or a summary view), for the terminal,
Markdown (pull-request comments, docs) or CSV."""
from __future__ import annotations

import click

from invobench.report.views import VIEWS

#: the columns of the terminal table of records (CSV has every column of `records_frame`)
TABLE_COLUMNS = ["variant", "pass", "B", "C", "H", "W", "K", "G", "s", "dtype", "device", "level", "status",
                 "median_ms", "iqr_%", "n", "GB/s", "GFLOP/s", "%roof", "peak_MiB", "saved_MiB", "note"]


def format_table(df, columns=None) -> str:
    import pandas as pd

    if df.empty:
        return "(no records)"
    view = df[[c for c in columns if c in df.columns]] if columns else df
    # nullable integer columns (counts, shapes): an empty cell for a missing value, as for floats
    view = view.assign(**{c: view[c].astype(object).where(view[c].notna(), "") for c in view.columns
                          if isinstance(view[c].dtype, pd.Int64Dtype)})
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 250,
                           "display.max_colwidth", 70):
        return view.to_string(index=False, float_format=lambda v: f"{v:.3g}" if abs(v) < 1e4 else f"{v:.0f}",
                              na_rep="")


def roofline_lines(rooflines) -> list[str]:
    out = []
    for r in rooflines:
        if r.error:
            out.append(f"roofline {r.device} {r.dtype}: not measured ({r.error})")
        else:
            out.append(f"roofline {r.device} {r.dtype}: copy {r.copy_bandwidth_gbps:.1f} GB/s "
                       f"({r.copy_bytes / 2**20:.0f} MiB moved), matmul peak {r.matmul_peak_flops / 1e9:.1f} GFLOP/s "
                       f"(n={r.matmul_n}), {r.threads} threads")
    return out


def print_summary(records, rooflines) -> None:
    """The table `run` prints at the end: every record, status counts, the run's rooflines."""
    from invobench.report.views import records_frame

    df = records_frame(records)
    click.echo(format_table(df, TABLE_COLUMNS))
    if not df.empty:
        counts = df["status"].value_counts()
        click.echo("\nstatus: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        overhead = df["timer_overhead_ms"].dropna()
        if not overhead.empty:
            click.echo(f"timer overhead: {overhead.median() * 1e3:.2f} µs (median over the run's groups)")
    for line in roofline_lines(rooflines):
        click.echo(line)


@click.command("show")
@click.argument("results", type=click.Path(dir_okay=False))
@click.option("--view", type=click.Choice(VIEWS), default="records", show_default=True,
              help="records: every record; cpu: involution.cpu against the other CPU forms per case and pass; "
                   "models: RedNet against ResNet; reference: every variant at one case (--case) against the "
                   "depthwise conv; verdict: the fastest involution variant per case and pass against conv and "
                   "local attention, the bottom line and the variant to use.")
@click.option("--format", "fmt", type=click.Choice(["table", "md", "csv"]), default="table", show_default=True,
              help="table: for the terminal; md: Markdown (pull requests, docs); csv: every column.")
@click.option("--case", "case_label", default=None, metavar="LABEL",
              help="--view reference: the case, e.g. 'B8 C256 56x56 K7 G16' (default: the largest op-level case).")
@click.option("--family", "families", multiple=True, help="Only this family (repeatable; records view).")
@click.option("--variant", "variants", multiple=True, help="Only variants matching (name, family.name, globs; repeatable).")
@click.option("--status", "statuses", multiple=True,
              type=click.Choice(["ok", "error", "skipped", "crashed", "oom", "timeout"]), help="Only this status (repeatable).")
@click.option("--pass", "passes", multiple=True, type=click.Choice(["fwd", "bwd", "fwd+bwd", "train"]), help="Only this pass.")
@click.option("--csv", "as_csv", is_flag=True, help="Same as --format csv.")
def command(results, view, fmt, case_label, families, variants, statuses, passes, as_csv):
    """Print the records of a RESULTS file (JSON Lines, schema v1) as a table, or a summary view of them."""
    from invobench.report import views
    from invobench.results import ResultsFileError, read_results

    try:
        data = read_results(results)
    except ResultsFileError as exc:
        raise click.ClickException(str(exc)) from None
    fmt = "csv" if as_csv else fmt
    duplicates = data.duplicate_warning()
    if duplicates:
        click.echo(f"warning: {duplicates}", err=True)
    if view == "records":
        df = views.filter_frame(views.records_frame(data.records), list(families), list(variants), list(statuses),
                                list(passes))
        columns = None if fmt == "csv" else TABLE_COLUMNS
    elif view == "cpu":
        df, columns = views.cpu_view(data), None
    elif view == "models":
        df, columns = views.models_view(data), None
    elif view == "reference":
        df, columns = views.reference_view([data], case_label), None
    else:
        df, columns = views.verdict_view(data), None
    lines = views.verdict_lines(data) if view == "verdict" and fmt != "csv" else []
    if fmt == "csv":
        click.echo(df.to_csv(index=False), nl=False)
        return
    if fmt == "md":
        shown = df[[c for c in columns if c in df.columns]] if columns and not df.empty else df
        if lines:  # the bottom line as a paragraph, the recommendations as a list
            click.echo(lines[0] + "\n")
            click.echo("".join(f"- {line}\n" for line in lines[1:]))
        click.echo(views.to_markdown(shown))
        return
    h = data.header
    fp = h.fingerprint
    click.echo(f"suite {h.suite.name} (sha256 {h.suite.sha256[:12]}), run {h.run_id[:12]}, "
               f"{fp.time_utc or '?'}, invobench {fp.invobench or '?'}, torch {fp.torch.version or '?'}, "
               f"git {str(fp.git.commit)[:10]}{' (dirty)' if fp.git.dirty else ''}")
    click.echo(f"cpu {fp.cpu.model or '?'}, {fp.torch.threads or '?'} threads")
    for line in roofline_lines(data.rooflines):
        click.echo(line)
    for line in lines:
        click.echo(line)
    click.echo(format_table(df, columns))
    if view == "records":
        click.echo(f"\n{len(df)} of {len(data.records)} records")
