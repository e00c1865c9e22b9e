"""CLI commands, one module each (`invobench <name>` is `invobench/commands/<name>.py`, a click command
named `command`); `invobench.cli` lists them. Modules starting with `_` are shared display helpers."""
