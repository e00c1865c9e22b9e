"""CLI commands, one module each. Every module defines a click command named `command`;
`invobench.cli` discovers them, so adding a command never edits a shared file."""
