"""`invobench env`: the environment fingerprint recorded with every run."""
from __future__ import annotations

import json

import click

from invobench.env import fingerprint


@click.command("env")
@click.option("--slug", is_flag=True,
              help="Print only this machine's folder name for reference runs (results/<slug>/<suite>.jsonl), "
                   "e.g. amd-epyc-avx512-2c; the GPU's name when there is one.")
def command(slug: bool) -> None:
    """Print the environment fingerprint (versions, devices, CPU, threads, git commit) as JSON."""
    data = fingerprint()
    if slug:
        from invobench.results import Fingerprint

        fp = Fingerprint.model_validate(data)
        click.echo(fp.machine_slug(used_cuda=fp.cuda.available))
        return
    click.echo(json.dumps(data, indent=2))
