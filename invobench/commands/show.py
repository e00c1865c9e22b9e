"""`invobench show RESULTS`: a results file as a pandas table (filter by family, variant, pass, status; --csv)."""
from __future__ import annotations

import fnmatch
from typing import Iterable, Optional

import click

#: the columns of the terminal table (the CSV has every column of `records_frame`)
TABLE_COLUMNS = ["variant", "pass", "B", "C", "H", "W", "K", "G", "s", "dtype", "device", "level", "status",
                 "median_ms", "iqr_%", "n", "GB/s", "GFLOP/s", "%roof", "peak_MiB", "saved_MiB", "note"]


def records_frame(records: Iterable):
    """One row per record: case parameters, status, latency statistics, roofline and memory fields."""
    import pandas as pd

    rows = []
    for r in records:
        c = r.case
        s, roof, mem = r.stats, r.roofline, r.memory
        rows.append({
            "case_id": r.case_id, "family": r.family, "variant": f"{r.family}.{r.variant}", "pass": r.pass_,
            "B": c.get("B"), "C": c.get("C"), "H": c.get("H"), "W": c.get("W"), "K": c.get("K"), "G": c.get("G"),
            "s": c.get("stride"), "d": c.get("dilation"), "dtype": c.get("dtype"), "device": c.get("device"),
            "level": c.get("level"), "status": r.status,
            "median_ms": s.median_ms if s else None, "iqr_%": 100 * s.iqr_ms / s.median_ms if s and s.median_ms else None,
            "n": s.n if s else None, "min_ms": s.min_ms if s else None, "mean_ms": s.mean_ms if s else None,
            "GB/s": roof.achieved_gbps if roof else None,
            "GFLOP/s": roof.achieved_flops / 1e9 if roof and roof.achieved_flops is not None else None,
            "FLOP/B": roof.intensity_flop_per_byte if roof else None,
            "%roof": roof.pct_of_roofline if roof else None, "bound": roof.bound_by if roof else None,
            "peak_MiB": mem.peak_bytes / 2**20 if mem and mem.peak_bytes is not None else None,
            "saved_MiB": mem.saved_for_backward_bytes / 2**20 if mem and mem.saved_for_backward_bytes is not None else None,
            "min_MiB": mem.min_bytes / 2**20 if mem and mem.min_bytes is not None else None,
            "macs": r.macs, "flops": r.flops, "params": r.params,
            "stop": r.timer.stop_reason if r.timer else None,
            "timer_overhead_ms": r.timer.overhead_ms if r.timer else None,
            "note": (r.error or "; ".join(r.reasons) or "")[:70],
        })
    df = pd.DataFrame(rows)
    numeric = ["median_ms", "iqr_%", "n", "min_ms", "mean_ms", "GB/s", "GFLOP/s", "FLOP/B", "%roof", "peak_MiB",
               "saved_MiB", "min_MiB", "timer_overhead_ms"]
    for col in numeric:
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def filter_frame(df, families: Optional[list[str]] = None, variants: Optional[list[str]] = None,
                 statuses: Optional[list[str]] = None, passes: Optional[list[str]] = None):
    if df.empty:
        return df
    keep = df.index == df.index
    if families:
        keep &= df["family"].isin(families)
    if variants:
        def match(v: str) -> bool:
            short = v.split(".", 1)[1]
            return any(fnmatch.fnmatchcase(v, p) or fnmatch.fnmatchcase(short, p) for p in variants)
        keep &= df["variant"].map(match)
    if statuses:
        keep &= df["status"].isin(statuses)
    if passes:
        keep &= df["pass"].isin(passes)
    return df[keep]


def format_table(df) -> str:
    import pandas as pd

    if df.empty:
        return "(no records)"
    cols = [c for c in TABLE_COLUMNS if c in df.columns]
    view = df[cols].copy()
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
    df = records_frame(records)
    click.echo(format_table(df))
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
@click.option("--family", "families", multiple=True, help="Only this family (repeatable).")
@click.option("--variant", "variants", multiple=True, help="Only variants matching (name, family.name, globs; repeatable).")
@click.option("--status", "statuses", multiple=True,
              type=click.Choice(["ok", "error", "skipped", "crashed", "oom", "timeout"]), help="Only this status (repeatable).")
@click.option("--pass", "passes", multiple=True, type=click.Choice(["fwd", "bwd", "fwd+bwd", "train"]), help="Only this pass.")
@click.option("--csv", "as_csv", is_flag=True, help="Print every column as CSV instead of the table.")
def command(results, families, variants, statuses, passes, as_csv):
    """Print the records of a RESULTS file (JSON Lines, schema v1) as a table."""
    from invobench.results import ResultsFileError, read_results

    try:
        data = read_results(results)
    except ResultsFileError as exc:
        raise click.ClickException(str(exc)) from None
    df = filter_frame(records_frame(data.records), list(families), list(variants), list(statuses), list(passes))
    if as_csv:
        click.echo(df.to_csv(index=False), nl=False)
        return
    h = data.header
    fp = h.fingerprint
    click.echo(f"suite {h.suite.name} (sha256 {h.suite.sha256[:12]}), run {h.run_id[:12]}, "
               f"{fp.get('time_utc', '?')}, invobench {fp.get('invobench', '?')}, torch {fp.get('torch', {}).get('version', '?')}, "
               f"git {str((fp.get('git') or {}).get('commit'))[:10]}{' (dirty)' if (fp.get('git') or {}).get('dirty') else ''}")
    click.echo(f"cpu {fp.get('cpu', {}).get('model', '?')}, {fp.get('torch', {}).get('threads', '?')} threads")
    for line in roofline_lines(data.rooflines):
        click.echo(line)
    click.echo(format_table(df))
    click.echo(f"\n{len(df)} of {len(data.records)} records")
