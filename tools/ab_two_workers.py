"""Do two benchmark workers of the *same* code agree when they take turns? (docs/gate.md)

    .venv/bin/python tools/ab_two_workers.py [SLICES] [THREADS]      # e.g. 4 slices, default threads

Starts two `invobench.bench.worker` processes and measures every case group of the smoke suite in
SLICES short slices per worker, alternating A B / B A, each slice a 1/SLICES share of the suite's
budget. Prints the B/A ratio of medians per case: with the same code on a quiet, dedicated machine
every ratio would be ≈ 1. A gate that compares separate processes can only be as good as this spread.
"""
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from invobench.bench.cases import expand_suite, group_items
from invobench.bench.runner import WorkerProcess, _known_variants
from invobench.bench.suite import load_suite


def main() -> None:
    slices = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else None
    known = _known_variants()
    loaded = load_suite("smoke", known)
    groups = group_items(expand_suite(loaded, known))
    budget = loaded.suite.budget
    tmp = Path(tempfile.mkdtemp(prefix="invobench-ab-"))
    workers = {}
    for side in "AB":
        (tmp / side).mkdir()
        workers[side] = WorkerProcess(tmp / side, threads)
        workers[side].start()
    samples: dict[tuple, list[float]] = {}
    try:
        for gi, g in enumerate(groups):
            for sl in range(slices):
                for side in ("AB" if (sl + gi) % 2 == 0 else "BA"):
                    workers[side].send({
                        "kind": "group", "group_id": g.group_id, "case": g.case.as_dict(), "pass": g.pass_,
                        "variants": [i.key for i in g.items], "seed": sl,
                        "policy": {"warmup_s": budget.warmup_s / 2, "case_s": budget.case_s / slices, "min_samples": 3,
                                   "max_samples": max(3, budget.max_samples // slices), "rel_iqr": 0.0,
                                   "max_call_s": budget.max_call_s},
                        "timer": {"l2_flush": False, "cuda_graphs": False}})
                    while True:
                        reply = workers[side].receive(budget.timeout_s)
                        if not isinstance(reply, dict):
                            raise RuntimeError(f"worker {side} died: {reply}")
                        if reply.get("kind") == "result":
                            samples.setdefault((reply["key"], g.pass_, g.case.label(), side), []).extend(reply.get("samples_ms", []))
                        elif reply.get("kind") == "group_done":
                            break
    finally:
        for w in workers.values():
            w.stop()
    rows = sorted(
        (statistics.median(samples[(k, p, label, "B")]) / statistics.median(s), k, p, label, len(s), len(samples[(k, p, label, "B")]))
        for (k, p, label, side), s in samples.items() if side == "A" and samples.get((k, p, label, "B")))
    for ratio, key, pass_, label, na, nb in rows:
        print(f"{ratio:6.3f}  {key:24s} {pass_:8s} {label}  n={na}/{nb}")
    ratios = np.array([r[0] for r in rows])
    print(f"slices={slices} threads={threads or 'default'}: {len(rows)} cases, B/A from {ratios.min():.3f} to "
          f"{ratios.max():.3f}, median |log(B/A)| {np.median(np.abs(np.log(ratios))):.3f}")


if __name__ == "__main__":
    main()
