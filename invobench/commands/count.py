"""`invobench count`: the spec's counts for a case, beside what FlopCounterMode and fvcore measure."""
from __future__ import annotations

import json
import warnings

import click
from rich.console import Console
from rich.table import Table

from invobench.counting import analytic_counts, flop_counter_flops, fvcore_macs
from invobench.core import FAMILIES, LEVELS, Case
from invobench.registry import all_variants


def count_rows(case: Case, families: list[str], measure: bool) -> list[dict]:
    rows = []
    for variant in all_variants():
        if variant.family not in families or variant.family == "model":
            continue
        reasons = variant.why_not(case)
        counts = analytic_counts(variant.family, variant.name, case)
        row = {"variant": variant.key, "level": case.level, **counts.as_dict(), "case": case.as_dict()}
        if measure:
            if reasons:
                row["measured_reason"] = "; ".join(reasons)
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fc = flop_counter_flops(variant.build(case, False))
                    fv = fvcore_macs(variant.build(case, False))
                row.update(flop_counter_flops_fwd=fc.value, fvcore_macs_fwd=fv.value,
                           measured_reason="; ".join(r for r in (fc.reason, fv.reason) if r))
        rows.append(row)
    return rows


def _fmt(n) -> str:
    if n is None:
        return "-"
    if isinstance(n, float):
        return f"{n:.2f}"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3f}{unit}"
    return str(n)


@click.command("count")
@click.option("--B", "B", default=1, show_default=True, type=click.IntRange(min=0))
@click.option("--C", "C", default=256, show_default=True, type=click.IntRange(min=1))
@click.option("--H", "H", default=56, show_default=True, type=click.IntRange(min=1))
@click.option("--W", "W", default=None, type=click.IntRange(min=1), help="Default: H.")
@click.option("--K", "K", default=7, show_default=True, type=click.IntRange(min=1))
@click.option("--G", "G", default=None, type=click.IntRange(min=1), help="Groups/heads. Default: C/16.")
@click.option("--stride", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--dilation", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--reduction", default=4, show_default=True, type=click.IntRange(min=1))
@click.option("--dtype", default="float32", show_default=True, type=click.Choice(["float64", "float32", "bfloat16", "float16"]))
@click.option("--level", "levels", default="op,layer", show_default=True, help="Comma-separated levels: op, layer.")
@click.option("--family", "families", default="involution,conv,attention", show_default=True)
@click.option("--rpb/--no-rpb", default=False, help="Attention with a relative-position bias table.")
@click.option("--measure/--no-measure", default=True, show_default=True, help="Also run FlopCounterMode and fvcore.")
@click.option("--json", "as_json", is_flag=True)
def command(B, C, H, W, K, G, stride, dilation, reduction, dtype, levels, families, rpb, measure, as_json) -> None:
    """Analytic MACs, FLOPs, parameters, minimum bytes and intensity for one case, with measured counts beside them.

    MACs are multiply-accumulates (fvcore's convention, the paper's "FLOPs"); FLOPs = 2·MACs
    (FlopCounterMode's convention). The default case is the RedNet bottleneck at C=256, 56×56.
    """
    if K % 2 == 0:
        raise click.BadParameter(f"K={K} is even; every operator here centres an odd window", param_hint="--K")
    G = G if G is not None else max(C // 16, 1)
    if C % G:
        raise click.BadParameter(f"C={C} is not divisible by G={G}", param_hint="--G")
    level_list = [lv.strip() for lv in levels.split(",") if lv.strip()]
    bad = [lv for lv in level_list if lv not in LEVELS or lv == "model"]
    if bad or not level_list:
        raise click.BadParameter(f"{bad or repr(levels)} not valid; choose from op, layer", param_hint="--level")
    family_list = [f.strip() for f in families.split(",") if f.strip()]
    valid_families = [f for f in FAMILIES if f != "model"]
    bad = [f for f in family_list if f not in valid_families]
    if bad or not family_list:
        raise click.BadParameter(f"{', '.join(map(repr, bad)) or repr(families)} is not a family; choose from "
                                 f"{', '.join(valid_families)} (models: `invobench models`)", param_hint="--family")
    if "layer" in level_list and C // reduction < 1:
        raise click.BadParameter(f"--reduction {reduction} exceeds --C {C}: the involution layer reduces C to "
                                 f"C // reduction = {C // reduction} channels and needs at least one; give "
                                 f"--reduction {C} or less, or --level op", param_hint="--reduction")
    rows = []
    for level in level_list:
        case = Case(B=B, C=C, H=H, W=W or H, K=K, G=G, stride=stride, dilation=dilation, dtype=dtype,
                    level=level, reduction=reduction, rpb=rpb)
        rows += count_rows(case, family_list, measure)
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    title = f"counts: B={B} C={C} {H}x{W or H} K={K} G={G} s={stride} d={dilation} {dtype}"
    table = Table(title=title)
    cols = ["variant", "level", "MACs fwd", "FLOPs fwd", "FLOPs bwd", "params", "min bytes fwd", "FLOP/B"]
    if measure:
        cols += ["FlopCounterMode fwd", "fvcore MACs", "measured = formula"]
    for col in cols:
        table.add_column(col, overflow="fold")
    for r in rows:
        cells = [r["variant"], r["level"], _fmt(r["macs_fwd"]), _fmt(r["flops_fwd"]), _fmt(r["flops_bwd"]),
                 _fmt(r["params"]), _fmt(r["min_bytes_fwd"]), _fmt(r["intensity_fwd"])]
        if measure:
            fc, fv = r.get("flop_counter_flops_fwd"), r.get("fvcore_macs_fwd")
            if fc is None and fv is None:
                verdict = f"[yellow]not measured: {r.get('measured_reason', '')[:90]}[/yellow]"
            else:
                same = fc == r["flops_fwd"] and fv == r["macs_fwd"]
                verdict = "[green]yes[/green]" if same else "[red]NO[/red]"
            cells += [_fmt(fc), _fmt(fv), verdict]
        table.add_row(*cells)
    Console(width=180).print(table)
