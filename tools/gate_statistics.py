"""Which per-case statistic is stable between two runs? For BASE and NEW results files, per case: the
NEW/BASE ratio of the median, the minimum, the 10th and the 25th percentile of the samples, summarised
over the cases of every variant but eager (median |log ratio|, range, how many above 1.05) and listed
for the eager cases (the ones `tests/gate_harness.py`'s INVOBENCH_SLOW_EAGER slows).

    .venv/bin/python tools/gate_statistics.py results/gate/smoke-zen4-a1.jsonl results/gate/smoke-zen4-a2.jsonl
"""
import sys

import numpy as np

from invobench.results import read_results

STATISTICS = {
    "median": np.median,
    "min": np.min,
    "p10": lambda s: np.quantile(s, 0.10),
    "p25": lambda s: np.quantile(s, 0.25),
}


def load(path: str) -> dict:
    return {r.case_id: (r.variant, np.array(r.samples_ms)) for r in read_results(path).records
            if r.status == "ok" and r.samples_ms}


def main(base_path: str, new_path: str) -> None:
    base, new = load(base_path), load(new_path)
    common = [k for k in base if k in new]
    for name, stat in STATISTICS.items():
        others, eager = [], []
        for k in common:
            ratio = stat(new[k][1]) / stat(base[k][1])
            (eager if base[k][0].startswith("eager") else others).append(ratio)
        others = np.array(others)
        print(f"{name:6s} others: median |log ratio| {np.median(np.abs(np.log(others))) * 100:.1f} %, "
              f"range {others.min():.2f}–{others.max():.2f}, {(others > 1.05).sum()} of {len(others)} above 1.05 "
              f"| eager {' '.join(f'{r:.2f}' for r in eager)}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
