"""Markdown table of a `suites/cpu.yaml` run (issue 9): per case and pass, involution.cpu's median, its % of
the run's roofline and × its bound, the other CPU forms' medians, how much faster cpu is than the best of
eager / unfold / compile (and which that is), and the % of the roofline a call 10× faster than that best
would run at — over 100 % means no implementation can be 10× faster on this machine.

    .venv/bin/python tools/cpu_table.py results/cpu/cpu-suite-2core.jsonl
"""
import sys
from collections import defaultdict

from invobench.results import read_results

OTHERS = ("eager", "unfold", "compile")
COLUMNS = ("cpu", "eager", "unfold", "compile", "depthwise")


def case_label(record) -> str:
    c = record.case
    return f"B{c['B']} C{c['C']} {c['H']}x{c['W']} K{c['K']} G{c['G']}"


def main(path: str) -> None:
    run = read_results(path)
    for roof in run.rooflines:
        if roof.device == "cpu":
            print(f"copy bandwidth {roof.copy_bandwidth_gbps:.1f} GB/s, matmul peak "
                  f"{roof.matmul_peak_flops / 1e9:.0f} GFLOP/s, {roof.threads} threads\n")
    rows: dict = defaultdict(dict)
    for r in run.records:
        if r.status == "ok" and r.case.get("device") == "cpu" and r.variant in COLUMNS:
            rows[(r.pass_, case_label(r))][r.variant] = r
    print("| case | pass | cpu ms | % roofline | × bound | eager ms | unfold ms | compile ms | depthwise ms "
          "| × best other | 10× needs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (pass_, label), by in sorted(rows.items(), key=lambda kv: (kv[0][0] != "fwd", kv[0][1])):
        cpu = by.get("cpu")
        if cpu is None:
            continue
        med = {k: v.stats.median_ms for k, v in by.items()}
        pct, bound = cpu.roofline.pct_of_roofline, cpu.roofline.bound_ms
        best = min((k for k in OTHERS if k in med), key=med.get, default=None)
        cells = [f"{med[k]:.2f}" if k in med else "–" for k in COLUMNS[1:]]
        speedup = f"{med[best] / med['cpu']:.1f}× {best}" if best else "–"
        needs = f"{100 * bound / (med[best] / 10):.0f} %" if best and bound else "–"
        print(f"| {label} | {pass_} | {med['cpu']:.2f} | {pct:.0f} % | {100 / pct:.1f}× | " + " | ".join(cells)
              + f" | {speedup} | {needs} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
