"""`invobench models`: parameters, MACs and FLOPs of every network beside the published figures,
or (`--breakdown NAME`) where one network's time goes on this machine."""
from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from invobench.models import MODELS, get_model_spec
from invobench.counting.models import model_row
from invobench.models.complexity import PUBLISHED_IMAGE_SIZE


def _m(n, digits: int = 3) -> str:
    return "-" if n is None else f"{n / 1e6:.{digits}f}"


def _g(n, digits: int = 3) -> str:
    return "-" if n is None else f"{n / 1e9:.{digits}f}"


def _opt(x, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def _parse_models(text: str | None) -> list[str]:
    if not text:
        return list(MODELS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        try:
            get_model_spec(n)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--models") from None
    return names


def _print_table(rows: list[dict], paper_rows: list[dict], console: Console) -> None:
    table = Table(title=f"Measured vs published at {rows[0]['image']}x{rows[0]['image']} (batch 1)" if rows else "")
    for col in ("model", "params M", "pub. M", "Δ params", "GMACs fvcore", "pub. GMACs", "GFLOPs FCM",
                "paper G", "pub. G", "Δ G", "fvcore/pub. G"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        exact = r["published_params_exact"]
        table.add_row(
            r["model"], _m(r["params"]), _m(exact, 6) if exact else _opt(r["published_params_m"], ".2f"),
            "-" if r["params_delta_m"] is None else f"{round(r['params_delta_m'] * 1e6):+d}",
            _g(r["fvcore_macs"]), _opt(r["published_fvcore_gmacs"], ".3f"), _g(r["flop_counter_flops"]), _g(r["paper_flops"]),
            _opt(r["published_paper_gflops"], ".2f"), _opt(r["paper_gflops_delta"], "+.4f"),
            _opt(r["fvcore_vs_published_pct"], "+.2f") + ("%" if r["fvcore_vs_published_pct"] is not None else ""),
        )
    console.print(table)
    if paper_rows:
        t2 = Table(title="RedNet with a 7x7 stem involution (reproduces every published figure; the spec's stem is 3x3)")
        for col in ("model", "params M", "pub. M", "paper G", "pub. G"):
            t2.add_column(col, justify="left" if col == "model" else "right")
        for r in paper_rows:
            t2.add_row(r["model"], _m(r["params"]), _opt(r["published_params_m"], ".2f"), _g(r["paper_flops"]),
                       _opt(r["published_paper_gflops"], ".2f"))
        console.print(t2)
    console.print(
        "GMACs fvcore: convs + linear + involution apply (the spec's MACs; pub.: torchvision's `_ops`); GFLOPs FCM: FlopCounterMode on "
        "FakeTensors (= 2·MACs). paper G: mmcv's get_flops rules on backbone + global pool (conv MACs and bias adds, 2 ops per BN "
        "element, 1 per ReLU output / pooling input) plus the involution apply, the convention of the published "
        "RedNet and mmcls ResNet tables. Tolerances and sources: docs/models.md."
    )


def markdown_table(rows: list[dict], paper_rows: list[dict]) -> str:
    """The published-vs-measured table as GitHub Markdown (for docs/models.md)."""
    paper_by_name = {r["model"]: r for r in paper_rows}
    lines = [
        "| model | params (M) | published (M) | Δ params | GMACs fvcore | published GMACs | GFLOPs FlopCounterMode "
        "| paper-conv. G | published G | Δ G | 7×7-stem params (M) | 7×7-stem paper-conv. G |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        exact = r["published_params_exact"]
        k7 = paper_by_name.get(r["model"])
        lines.append("| " + " | ".join([
            r["model"], _m(r["params"], 6), _m(exact, 6) if exact else _opt(r["published_params_m"], ".2f"),
            "-" if r["params_delta_m"] is None else f"{round(r['params_delta_m'] * 1e6):+d}",
            _g(r["fvcore_macs"], 4), _opt(r["published_fvcore_gmacs"], ".3f"), _g(r["flop_counter_flops"], 4),
            _g(r["paper_flops"], 4), _opt(r["published_paper_gflops"], ".2f"), _opt(r["paper_gflops_delta"], "+.4f"),
            _m(k7["params"], 6) if k7 else "-", _g(k7["paper_flops"], 4) if k7 else "-",
        ]) + " |")
    return "\n".join(lines)


def _print_breakdown(results, console: Console) -> None:
    from invobench.models.breakdown import CATEGORIES

    for b in results:
        title = (f"{b.model}{' (' + b.involution_variant + ')' if b.involution_variant else ''} {b.step}: batch {b.batch}, "
                 f"{b.image}, {b.threads} threads — wall {b.wall_ms:.1f} ms/step, profiled {b.profiled_ms:.1f} ms/step")
        console.print(title)
        table = Table()
        table.add_column("category")
        table.add_column("ms", justify="right")
        table.add_column("%", justify="right")
        for c in CATEGORIES:
            table.add_row(c, f"{b.category_ms[c]:.1f}", f"{b.percent(c):.1f}")
        console.print(table)
        if b.other_top:
            console.print("  largest in other: " + ", ".join(f"{n} {ms:.1f} ms" for n, ms in b.other_top))


@click.command("models")
@click.option("--models", "models_text", default=None, help="Comma-separated names (default: every model).")
@click.option("--size", default=PUBLISHED_IMAGE_SIZE, show_default=True, type=click.IntRange(min=1),
              help="Image size H = W.")
@click.option("--fvcore/--no-fvcore", default=True, show_default=True,
              help="Also count with fvcore (one real traced forward per model; slow on a small CPU).")
@click.option("--paper-stem/--no-paper-stem", default=True, show_default=True,
              help="Also count the RedNets with the 7x7 stem involution that reproduces the published table.")
@click.option("--breakdown", "breakdown_name", default=None, metavar="NAME",
              help="Instead of the table: profile NAME's inference and training step by layer kind on this CPU.")
@click.option("--variant", default=None, help="Involution variant of a RedNet for --breakdown (default: auto).")
@click.option("--batch", default=1, show_default=True, type=click.IntRange(min=1), help="Batch for --breakdown.")
@click.option("--steps", default=1, show_default=True, type=click.IntRange(min=1), help="Profiled steps for --breakdown.")
@click.option("--inference-only", is_flag=True, help="--breakdown: skip the training step.")
@click.option("--threads", default=None, type=click.IntRange(min=1),
              help="--breakdown: torch.set_num_threads (default: torch's default).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option("--markdown", is_flag=True, help="Print the table as Markdown (as in docs/models.md).")
def command(models_text, size, fvcore, paper_stem, breakdown_name, variant, batch, steps, inference_only, threads,
            as_json, markdown) -> None:
    """Parameters, MACs and FLOPs of every ResNet and RedNet beside the published figures.

    With --breakdown NAME: where NAME's time goes on this machine (torch.profiler): involution
    apply, kernel generation, convolutions, normalisation, other — for one inference step and one
    training step (forward, cross-entropy, backward, SGD update).
    """
    console = Console()
    if not console.is_terminal:
        console = Console(width=130)  # piped into a file or a doc: don't squeeze the table to 80 columns
    if breakdown_name is not None:
        from invobench.models.breakdown import profile_model

        try:
            spec = get_model_spec(breakdown_name)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--breakdown") from None
        if size < 32:
            raise click.BadParameter(f"size={size} is too small: the networks downsample by 32", param_hint="--size")
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        try:
            results = profile_model(spec.name, variant, batch=batch, size=size, steps=steps,
                                    train=not inference_only)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        if as_json:
            click.echo(json.dumps([b.as_dict() for b in results], indent=2))
        else:
            _print_breakdown(results, console)
        return
    if variant is not None:
        raise click.BadParameter("--variant applies to --breakdown only (counts do not depend on the implementation)",
                                 param_hint="--variant")
    names = _parse_models(models_text)
    if size < 32:
        raise click.BadParameter(f"size={size} is too small: the networks downsample by 32", param_hint="--size")
    rows = [model_row(n, size, fvcore=fvcore) for n in names]
    paper_rows = [model_row(n, size, fvcore=False, stem_kernel_size=7)
                  for n in names if paper_stem and MODELS[n].involution]
    if as_json:
        click.echo(json.dumps({"image_size": size, "models": rows, "rednet_stem_k7": paper_rows}, indent=2))
        return
    if markdown:
        click.echo(markdown_table(rows, paper_rows))
        return
    _print_table(rows, paper_rows, console)
