"""Suite → work items: cartesian products and zipped lists become (Case, variant, pass) items with stable ids.

Items that share a case and a pass form a *group*: the runner measures a group's variants together,
interleaved in randomised order, so drift hits every variant alike (STYLE.md). Ids come from
`invobench.results.case_id`, so they are equal across runs, machines and shards.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from invobench.bench.suite import LoadedSuite, SuiteError, expand_variant_patterns, merge_axes
from invobench.core import Case
from invobench.results import case_id as make_case_id

#: passes run when a suite names none
DEFAULT_PASSES = ("fwd", "bwd", "fwd+bwd")


@dataclass(frozen=True)
class BenchItem:
    """One record to produce: a variant of a family run on a case for one pass."""

    case: Case
    family: str
    variant: str
    pass_: str
    case_id: str
    sweep: Optional[str] = None

    @property
    def key(self) -> str:
        return f"{self.family}.{self.variant}"

    def describe(self) -> str:
        return f"{self.key} {self.pass_} {self.case.label()}"


@dataclass
class CaseGroup:
    """The items of one (case, pass): measured together in one worker, interleaved."""

    case: Case
    pass_: str
    items: list[BenchItem] = field(default_factory=list)

    @property
    def group_id(self) -> str:
        blob = json.dumps({"case": self.case.as_dict(), "pass": self.pass_}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _case_from_row(row: dict[str, Any], source: str, where: str) -> tuple[Case, str]:
    kwargs = {k: v for k, v in row.items() if k not in ("size", "group_channels", "pass")}
    if "size" in row:
        kwargs["H"] = kwargs["W"] = row["size"]
    if "group_channels" in row:
        gc, C = row["group_channels"], row["C"]
        if C % gc:
            raise SuiteError(f"{source}: {where}: C={C} is not divisible by group_channels={gc} "
                             "(G = C / group_channels must be an integer)")
        kwargs["G"] = C // gc
    return Case(**kwargs), row["pass"]


def expand_suite(
    loaded: LoadedSuite,
    known_variants: list[str],
    *,
    variants: Optional[Sequence[str]] = None,
    device: Optional[str] = None,
    dtypes: Optional[Sequence[str]] = None,
) -> list[BenchItem]:
    """Every item of a suite in suite order, duplicates dropped.

    `variants` (patterns such as `involution.*`) replaces every sweep's variant list; `device` and
    `dtypes` replace those axes — the CLI's `--variants`, `--device`, `--dtype`.
    """
    suite, source = loaded.suite, loaded.path or loaded.name
    items: list[BenchItem] = []
    seen: set[str] = set()
    for i, sweep in enumerate(suite.sweeps):
        where = f"sweeps[{i}]" + (f" ({sweep.name})" if sweep.name else "")
        patterns = list(variants) if variants is not None else (sweep.variants if sweep.variants is not None else suite.variants)
        keys = expand_variant_patterns(patterns, known_variants, "--variants" if variants is not None else where)
        if variants is None:  # an explicit --variants list is taken as given
            inherited = suite.exclude_variants if sweep.variants is None else []
            excluded = set(expand_variant_patterns(inherited + sweep.exclude_variants, known_variants,
                                                   f"{where}.exclude_variants"))
            keys = [k for k in keys if k not in excluded]
        zips = sweep.zip if isinstance(sweep.zip, list) else [sweep.zip]
        zip_axes = {axis for group in zips for axis in group}
        axes = merge_axes(suite.defaults, {**sweep.product, **{a: None for a in zip_axes}})
        for a in zip_axes:
            axes.pop(a)
        axes.setdefault("pass", list(DEFAULT_PASSES))
        if device is not None:
            axes["device"] = device
        if dtypes is not None:
            axes["dtype"] = list(dtypes)
        product_names = list(axes)
        product_values = [_as_list(axes[a]) for a in product_names]
        zip_rows = [[dict(zip(group, values)) for values in zip(*group.values())] if group else [{}] for group in zips]
        for combo in itertools.product(*product_values, *zip_rows):
            row = dict(zip(product_names, combo[: len(product_names)]))
            for part in combo[len(product_names):]:
                row.update(part)
            case, pass_ = _case_from_row(row, source, where)
            for key in keys:
                family, name = key.split(".", 1)
                cid = make_case_id(family, name, pass_, case.as_dict())
                if cid in seen:
                    continue
                seen.add(cid)
                items.append(BenchItem(case, family, name, pass_, cid, sweep.name))
    return items


def group_items(items: Sequence[BenchItem]) -> list[CaseGroup]:
    """Items grouped by (case, pass), groups and their items in first-appearance order."""
    groups: dict[tuple[Case, str], CaseGroup] = {}
    for item in items:
        groups.setdefault((item.case, item.pass_), CaseGroup(item.case, item.pass_)).items.append(item)
    return list(groups.values())


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' -> (2, 4); k counts from 1."""
    try:
        k_text, n_text = text.split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise ValueError(f"--shard {text!r} is not of the form k/n (e.g. 1/4)") from None
    if n < 1 or not 1 <= k <= n:
        raise ValueError(f"--shard {text}: need 1 <= k <= n, got k={k}, n={n}")
    return k, n


def shard_groups(groups: Sequence[CaseGroup], k: int, n: int) -> list[CaseGroup]:
    """Round-robin over the suite's groups: shard k of n takes groups k-1, k-1+n, ...; deterministic and balanced."""
    return [g for i, g in enumerate(groups) if i % n == k - 1]
