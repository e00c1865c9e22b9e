"""The `invobench` command line (also `python bench.py`). Commands live in `invobench/commands/`."""
from __future__ import annotations

import importlib
import logging
import pkgutil

import click

import invobench
from invobench import commands


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(invobench.__version__, prog_name="invobench")
@click.option("-v", "--verbose", is_flag=True, help="Log library messages to stderr.")
def cli(verbose: bool) -> None:
    """Benchmark and profile involution against convolution and local self-attention."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


for _info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
    _module = importlib.import_module(f"{commands.__name__}.{_info.name}")
    cli.add_command(_module.command)


def main() -> None:
    cli(prog_name="invobench")
