"""Compare two runs case by case: ratio of medians, bootstrap interval, Mann–Whitney p-value, verdict.

Records are matched by `case_id` (stable across runs and machines). Per matched case:

    ratio = median(NEW samples) / median(BASE samples)          (> 1: NEW is slower)
    regression  ⇔ the whole 95% interval > 1 + threshold and p < alpha
    improvement ⇔ the whole 95% interval < 1 / (1 + threshold) and p < alpha

p is the Mann–Whitney U p-value, Holm-adjusted over every judged case of the comparison
(`correction="holm"`, the default), so alpha bounds the chance that the gate fails on any
case at all when nothing changed; `correction="none"` judges each case at alpha on its own.

BASE and NEW from one `invobench ab` run (their headers share `options.ab.pair_run_id`) were
sampled in the same rounds, sample i of both sides at the same moment: then the ratio is the median
per-round ratio, its interval bootstraps rounds, and p is the Wilcoxon signed-rank test of the
per-round log ratios (`paired_ratio`), which cancels the round-to-round swings of a shared host.

With `normalize_by=VARIANT` every latency is first divided by the latency of VARIANT measured
in the same run at the same case and pass (house style: compare ratios measured in one run),
so a uniformly faster or slower machine cancels out. A case that ran in BASE but fails in NEW
(error, crashed, oom, timeout) is 'broken' and fails the gate like a regression.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np

from invobench.report.inputs import host_loads, machine_name
from invobench.report.shards import shard_warning
from invobench.report.stats import (
    DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, MIN_SAMPLES, as_samples, case_rng, fmt_ratio, holm_adjust, paired_ratio,
    ratio_of_medians, verdict,
)
from invobench.results import Record, ResultsFile

FAILED_STATUSES = ("error", "crashed", "oom", "timeout")
CORRECTIONS = ("holm", "none")
#: verdicts in the order a reader wants them: what fails the gate first
VERDICTS = ("broken", "regression", "improvement", "fixed", "no change", "not judged", "reference")
GATE_VERDICTS = ("broken", "regression")
#: the note of a case judged on paired samples (the two sides of one `invobench ab` run)
PAIRED_NOTE = "paired by round"


class CompareError(ValueError):
    """Two runs that cannot be compared (no common cases, unknown reference variant); the message says why."""


@dataclass
class CaseComparison:
    """One matched case. ratio/ci/p are None where the case was not judged (see `note`)."""

    case_id: str
    family: str
    variant: str
    pass_: str
    label: str
    verdict: str
    base_status: str
    new_status: str
    note: str = ""
    base_median_ms: Optional[float] = None
    new_median_ms: Optional[float] = None
    ratio: Optional[float] = None
    ci_low: Optional[float] = None
    ci_high: Optional[float] = None
    p_value: Optional[float] = None
    #: p_value after the multiple-comparison correction (what the verdict uses)
    p_adjusted: Optional[float] = None
    n_base: int = 0
    n_new: int = 0

    @property
    def variant_key(self) -> str:
        return f"{self.family}.{self.variant}"


@dataclass
class Comparison:
    base_path: str
    new_path: str
    base_run_id: str
    new_run_id: str
    base_machine: str
    new_machine: str
    threshold: float
    alpha: float
    confidence: float
    normalize_by: Optional[str]
    correction: str
    n_resamples: int
    seed: int
    cases: list[CaseComparison]
    only_in_base: list[str] = field(default_factory=list)
    only_in_new: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: BASE and NEW are the two sides of one `invobench ab` run: samples compared round by round
    paired: bool = False

    def with_verdict(self, *verdicts: str) -> list[CaseComparison]:
        return [c for c in self.cases if c.verdict in verdicts]

    def counts(self) -> dict[str, int]:
        return {v: sum(c.verdict == v for c in self.cases) for v in VERDICTS}

    @property
    def gate_failures(self) -> list[CaseComparison]:
        """Cases that make `--fail-on-regression` exit 1: regressions and newly failing cases."""
        return self.with_verdict(*GATE_VERDICTS)

    def summary_line(self) -> str:
        counts = self.counts()
        parts = [f"{counts[v]} {v}" for v in VERDICTS if counts[v]]
        extra = []
        if self.only_in_base:
            extra.append(f"{len(self.only_in_base)} only in BASE")
        if self.only_in_new:
            extra.append(f"{len(self.only_in_new)} only in NEW")
        return f"{len(self.cases)} common cases: " + ", ".join(parts) + (f" ({', '.join(extra)})" if extra else "")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["counts"] = self.counts()
        data["gate_failures"] = len(self.gate_failures)
        for case in data["cases"]:
            case["pass"] = case.pop("pass_")
        return data


def _case_key(record: Record) -> tuple[str, str]:
    """(pass, case parameters): how a record finds the reference variant's record of the same run."""
    return record.pass_, json.dumps(record.case, sort_keys=True)


def _describe(record: Record) -> str:
    return f"{record.family}.{record.variant} {record.pass_} {record.label}"


def _index(run: ResultsFile, side: str, warnings: list[str]) -> dict[str, Record]:
    by_id: dict[str, Record] = {}
    duplicates = 0
    for record in run.records:
        if record.case_id in by_id:
            duplicates += 1
        by_id[record.case_id] = record  # the later line wins: a resumed or re-merged run appends the newer record
    if duplicates:
        warnings.append(f"{side} {run.path}: {duplicates} records repeat a case id; the last of each is used")
    return by_id


def _busy_host(run: ResultsFile) -> Optional[str]:
    """'load average up to L on N cores' when the runner saw more runnable work than cores, else None."""
    loads = host_loads(run)
    cores = run.header.fingerprint.cpu.logical_cores
    if loads and isinstance(cores, int) and max(loads) > cores:
        return f"1-minute load average up to {max(loads):.1f} on {cores} logical cores"
    return None


def _environment_difference(base: ResultsFile, new: ResultsFile) -> Optional[str]:
    """'NAME: BASE value vs NEW value; …' for the recorded worker environment variables that differ, else None.

    They are the settings that move latencies without a code change: threads, and the allocator's
    (THP_MEM_ALLOC_ENABLE, GLIBC_TUNABLES: a large output mapped fresh each call, or reused from the
    heap; invobench.env.WORKER_ENV_DEFAULTS)."""
    def show(value: object) -> str:
        return "unset" if value is None else repr(value)

    base_env, new_env = base.header.fingerprint.env, new.header.fingerprint.env
    diffs = [f"{k}: {show(base_env.get(k))} vs {show(new_env.get(k))}"
             for k in sorted(set(base_env) | set(new_env)) if base_env.get(k) != new_env.get(k)]
    return "; ".join(diffs) if diffs else None


def resolve_variant(name: str, runs: list[ResultsFile]) -> str:
    """`family.variant` for a name given as either `family.variant` or a bare variant name found in the runs."""
    keys = sorted({f"{r.family}.{r.variant}" for run in runs for r in run.records})
    if name in keys:
        return name
    matches = [k for k in keys if k.split(".", 1)[1] == name]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise CompareError(f"--normalize-by {name!r} is ambiguous: {', '.join(matches)}; give it as family.variant")
    raise CompareError(f"--normalize-by {name!r}: no such variant in these runs; variants present: {', '.join(keys) or 'none'}")


def _median(record: Record) -> Optional[float]:
    samples = as_samples(record.samples_ms)
    if samples.size:
        return float(np.median(samples))
    return record.stats.median_ms if record.stats is not None else None


def _sample_problem(record: Record, side: str) -> Optional[str]:
    n = as_samples(record.samples_ms).size
    if n == 0:
        return f"{side} has no raw samples" + (" (only summary stats)" if record.stats is not None else "")
    if n < MIN_SAMPLES:
        return f"{side} has {n} samples (< {MIN_SAMPLES})"
    return None


def _reference_shift(cases: list["CaseComparison"], threshold: float) -> Optional[tuple[float, float, int]]:
    """(lowest, highest, n) NEW/BASE median ratio of the --normalize-by variant's own cases, when they
    differ from each other by more than the threshold allows twice over; None when they agree.

    Normalising assumes the machine got uniformly faster or slower; a reference that moved by 0.8× at
    one case and 1.3× at another (two runs on a shared host, docs/gate.md) says that assumption failed.
    """
    ratios = [c.new_median_ms / c.base_median_ms for c in cases
              if c.verdict == "reference" and c.base_median_ms and c.new_median_ms]
    if len(ratios) < 2 or max(ratios) / min(ratios) <= (1 + threshold) ** 2:
        return None
    return min(ratios), max(ratios), len(ratios)


def _reference(by_key: dict, record: Record, ref_key: str, side: str) -> tuple[Optional[Record], Optional[str]]:
    ref = by_key.get(_case_key(record))
    if ref is None:
        return None, f"no {ref_key} record at this case and pass in {side}"
    if ref.status != "ok":
        return None, f"{ref_key} is {ref.status} at this case in {side}"
    problem = _sample_problem(ref, f"{side} {ref_key}")
    return (None, problem) if problem else (ref, None)


def _ab_pair(run: ResultsFile) -> Optional[str]:
    """The combined run id of an `invobench ab` side (None for an ordinary run)."""
    ab = (run.header.options or {}).get("ab")
    return ab.get("pair_run_id") if isinstance(ab, dict) else None


def compare_runs(
    base: ResultsFile,
    new: ResultsFile,
    *,
    threshold: float = 0.05,
    alpha: float = 0.05,
    normalize_by: Optional[str] = None,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    correction: str = "holm",
) -> Comparison:
    """Match BASE and NEW by case id and judge every common case (module docstring for the rules)."""
    if not (math.isfinite(threshold) and threshold >= 0):
        raise CompareError(f"threshold={threshold} must be a finite number >= 0 (a fraction: 0.05 means 5%)")
    if not 0 < alpha < 1:  # NaN fails this too
        raise CompareError(f"alpha={alpha} must lie strictly between 0 and 1 (e.g. 0.05)")
    if correction not in CORRECTIONS:
        raise CompareError(f"correction={correction!r} is not one of {', '.join(CORRECTIONS)}")
    warnings: list[str] = []
    base_by_id, new_by_id = _index(base, "BASE", warnings), _index(new, "NEW", warnings)
    common = [cid for cid in base_by_id if cid in new_by_id]
    only_base = sorted(_describe(base_by_id[c]) for c in base_by_id if c not in new_by_id)
    only_new = sorted(_describe(new_by_id[c]) for c in new_by_id if c not in base_by_id)
    if not common:
        raise CompareError(
            f"no common cases: BASE {base.path} has {len(base_by_id)} records, NEW {new.path} has {len(new_by_id)}, "
            f"and no case id appears in both (different suites, or a different invobench case-id scheme?)"
        )
    base_machine, new_machine = machine_name(base), machine_name(new)
    ref_key = resolve_variant(normalize_by, [base, new]) if normalize_by else None
    if base_machine != new_machine and ref_key is None:
        warnings.append(f"BASE ran on {base_machine}, NEW on {new_machine}: absolute times of different machines "
                        f"differ; consider --normalize-by a reference variant (e.g. conv.depthwise)")
    for side, run in (("BASE", base), ("NEW", new)):
        busy = _busy_host(run)
        if busy:
            warnings.append(f"{side} ran on a busy host ({busy}): its samples are inflated and spread, "
                            f"so intervals widen and small changes go undetected")
    env_diff = _environment_difference(base, new)
    if env_diff:
        warnings.append(f"BASE and NEW ran with different worker environments ({env_diff}): thread counts and "
                        f"allocator settings move latencies without any change in the code")
    warnings.extend(w for w in map(shard_warning, (base, new)) if w)  # shards merged from different machines
    if base.header.suite.name != new.header.suite.name:
        warnings.append(f"different suites (BASE {base.header.suite.name!r}, NEW {new.header.suite.name!r}); "
                        f"only the {len(common)} common cases are compared")
    base_by_key = {_case_key(r): r for r in base_by_id.values() if f"{r.family}.{r.variant}" == ref_key}
    new_by_key = {_case_key(r): r for r in new_by_id.values() if f"{r.family}.{r.variant}" == ref_key}

    # the two sides of one `invobench ab` run: sample i of a case was taken in the same round on both
    pair_id = _ab_pair(base)
    paired = pair_id is not None and pair_id == _ab_pair(new)
    any_paired = False
    cases = []
    estimates = []
    for cid in common:
        b, n = base_by_id[cid], new_by_id[cid]
        row = CaseComparison(cid, n.family, n.variant, n.pass_, n.label, "not judged", b.status, n.status,
                             base_median_ms=_median(b) if b.status == "ok" else None,
                             new_median_ms=_median(n) if n.status == "ok" else None,
                             n_base=int(as_samples(b.samples_ms).size), n_new=int(as_samples(n.samples_ms).size))
        cases.append(row)
        if row.variant_key == ref_key:
            row.verdict, row.note = "reference", "the --normalize-by variant itself"
            continue
        if b.status == "ok" and n.status in FAILED_STATUSES:
            row.verdict = "broken"
            detail = (n.error or "; ".join(n.reasons)).strip()
            row.note = f"NEW {n.status}" + (f": {detail.splitlines()[0][:200]}" if detail else "")
            continue
        if b.status != "ok" and n.status == "ok":
            row.verdict, row.note = "fixed", f"BASE was {b.status}"
            continue
        if b.status != "ok" or n.status != "ok":
            reason = "; ".join(n.reasons or b.reasons)
            row.note = f"BASE {b.status}, NEW {n.status}" + (f": {reason}" if reason else "")
            continue
        if row.base_median_ms and row.new_median_ms:
            row.ratio = row.new_median_ms / row.base_median_ms
        problem = _sample_problem(b, "BASE") or _sample_problem(n, "NEW")
        refs = (None, None)
        if problem is None and ref_key is not None:
            base_ref, problem_b = _reference(base_by_key, b, ref_key, "BASE")
            new_ref, problem_n = _reference(new_by_key, n, ref_key, "NEW")
            problem = problem_b or problem_n
            refs = (base_ref, new_ref)
        if problem is not None:
            row.note = problem + "; not judged"
            continue
        if paired and ref_key is None and len(b.samples_ms) == len(n.samples_ms):
            estimate = paired_ratio(b.samples_ms, n.samples_ms, confidence=confidence, n_resamples=n_resamples,
                                    rng=case_rng(seed, cid))
            row.note = PAIRED_NOTE
            any_paired = True
        else:
            estimate = ratio_of_medians(
                b.samples_ms, n.samples_ms,
                base_reference=refs[0].samples_ms if refs[0] is not None else None,
                new_reference=refs[1].samples_ms if refs[1] is not None else None,
                confidence=confidence, n_resamples=n_resamples, rng=case_rng(seed, cid),
            )
        row.ratio, row.ci_low, row.ci_high, row.p_value = estimate.ratio, estimate.ci_low, estimate.ci_high, estimate.p_value
        estimates.append((row, estimate))

    adjusted = holm_adjust([e.p_value for _, e in estimates]) if correction == "holm" else [e.p_value for _, e in estimates]
    for (row, estimate), p_adjusted in zip(estimates, adjusted):
        row.p_adjusted = p_adjusted
        row.verdict = verdict(estimate, threshold, alpha, p_value=p_adjusted)

    shift = _reference_shift(cases, threshold)
    if shift is not None:
        low, high, n = shift
        warnings.append(f"the --normalize-by reference {ref_key} itself moved by {low:.2f}–{high:.2f}× from BASE to NEW "
                        f"across its {n} cases: normalising cancels one uniform change of machine speed, and these two "
                        f"runs did not see one; flags within that range may be the machine's state, not the code "
                        f"(docs/gate.md)")
    unjudged = [c for c in cases if c.verdict == "not judged" and c.base_status == c.new_status == "ok"]
    if unjudged:
        warnings.append(f"{len(unjudged)} ok cases were not judged (missing raw samples or reference); "
                        f"e.g. {unjudged[0].variant_key} {unjudged[0].pass_} {unjudged[0].label}: {unjudged[0].note}")
    order = {v: i for i, v in enumerate(VERDICTS)}
    cases.sort(key=lambda c: (order[c.verdict], -(c.ratio or 0.0) if c.verdict != "improvement" else (c.ratio or 0.0),
                              c.variant_key, c.pass_, c.label))
    return Comparison(
        base_path=base.path, new_path=new.path, base_run_id=base.header.run_id, new_run_id=new.header.run_id,
        base_machine=base_machine, new_machine=new_machine, threshold=threshold, alpha=alpha, confidence=confidence,
        normalize_by=ref_key, correction=correction, n_resamples=n_resamples, seed=seed, cases=cases,
        only_in_base=only_base, only_in_new=only_new, warnings=warnings,
        paired=any_paired,
    )


# ---- output -----------------------------------------------------------------------------------

def _fmt_ms(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.4g}"


def _fmt_p(value: Optional[float]) -> str:
    return "–" if value is None else (f"{value:.1e}" if value < 1e-3 else f"{value:.3f}")


def _fmt_ci(case: CaseComparison) -> str:
    if case.ci_low is None or case.ci_high is None:
        return "–"
    return f"[{case.ci_low:.3f}, {case.ci_high:.3f}]"


def describe_rule(comparison: Comparison) -> str:
    """The decision rule in one sentence, with this comparison's numbers."""
    t = comparison.threshold
    norm = (f"latencies divided by {comparison.normalize_by} of the same run; " if comparison.normalize_by else "")
    if comparison.paired:
        p = "Holm-adjusted Wilcoxon signed-rank p" if comparison.correction == "holm" else "Wilcoxon signed-rank p"
        return (f"ratio = median NEW/BASE over the rounds of one A/B run (paired samples); regression: whole "
                f"{comparison.confidence:.0%} bootstrap interval > {1 + t:.3f} and {p} < {comparison.alpha}; "
                f"improvement: interval < {1 / (1 + t):.3f} and {p} < {comparison.alpha}")
    p = "Holm-adjusted Mann–Whitney p" if comparison.correction == "holm" else "Mann–Whitney p"
    return (f"{norm}ratio = NEW/BASE median; regression: whole {comparison.confidence:.0%} bootstrap interval > {1 + t:.3f} "
            f"and {p} < {comparison.alpha}; improvement: interval < {1 / (1 + t):.3f} and {p} < {comparison.alpha}")


#: p is the adjusted p-value the verdict used (the raw one is in --format json)
COLUMNS = ("verdict", "variant", "pass", "case", "BASE ms", "NEW ms", "ratio", "95% CI", "p", "note")


def columns(comparison: Comparison) -> tuple[str, ...]:
    """Column titles; the ratio says what it is a ratio of when latencies were normalised."""
    names = {"p": "p (Holm)" if comparison.correction == "holm" else "p"}
    if comparison.normalize_by is not None:
        names["ratio"] = f"ratio (÷ {comparison.normalize_by})"
    return tuple(names.get(c, c) for c in COLUMNS)


def table_rows(comparison: Comparison, cases: Optional[list[CaseComparison]] = None) -> list[tuple[str, ...]]:
    """Rows of text for the terminal and markdown tables."""
    rows = []
    for c in comparison.cases if cases is None else cases:
        rows.append((c.verdict, c.variant_key, c.pass_, c.label, _fmt_ms(c.base_median_ms), _fmt_ms(c.new_median_ms),
                     fmt_ratio(c.ratio), _fmt_ci(c), _fmt_p(c.p_adjusted), c.note))
    return rows


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def _md_table(titles: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    lines += ["| " + " | ".join(_md_cell(cell) for cell in row) + " |" for row in rows]
    return lines


def to_markdown(comparison: Comparison) -> str:
    """A PR comment: verdict line, the rule, the cases that matter, every case folded away."""
    failures = comparison.gate_failures
    head = "❌ performance regression" if failures else "✅ no performance regression"
    lines = [f"### invobench compare: {head}", "",
             f"BASE `{_md_cell(comparison.base_run_id)}` ({_md_cell(comparison.base_machine)}) → "
             f"NEW `{_md_cell(comparison.new_run_id)}` ({_md_cell(comparison.new_machine)})", "",
             comparison.summary_line() + ".", "", f"_{describe_rule(comparison)}._", ""]
    notable = comparison.with_verdict("broken", "regression", "improvement", "fixed")
    if notable:
        lines += _md_table(columns(comparison), table_rows(comparison, notable)) + [""]
    lines += ["<details><summary>All cases</summary>", ""] + _md_table(columns(comparison), table_rows(comparison))
    lines += ["", "</details>"]
    if comparison.only_in_base or comparison.only_in_new:
        lines += ["", f"Only in BASE: {len(comparison.only_in_base)}; only in NEW: {len(comparison.only_in_new)}."]
    for warning in comparison.warnings:
        lines += ["", f"> ⚠️ {_md_cell(warning)}"]
    return "\n".join(lines) + "\n"


def to_json(comparison: Comparison) -> str:
    return json.dumps(comparison.to_dict(), indent=2, allow_nan=False, default=str)


#: with more cases than this, the terminal table folds the 'no change'/'not judged' rows into a count
TERMINAL_ROW_LIMIT = 60
STYLES = {"broken": "bold magenta", "regression": "bold red", "improvement": "green", "fixed": "cyan",
          "not judged": "dim", "reference": "dim"}


def to_rich_table(comparison: Comparison):
    """A rich Table for the terminal (the CLI prints it)."""
    from rich.table import Table

    table = Table(title=f"{comparison.base_run_id} → {comparison.new_run_id}", caption=describe_rule(comparison))
    cases = comparison.cases
    folded = 0
    if len(cases) > TERMINAL_ROW_LIMIT:
        shown = [c for c in cases if c.verdict not in ("no change", "not judged", "reference")]
        folded = len(cases) - len(shown)
        cases = shown
    rows = table_rows(comparison, cases)
    with_note = any(row[-1] for row in rows)
    titles = columns(comparison)
    for name in titles if with_note else titles[:-1]:
        table.add_column(name, justify="right" if name.startswith(("BASE ms", "NEW ms", "ratio", "p")) else "left",
                         no_wrap=name != "note", overflow="fold")
    for case, row in zip(cases, rows):
        table.add_row(*(row if with_note else row[:-1]), style=STYLES.get(case.verdict))
    if folded:
        table.add_row(f"… {folded} more", "", "", "no change / not judged (see --format md or json)",
                      *[""] * (len(table.columns) - 4), style="dim")
    return table
