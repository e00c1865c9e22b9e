"""`invobench list`: every registered variant and whether it can run here, with the reasons."""
from __future__ import annotations

import json

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from invobench.core import DEVICES
from invobench.registry import all_variants


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--family", type=click.Choice(["involution", "conv", "attention", "model"]), help="Only this family.")
@click.option("--device", type=click.Choice(DEVICES), default=None,
              help="Only the variants of this device, and whether they can run on it here (default: any device).")
def command(as_json: bool, family: str | None, device: str | None) -> None:
    """Variants × availability on this machine, with the reasons a variant is unavailable."""
    rows = []
    for v in all_variants(family):
        if device is not None and device not in v.devices:
            continue
        reasons = v.unavailable_reasons(device)
        rows.append({
            "variant": v.key, "family": v.family, "name": v.name, "levels": list(v.levels), "devices": list(v.devices),
            "dtypes": list(v.dtypes), "backward": v.supports_backward, "available": not reasons, "reasons": reasons,
            "description": v.description,
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="invobench variants on this machine" + (f", on {device}" if device else ""))
    for col in ("variant", "levels", "devices", "dtypes", "bwd", "available here"):
        table.add_column(col, overflow="fold")
    for r in rows:
        status = "[green]yes[/green]" if r["available"] else "[red]no[/red]: " + escape("; ".join(r["reasons"]))
        table.add_row(r["variant"], ",".join(r["levels"]), ",".join(r["devices"]),
                      ",".join(d.replace("float", "f").replace("bf", "bf") for d in r["dtypes"]),
                      "yes" if r["backward"] else "no", status)
    Console(width=160).print(table)
