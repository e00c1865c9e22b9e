"""`invobench check`: correctness of every available variant against the float64 reference."""
from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.table import Table

from invobench.check import DEFAULT_DTYPES, run_check


@click.command("check")
@click.option("--variants", help="Comma-separated variants (e.g. involution.eager,unfold); default: all available.")
@click.option("--dtype", "dtypes", default=",".join(DEFAULT_DTYPES), show_default=True,
              help="Comma-separated dtypes: float64, float32, bfloat16, float16.")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option("--family", "families", default="involution,conv,attention", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print every comparison as JSON.")
def command(variants: str | None, dtypes: str, device: str, families: str, as_json: bool) -> None:
    """Run every available variant on a fixed set of awkward shapes, forward and backward; exit 1 on any mismatch."""
    from invobench.core import DTYPES

    dtype_list = [d.strip() for d in dtypes.split(",") if d.strip()]
    bad = [d for d in dtype_list if d not in DTYPES]
    if bad:
        raise click.BadParameter(f"{', '.join(bad)} not valid; choose from {', '.join(DTYPES)}", param_hint="--dtype")
    console = Console(stderr=True)
    wanted = [v.strip() for v in variants.split(",")] if variants else None
    results = run_check(wanted, dtype_list, device, [f.strip() for f in families.split(",")],
                        progress=lambda msg: console.print(f"[dim]checking {msg}[/dim]") if not as_json else None)
    failed = [r for r in results if not r.ok]
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], indent=1))
    else:
        _print_summary(results)
        for r in failed:
            click.echo(f"MISMATCH {r.variant} {r.dtype} [{r.shape} {r.layout}] {r.tensor}: {r.detail}")
        click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


def _print_summary(results) -> None:
    """One row per variant × dtype: worst abs/rel error over every shape and tensor, and the verdict."""
    groups: dict[tuple[str, str], list] = {}
    for r in results:
        groups.setdefault((r.variant, r.dtype), []).append(r)
    table = Table(title="invobench check: max error against the float64 reference (fwd + bwd)")
    for col in ("variant", "dtype", "comparisons", "max abs err", "max rel err", "verdict"):
        table.add_column(col, overflow="fold")
    for (variant, dtype), rs in groups.items():
        measured = [r for r in rs if r.max_abs is not None]
        skipped = [r.detail for r in rs if r.max_abs is None and r.ok]
        if not measured:
            table.add_row(variant, dtype, "0", "-", "-", f"[yellow]{skipped[0] if skipped else 'skipped'}[/yellow]")
            continue
        ok = all(r.ok for r in rs)
        table.add_row(variant, dtype, str(len(measured)), f"{max(r.max_abs for r in measured):.2e}",
                      f"{max(r.max_rel for r in measured):.2e}",
                      "[green]ok[/green]" if ok else "[red]MISMATCH[/red]" + (f" ({len(skipped)} shapes skipped)" if skipped else ""))
    Console(width=160).print(table)
