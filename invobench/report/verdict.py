"""The report's answer first: per results file, is involution worth it here, and which variant to use.

    build_verdicts(runs, rows=None) -> list[RunVerdict]     one per results file (machine)
    machine_points(runs, rows=None) -> list[MachinePoint]   per machine, the fastest variant of each family

Pure functions of results files, within one run (ratios never cross runs):

- per (case, pass), the **fastest involution variant** (lowest median of its samples) and its median ÷
  the median of each *denominator* at the same case and pass: the depthwise conv (the same MACs as the
  apply), the grouped conv, the dense conv, and local self-attention (its fastest variant there);
  below 1 involution is faster;
- the **bottom line**: one sentence with the range of each ratio over the run's cells, and how much
  slower `involution.unfold` (the paper's reference form) is than the fastest;
- per (device, dtype), the **recommended variant**: the one fastest at most cells, with its margin
  (the median, over the cells it wins, of the next fastest variant's median ÷ its own) and how far
  behind it is where another variant wins.

Model-level records are left out (the report's model section shows them). Latencies are the
medians of the raw samples (`rows.make_rows`), as in every chart of the report.
"""
from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Optional, Sequence

from invobench.report.cases import case_labels, freeze
from invobench.report.inputs import machine_name
from invobench.report.rows import PASS_ORDER, Row, make_rows
from invobench.results import ResultsFile

INVOLUTION = "involution"
ATTENTION = "attention"
UNFOLD = "involution.unfold"


@dataclass(frozen=True)
class Denominator:
    key: str  # a variant ("conv.depthwise") or a family ("attention": its fastest variant at each cell)
    noun: str  # as a heading or the heatmap's selector names it
    name: str  # as a sentence names it


DENOMINATORS = (
    Denominator("conv.depthwise", "depthwise conv", "the depthwise conv"),
    Denominator("conv.grouped", "grouped conv", "the grouped conv"),
    Denominator("conv.dense", "dense conv", "the dense conv"),
    Denominator(ATTENTION, "local self-attention", "local self-attention"),
)
BY_KEY = {d.key: d for d in DENOMINATORS}


@dataclass(frozen=True)
class Cell:
    """One (case, pass) of a run: the fastest involution variant and its ratio to each denominator present."""

    case: str
    pass_: str
    fastest: str  # family.variant
    median_ms: float
    involution_ms: dict[str, float]  # every involution variant with an ok record here
    ratios: dict[str, float]  # denominator key -> fastest's median ÷ the denominator's median
    against: dict[str, str]  # denominator key -> the variant it is (attention: the fastest one here)
    against_ms: dict[str, float]
    device: str = ""
    dtype: str = ""

    @property
    def runner_up(self) -> Optional[tuple[str, float]]:
        """(variant, its median ÷ the fastest's) of the second fastest involution variant here."""
        others = sorted((ms, v) for v, ms in self.involution_ms.items() if v != self.fastest)
        return (others[0][1], others[0][0] / self.median_ms) if others else None


@dataclass(frozen=True)
class Recommendation:
    """The involution variant fastest at most cells of one (device, dtype) of a run."""

    device: str
    dtype: str
    variant: str
    wins: int
    cells: int
    margin: Optional[float]  # median over its wins of (next fastest ÷ it); None where it ran alone
    runner_up: Optional[str]  # the variant most often second where it wins
    behind: Optional[float]  # where another variant wins: at most this many times the winner's median

    def sentence(self) -> str:
        text = f"{self.device} {self.dtype}: use {self.variant} — fastest at {self.wins} of {self.cells} cells"
        if self.margin is not None and self.runner_up:
            text += f", by a median {fmt_x(self.margin)}× over the next fastest ({self.runner_up})"
        elif self.margin is None:
            text += " (the only involution variant measured)"
        if self.behind is not None:
            text += f"; where another variant wins, it is at most {fmt_x(self.behind)}× slower"
        return text + "."


@dataclass
class RunVerdict:
    run: int
    title: str
    machine: str  # the machine's name without its host name: 'AMD EPYC avx512', 'NVIDIA H100 80GB HBM3'
    threads: Optional[int]
    cases: list[str]  # in suite order (first appearance in the file)
    passes: list[str]
    cells: list[Cell]
    recommendations: list[Recommendation]
    unfold: list[float] = field(default_factory=list)  # unfold's median ÷ the fastest's, where unfold ran
    models: int = 0  # ok model-level records (not in the verdict: the report's model section has them)
    bottom_line: str = ""

    def cell(self, case: str, pass_: str) -> Optional[Cell]:
        return next((c for c in self.cells if c.case == case and c.pass_ == pass_), None)

    def denominators(self) -> list[Denominator]:
        """The denominators with a ratio at one cell or more, in DENOMINATORS order."""
        present = {k for c in self.cells for k in c.ratios}
        return [d for d in DENOMINATORS if d.key in present]

    def ratio_range(self, key: str, pass_: Optional[str] = None) -> Optional[tuple[float, float]]:
        values = [c.ratios[key] for c in self.cells if key in c.ratios and (pass_ is None or c.pass_ == pass_)]
        return (min(values), max(values)) if values else None


# ---- numbers as sentences say them ----------------------------------------------------------

def fmt_x(value: float) -> str:
    """A ratio to two significant digits: 0.12, 0.85, 1, 1.2, 8.3, 40, 350."""
    if value >= 100:
        return f"{value:,.0f}"
    text = f"{value:.2g}"
    return text if "e" not in text else f"{value:.2f}"


def _span(lo: float, hi: float) -> str:
    a, b = fmt_x(lo), fmt_x(hi)
    return a if a == b else f"{a}–{b}"


def ratio_phrase(lo: float, hi: float, name: str) -> str:
    """'1.5–3× faster than NAME' / '2× slower than NAME' / '0.9–1.2× the latency of NAME' (ratio = ours ÷ theirs)."""
    if hi < 1:
        return f"{_span(1 / hi, 1 / lo)}× faster than {name}"
    if lo > 1:
        return f"{_span(lo, hi)}× slower than {name}"
    return f"{_span(lo, hi)}× the latency of {name}"


def range_phrase(lo: float, hi: float) -> str:
    """'1.5–3× faster' / '2× slower' / '0.9–1.2× its latency', for a table whose row names the denominator."""
    if hi < 1:
        return f"{_span(1 / hi, 1 / lo)}× faster"
    if lo > 1:
        return f"{_span(lo, hi)}× slower"
    return f"{_span(lo, hi)}× its latency"


def _short(variant: str) -> str:
    return variant.split(".", 1)[1] if variant.startswith(INVOLUTION + ".") else variant


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


# ---- the verdict of one run ----------------------------------------------------------------

def _threads(run: ResultsFile) -> Optional[int]:
    return next((r.threads for r in run.rooflines if r.threads), None) or run.header.fingerprint.torch.threads


def _cells(rows: list[Row], labels: dict[tuple, str]) -> list[Cell]:
    groups: dict[tuple, list[Row]] = defaultdict(list)
    for row in rows:
        groups[(freeze(row.record.case), row.record.pass_)].append(row)
    cells = []
    for (key, pass_), members in groups.items():
        involution = {r.key: r.median_ms for r in members if r.record.family == INVOLUTION}
        if not involution:
            continue
        fastest = min(involution, key=lambda v: (involution[v], v))
        best = involution[fastest]
        ratios, against, against_ms = {}, {}, {}
        for d in DENOMINATORS:
            if d.key == ATTENTION:
                pool = {r.key: r.median_ms for r in members if r.record.family == ATTENTION}
            else:
                pool = {r.key: r.median_ms for r in members if r.key == d.key}
            if pool:
                name = min(pool, key=lambda v: (pool[v], v))
                ratios[d.key], against[d.key], against_ms[d.key] = best / pool[name], name, pool[name]
        case = members[0].record.case
        cells.append(Cell(labels[key], pass_, fastest, best, involution, ratios, against, against_ms,
                          str(case.get("device", "")), str(case.get("dtype", ""))))
    return cells


def _recommendations(cells: list[Cell]) -> list[Recommendation]:
    by: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    for cell in cells:
        by[(cell.device, cell.dtype)].append(cell)
    out = []
    for (device, dtype), members in sorted(by.items()):
        wins = Counter(c.fastest for c in members)
        variant = min(wins, key=lambda v: (-wins[v], v))
        won = [c for c in members if c.fastest == variant]
        seconds = [c.runner_up for c in won if c.runner_up]
        margin = statistics.median(r[1] for r in seconds) if seconds else None
        runner_up = Counter(r[0] for r in seconds).most_common(1)[0][0] if seconds else None
        lost = [c.involution_ms[variant] / c.median_ms for c in members if c.fastest != variant and variant in c.involution_ms]
        out.append(Recommendation(device, dtype, variant, len(won), len(members), margin, runner_up,
                                  max(lost) if lost else None))
    return out


def bottom_line(verdict: RunVerdict) -> str:
    """One sentence: the fastest involution against every denominator present, and unfold against the fastest."""
    if not verdict.cells:
        return (f"On {verdict.machine}: no op- or layer-level involution record ran ok in this file"
                + (" (its model records are in the RedNet against ResNet section)." if verdict.models else "."))
    where = verdict.machine
    devices = {c.device for c in verdict.cells}
    dtypes = sorted({c.dtype for c in verdict.cells if c.dtype})
    if devices == {"cpu"} and verdict.threads:
        where += f" ({verdict.threads} threads{', ' + ', '.join(dtypes) if dtypes else ''})"
    elif dtypes:
        where += f" ({', '.join(dtypes)})"
    wins = Counter(c.fastest for c in verdict.cells)
    ranked = sorted(wins, key=lambda v: (-wins[v], v))
    n = len(verdict.cells)
    if len(ranked) == 1:
        who = _short(ranked[0])
    else:
        who = f"{_short(ranked[0])} at {wins[ranked[0]]} of {n} cells, " + ", ".join(
            f"{_short(v)} at {wins[v]}" for v in ranked[1:])
    against = []
    for d in verdict.denominators():
        lo, hi = verdict.ratio_range(d.key)
        against.append(ratio_phrase(lo, hi, d.name))
    text = f"On {where}, the fastest involution ({who})"
    text += f" is {_join(against)}" if against else " has nothing to compare against in this run (no conv or attention records)"
    if verdict.unfold:
        lo, hi = min(verdict.unfold), max(verdict.unfold)
        if hi <= 1.0:
            text += "; unfold, the paper's reference form, is the fastest"
        elif lo > 1.0:
            text += f"; unfold, the paper's reference form, is {_span(lo, hi)}× slower than the fastest"
        else:
            text += f"; unfold, the paper's reference form, is up to {fmt_x(hi)}× slower than the fastest"
    return text + "."


def build_verdicts(runs: Sequence[ResultsFile], rows: Optional[list[Row]] = None,
                   titles: Optional[Sequence[str]] = None) -> list[RunVerdict]:
    """The verdict of every run (module docstring). `rows`: the report's rows of `runs`, if already made."""
    rows = rows if rows is not None else make_rows(runs, [])
    verdicts = []
    for index, run in enumerate(runs):
        ok = [r for r in rows if r.run == index and r.ok and r.record.case.get("level") != "model"]
        order: dict[tuple, dict] = {}
        for r in ok:
            order.setdefault(freeze(r.record.case), r.record.case)
        labels = dict(zip(order, case_labels(list(order.values()))))
        cells = _cells(ok, labels)
        case_rank = {label: i for i, label in enumerate(labels.values())}
        passes = [p for p in PASS_ORDER if any(c.pass_ == p for c in cells)]
        passes += sorted({c.pass_ for c in cells} - set(passes))
        cells.sort(key=lambda c: (case_rank[c.case], passes.index(c.pass_)))
        unfold = [c.involution_ms[UNFOLD] / c.median_ms for c in cells if UNFOLD in c.involution_ms]
        cases = [label for label in labels.values() if any(c.case == label for c in cells)]
        used_cuda = any(c.device == "cuda" for c in cells)
        verdict = RunVerdict(index, titles[index] if titles else f"#{index + 1} {machine_name(run)}",
                             run.header.fingerprint.machine_name(used_cuda), _threads(run), cases, passes, cells,
                             _recommendations(cells), unfold,
                             sum(r.run == index and r.ok and r.record.case.get("level") == "model" for r in rows))
        verdict.bottom_line = bottom_line(verdict)
        verdicts.append(verdict)
    return verdicts


# ---- machines side by side --------------------------------------------------------------------

@dataclass(frozen=True)
class MachinePoint:
    """The fastest variant of one family at one (case, pass) of one machine (a run, and a dtype within it)."""

    series: str  # '#1 AMD EPYC avx512 (vm)' (+ ' bfloat16' where dtypes differ)
    run: int
    family: str
    case: str  # label of the case's shape, without device and dtype, so machines share it
    pass_: str
    variant: str
    median_ms: float
    pct_roofline: Optional[float]


FAMILIES = ("involution", "conv", "attention")
_MACHINE_FREE = ("device", "dtype")


def machine_points(runs: Sequence[ResultsFile], rows: Optional[list[Row]] = None) -> list[MachinePoint]:
    """Per machine (run × dtype × device), case and pass: the fastest ok variant of each family and its % of roofline."""
    rows = rows if rows is not None else make_rows(runs, [])
    ok = [r for r in rows if r.ok and r.record.family in FAMILIES and r.record.case.get("level") != "model"]
    shapes: dict[tuple, dict] = {}
    for r in ok:
        shape = {k: v for k, v in r.record.case.items() if k not in _MACHINE_FREE}
        shapes.setdefault(freeze(shape), shape)
    labels = dict(zip(shapes, case_labels(list(shapes.values()))))
    dtypes = {str(r.record.case.get("dtype")) for r in ok}
    multi = {r.run for r in ok if len({str(x.record.case.get("dtype")) for x in ok if x.run == r.run}) > 1}
    best: dict[tuple, Row] = {}
    for r in ok:
        case = r.record.case
        shape = freeze({k: v for k, v in case.items() if k not in _MACHINE_FREE})
        key = (r.run, str(case.get("device")), str(case.get("dtype")), r.record.family, shape, r.record.pass_)
        if key not in best or (r.median_ms, r.key) < (best[key].median_ms, best[key].key):
            best[key] = r
    points = []
    for (run, device, dtype, family, shape, pass_), r in best.items():
        name = f"#{run + 1} {machine_name(runs[run])}"
        if len(dtypes) > 1 or run in multi:
            name += f" {dtype}"
        points.append(MachinePoint(name, run, family, labels[shape], pass_, r.key, r.median_ms, r.pct_roofline))
    order = {label: i for i, label in enumerate(labels.values())}
    points.sort(key=lambda p: (p.run, p.series, FAMILIES.index(p.family), order[p.case]))
    return points
