"""Statistics on raw latency samples: ratio of medians with a bootstrap CI, and a Mann–Whitney U test.

All functions take the raw samples (milliseconds) as recorded by the runner, never summaries
(house style: statistics from raw samples). The bootstrap is vectorised: one (resamples × n)
index matrix per sample set, medians along the rows. It is seeded, so the same inputs give
the same interval on every machine.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from scipy import stats as _scipy_stats

#: bootstrap resamples per case: the 2.5/97.5 percentiles of 2,000 resamples move by < 0.5% between seeds
DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95
#: fewer samples than this on either side and a case is reported but not judged
MIN_SAMPLES = 5


def as_samples(values: Sequence[float]) -> np.ndarray:
    """Raw samples as a float64 array without NaN/inf (a runner never writes those; a hand-edited file might)."""
    array = np.asarray(values, dtype=np.float64)
    return array[np.isfinite(array)]


def quartiles(samples: Sequence[float]) -> tuple[float, float, float]:
    """(q1, median, q3) with numpy's default (linear) interpolation."""
    q1, median, q3 = np.percentile(as_samples(samples), [25.0, 50.0, 75.0])
    return float(q1), float(median), float(q3)


def bootstrap_medians(samples: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of `n_resamples` resamples drawn with replacement from `samples`: shape (n_resamples,)."""
    index = rng.integers(0, samples.size, size=(n_resamples, samples.size))
    return np.median(samples[index], axis=1)


def bootstrap_wald_p(ratio: float, boot_ratio: np.ndarray) -> Optional[float]:
    """Two-sided p of log(ratio) = 0 with the bootstrap standard error of the log ratio: 2·Φ(−|log r| / sd*)."""
    log_boot = np.log(boot_ratio[np.isfinite(boot_ratio) & (boot_ratio > 0)])
    if log_boot.size < 2 or not (ratio > 0 and math.isfinite(ratio)):
        return None
    se = float(np.std(log_boot, ddof=1))
    if se == 0.0:
        return 1.0 if ratio == 1.0 else 0.0
    return float(2.0 * _scipy_stats.norm.sf(abs(math.log(ratio)) / se))


def mann_whitney_p(base: np.ndarray, new: np.ndarray) -> Optional[float]:
    """Two-sided Mann–Whitney U p-value of `new` against `base`; None with fewer than 2 samples a side."""
    if base.size < 2 or new.size < 2:
        return None
    if np.ptp(np.concatenate([base, new])) == 0.0:
        return 1.0  # every sample equal: no evidence of a shift (scipy would warn about the tie correction)
    return float(_scipy_stats.mannwhitneyu(new, base, alternative="two-sided").pvalue)


@dataclass(frozen=True)
class RatioEstimate:
    """NEW / BASE as a ratio of medians (> 1: NEW is slower), its bootstrap interval and the MWU p-value."""

    ratio: float
    ci_low: float
    ci_high: float
    p_value: Optional[float]
    n_base: int
    n_new: int


def ratio_of_medians(
    base: Sequence[float],
    new: Sequence[float],
    *,
    base_reference: Optional[Sequence[float]] = None,
    new_reference: Optional[Sequence[float]] = None,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    rng: Optional[np.random.Generator] = None,
) -> RatioEstimate:
    """ratio = median(new) / median(base), with a percentile-bootstrap interval and a Mann–Whitney p-value.

    With references (a variant measured in the same run as each side, at the same case):
        ratio = [median(new) / median(new_ref)] / [median(base) / median(base_ref)]
    The interval bootstraps all four sample sets independently, which cancels a uniformly faster
    or slower machine. The p-value then comes from the same bootstrap (log ratio over its bootstrap
    standard error, two-sided normal): a rank test of samples rescaled by a reference *median*
    would treat that median as exact and call a chance difference between the two references a
    significant change of the variant.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} must lie strictly between 0 and 1 (e.g. 0.95)")
    if (base_reference is None) != (new_reference is None):
        raise ValueError("give both base_reference and new_reference, or neither")
    rng = rng if rng is not None else np.random.default_rng(0)
    b, n = as_samples(base), as_samples(new)
    if b.size == 0 or n.size == 0:
        raise ValueError(f"no finite samples (base n={b.size}, new n={n.size}); a ratio needs at least one each")
    groups = [n, b]
    if base_reference is not None:
        br, nr = as_samples(base_reference), as_samples(new_reference)
        if br.size == 0 or nr.size == 0:
            raise ValueError(f"no finite reference samples (base n={br.size}, new n={nr.size})")
        groups += [nr, br]
    medians = [float(np.median(g)) for g in groups]
    boots = [bootstrap_medians(g, n_resamples, rng) for g in groups]
    if base_reference is None:
        ratio = medians[0] / medians[1]
        boot_ratio = boots[0] / boots[1]
        p_value = mann_whitney_p(b, n)
    else:
        ratio = (medians[0] / medians[2]) / (medians[1] / medians[3])
        boot_ratio = (boots[0] / boots[2]) / (boots[1] / boots[3])
        p_value = bootstrap_wald_p(ratio, boot_ratio)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(boot_ratio, [tail, 100.0 - tail])
    return RatioEstimate(float(ratio), float(low), float(high), p_value, int(b.size), int(n.size))


def paired_ratio(
    base: Sequence[float],
    new: Sequence[float],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    rng: Optional[np.random.Generator] = None,
) -> RatioEstimate:
    """NEW / BASE from samples taken in pairs: sample i of both sides in the same round (`invobench ab`).

    ratio = exp(median_i log(new_i / base_i)), the median per-round ratio; its interval bootstraps
    the rounds (each resample keeps a round's two samples together); p is the two-sided Wilcoxon
    signed-rank test of the per-round log ratios. Pairing cancels what changes from round to round
    on a shared host (another tenant's burst slows both samples of a round), which an unpaired test
    has to count as noise.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} must lie strictly between 0 and 1 (e.g. 0.95)")
    b, n = np.asarray(base, dtype=np.float64), np.asarray(new, dtype=np.float64)
    if b.size != n.size:
        raise ValueError(f"paired samples need equal counts (base n={b.size}, new n={n.size})")
    keep = np.isfinite(b) & np.isfinite(n) & (b > 0) & (n > 0)
    d = np.log(n[keep] / b[keep])
    if d.size == 0:
        raise ValueError("no finite, positive sample pairs")
    rng = rng if rng is not None else np.random.default_rng(0)
    index = rng.integers(0, d.size, size=(n_resamples, d.size))
    boot = np.exp(np.median(d[index], axis=1))
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(boot, [tail, 100.0 - tail])
    if d.size < 2:
        p_value = None
    elif not np.any(d):
        p_value = 1.0
    else:
        p_value = float(_scipy_stats.wilcoxon(d, alternative="two-sided").pvalue)
    return RatioEstimate(float(np.exp(np.median(d))), float(low), float(high), p_value, int(d.size), int(d.size))


def holm_adjust(p_values: Sequence[Optional[float]]) -> list[Optional[float]]:
    """Holm–Bonferroni adjusted p-values (None stays None): p_(i) ↦ max_{j ≤ i} min(1, (m − j + 1)·p_(j)).

    Rejecting where adjusted p < alpha keeps the chance of *any* false alarm among the m cases at
    most alpha, whatever their dependence; a gate that fails on one flagged case needs exactly that.
    """
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(present)
    adjusted: list[Optional[float]] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def verdict(estimate: RatioEstimate, threshold: float, alpha: float, p_value: Optional[float] = None) -> str:
    """'regression' when the whole interval lies above 1 + threshold and p < alpha;
    'improvement' when it lies below 1 / (1 + threshold) (the same distance in log ratio) and p < alpha;
    otherwise 'no change'. `p_value` (e.g. Holm-adjusted) replaces the estimate's own when given."""
    p = estimate.p_value if p_value is None else p_value
    significant = p is not None and p < alpha
    if significant and estimate.ci_low > 1.0 + threshold:
        return "regression"
    if significant and estimate.ci_high < 1.0 / (1.0 + threshold):
        return "improvement"
    return "no change"


def case_rng(seed: int, case_id: str) -> np.random.Generator:
    """A generator seeded by (seed, case id): a case's interval does not depend on which other cases are compared."""
    try:
        salt = int(case_id[:15], 16)
    except ValueError:
        salt = sum(ord(ch) * (i + 1) for i, ch in enumerate(case_id))
    return np.random.default_rng([seed, salt])


def fmt_ratio(value: Optional[float]) -> str:
    """A ratio as '1.234×' ('–' when absent)."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.3f}×"
