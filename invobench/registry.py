"""The registry of variants: every implementation of every operator family, and why it can't run.

The built-in variants come from one explicit list (`invobench.workloads.builtin_variants`), read once
on first use; nothing registers itself by being imported. Out-of-tree variants (plugins, the BASE
twins of an A/B run) are added with `register`, by modules named in INVOBENCH_PLUGINS.
A variant's `why_not(case)` answers with the reasons it cannot run that case on this machine; the
same reasons feed dispatch, `invobench list`, skipped records and errors.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Optional

# The types plugins build variants from, re-exported so `from invobench.registry import Case, Variant,
# Workload` keeps working for out-of-tree code.
from invobench.core import (  # noqa: F401
    DEVICES, DTYPES, FAMILIES, LEVELS, PASSES, Case, Variant, Workload, device_reasons, lookup,
)

#: environment variable naming plugin modules or .py files (separated by os.pathsep)
PLUGINS_ENV = "INVOBENCH_PLUGINS"

_PLUGINS: dict[str, Variant] = {}


@functools.cache
def _builtin() -> dict[str, Variant]:
    from invobench.workloads import builtin_variants

    return {v.key: v for v in builtin_variants()}


def register(variant: Variant) -> Variant:
    """Add an out-of-tree variant (a plugin's); a key already taken is replaced."""
    if variant.family not in FAMILIES:
        raise ValueError(f"family={variant.family!r} is not one of {FAMILIES}")
    if variant.build is None:
        raise ValueError(f"variant {variant.key!r} has no build (the workload the runner times)")
    _PLUGINS[variant.key] = variant
    return variant


def _all() -> dict[str, Variant]:
    return {**_builtin(), **_PLUGINS}


def all_variants(family: Optional[str] = None) -> list[Variant]:
    return [v for v in _all().values() if family is None or v.family == family]


def get(key: str, family: Optional[str] = None) -> Variant:
    """Look a variant up by `family.name` (or bare `name` when `family` is given); errors list valid names."""
    table = _all()
    if family is None:
        return lookup(table, key, "variant")
    full = key if "." in key else f"{family}.{key}"
    if full in table:
        return table[full]
    return lookup({v.name: v for v in table.values() if v.family == family}, key, f"{family} variant")


class PluginError(ValueError):
    """A plugin named in INVOBENCH_PLUGINS that cannot be loaded; the message names it and the variable."""


def load_plugins(spec: Optional[str] = None) -> list[str]:
    """Import every plugin named in INVOBENCH_PLUGINS (module names or .py paths); returns what was loaded.

    A module's `register_plugin()` is called if it has one. The runner and its workers load the same
    plugins, so both sides agree on the names. This runs the plugins' code (under `--dry-run` too): the
    variable is trusted input, like a `conftest.py`.
    """
    spec = os.environ.get(PLUGINS_ENV, "") if spec is None else spec
    loaded = []
    for entry in filter(None, (s.strip() for s in spec.split(os.pathsep))):
        where = f"{PLUGINS_ENV} names {entry!r}"
        try:
            if entry.endswith(".py"):
                name = f"invobench_plugin_{Path(entry).stem}"
                module = sys.modules.get(name)
                if module is None:
                    if not Path(entry).is_file():
                        raise PluginError(f"{where}, which is not a file")
                    module_spec = importlib.util.spec_from_file_location(name, entry)
                    if module_spec is None or module_spec.loader is None:
                        raise PluginError(f"{where}, which Python cannot load as a module")
                    module = importlib.util.module_from_spec(module_spec)
                    sys.modules[name] = module
                    try:
                        module_spec.loader.exec_module(module)
                    except BaseException:
                        sys.modules.pop(name, None)
                        raise
            else:
                module = importlib.import_module(entry)
            if hasattr(module, "register_plugin"):
                module.register_plugin()
        except PluginError:
            raise
        except ModuleNotFoundError as exc:
            raise PluginError(f"{where}, which cannot be imported: {exc} (a module on sys.path, or a path to a .py "
                              f"file; separate several with {os.pathsep!r})") from exc
        except Exception as exc:  # the plugin's own code failed: say whose
            raise PluginError(f"{where}, whose code failed while loading: {type(exc).__name__}: {exc}") from exc
        loaded.append(entry)
    return loaded


def unregister(key: str) -> Optional[Variant]:
    """Remove an out-of-tree variant added with `register` (built-in variants stay); returns it."""
    return _PLUGINS.pop(key, None)
