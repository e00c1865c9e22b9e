"""`invobench merge OUT SHARD...`: join the shard files of one suite (`run --shard k/n`) into one results file."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("merge")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("shards", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def command(out: Path, shards: tuple[Path, ...]) -> None:
    """Merge SHARDS (results files of one suite, distinct shards) into OUT.

    Refuses files of different suites or options, a shard given twice and a case id present in two
    files; warns when shards of the split are missing. Every shard's fingerprint is kept in the header.
    """
    from invobench.bench.merge import merge_shards
    from invobench.bench.output import RunnerError

    try:
        n, warnings = merge_shards(list(shards), out)
    except RunnerError as exc:
        raise click.ClickException(str(exc)) from None
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(f"merged {len(shards)} files, {n} records, into {out}")
