"""`invobench env`: the environment fingerprint recorded with every run."""
from __future__ import annotations

import json

import click

from invobench.env import fingerprint


@click.command("env")
def command() -> None:
    """Print the environment fingerprint (versions, devices, CPU, threads, git commit) as JSON."""
    click.echo(json.dumps(fingerprint(), indent=2))
