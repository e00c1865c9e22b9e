"""The `invobench` command line (also `python bench.py`): one module per command in `invobench/commands/`."""
from __future__ import annotations

import logging

import click

import invobench
from invobench.commands import ab, check, compare, count, env, export, merge, models, profile, report, run, show
from invobench.commands import list as list_  # not `list`: it would shadow the builtin

#: every command (click lists them alphabetically in --help)
COMMANDS = (ab, check, compare, count, env, export, list_, merge, models, profile, report, run, show)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(invobench.__version__, prog_name="invobench")
@click.option("-v", "--verbose", is_flag=True, help="Log library messages to stderr.")
def cli(verbose: bool) -> None:
    """Benchmark and profile involution against convolution and local self-attention."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


for _module in COMMANDS:
    cli.add_command(_module.command)


def main() -> None:
    cli(prog_name="invobench")
