"""Short case labels and the choice of a chart's shape axis.

    case_labels(cases)   -> one short label per case: "B1 C64 56²", "B32 C128 56²→28²"
    is_size_ladder(cases) -> whether B·C·H·W is a meaningful x axis for these cases

A label names C and the spatial size (with the output size after an arrow when the case strides),
and every other parameter only where it takes more than one value among the cases shown, so labels
stay short and still tell every case apart. Results records do not carry the name of the sweep that
made them, so whether a set of cases is a *size ladder* is decided from the data: one size
parameter (B, C or the spatial size) grows while everything else stays fixed (G may follow C at a
fixed C/G, as the suites' `group_channels` makes it). The paper's stages, where C doubles as H and
W halve, are not: plotted against B·C·H·W they fall at nearly the same x, so charts use the case
labels in suite order instead.
"""
from __future__ import annotations

import json
from typing import Any, Hashable, Iterable, Sequence

from invobench.core.shapes import out_size

#: beyond this many distinct cases a categorical axis is unreadable: B·C·H·W is used whatever the sweep
MAX_CASE_LABELS = 60
#: parameters a label may show, in the order it shows them (others follow as name=value)
_ORDER = ("B", "C", "size", "K", "G", "stride", "dilation", "channels_last", "reduction", "rpb", "dtype", "device", "level")
_SIZE = ("B", "C", "H", "W")


def freeze(case: dict) -> tuple:
    """A hashable, order-independent key of a case's parameters."""
    return tuple(sorted((k, v if isinstance(v, Hashable) else json.dumps(v, sort_keys=True, default=str))
                        for k, v in case.items()))


def _out(case: dict, dim: str) -> Any:
    try:
        return out_size(int(case[dim]), int(case.get("K", 1)), int(case.get("stride", 1)), int(case.get("dilation", 1)))
    except (KeyError, TypeError, ValueError):
        return case.get(dim)


def _size(case: dict) -> str:
    h, w = case.get("H"), case.get("W")
    ho, wo = _out(case, "H"), _out(case, "W")
    text = f"{h}²" if h == w else f"{h}×{w}"
    if (ho, wo) != (h, w):
        text += f"→{ho}²" if ho == wo else f"→{ho}×{wo}"
    return text


def _varying(cases: Sequence[dict]) -> set[str]:
    values: dict[str, set] = {}
    for case in cases:
        for key, value in case.items():
            values.setdefault(key, set()).add(json.dumps(value, sort_keys=True, default=str))
    present = set(values)
    return {k for k, v in values.items() if len(v) > 1 or any(k not in c for c in cases)} & present


def _part(case: dict, key: str) -> str:
    value = case.get(key)
    if key == "size":
        return _size(case)
    if key in ("B", "C", "K", "G"):
        return f"{key}{value}"
    if key == "stride":
        return f"s{value}"
    if key == "dilation":
        return f"d{value}"
    if key == "channels_last":
        return "cl" if value else "nchw"
    if key == "reduction":
        return f"r{value}"
    if key == "rpb":
        return "rpb" if value else "no-rpb"
    if key in ("dtype", "device", "level"):
        return str(value)
    return f"{key}={value}"


def _g_follows_c(cases: Sequence[dict]) -> bool:
    """G is C divided by a fixed number of channels per group (the suites' group_channels)."""
    ratios = set()
    for case in cases:
        c, g = case.get("C"), case.get("G")
        if not (isinstance(c, int) and isinstance(g, int) and g > 0 and c % g == 0):
            return False
        ratios.add(c // g)
    return len(ratios) == 1


def case_labels(cases: Sequence[dict]) -> list[str]:
    """One label per case (same order); cases that differ get different labels."""
    cases = list(cases)
    varying = _varying(cases)
    shown = {"C", "size"}
    if varying & {"B"}:
        shown.add("B")
    if "K" in varying:
        shown.add("K")
    if "G" in varying and not _g_follows_c(cases):
        shown.add("G")
    # stride shows as the arrow of the size; dilation too, but two dilations at one stride can look alike
    shown |= varying - {"B", "C", "H", "W", "K", "G", "stride"}
    keys = [k for k in _ORDER if k in shown] + sorted(shown - set(_ORDER))
    labels = [" ".join(_part(case, k) for k in keys) for case in cases]
    # a case told apart only by a parameter the label leaves out (stride without a change of size, G
    # that happens to follow C on a subset): add every varying parameter the label does not show yet
    seen: dict[str, set] = {}
    for label, case in zip(labels, cases):
        seen.setdefault(label, set()).add(freeze(case))
    if any(len(v) > 1 for v in seen.values()):
        extra = [k for k in ("G", "stride", "K") if k in varying and k not in shown]
        extra += sorted(varying - set(_ORDER) - {"H", "W"} - shown)
        labels = [label + "".join(" " + _part(case, k) for k in extra) for label, case in zip(labels, cases)]
    return labels


def is_size_ladder(cases: Iterable[dict]) -> bool:
    """One of B, C or the spatial size varies, everything else fixed (G may follow C): B·C·H·W orders them."""
    distinct = {freeze(c): c for c in cases}
    cases = list(distinct.values())
    if len(cases) < 2:
        return False
    varying = _varying(cases)
    if "G" in varying and "C" in varying and _g_follows_c(cases):
        varying.discard("G")
    if not varying <= set(_SIZE):
        return False
    dims = {"spatial" if k in ("H", "W") else k for k in varying}
    return len(dims) == 1


def use_case_axis(cases: Iterable[dict]) -> bool:
    """Whether a chart of these cases should put case labels, not B·C·H·W, on its x axis."""
    distinct = {freeze(c): c for c in cases}
    return not is_size_ladder(distinct.values()) and len(distinct) <= MAX_CASE_LABELS
