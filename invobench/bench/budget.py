"""Budgets of a run: how much memory it may use and how long it samples.

- Memory: `--mem-budget` (a share of available memory or an amount) bounds what a case may need by
  the guard's estimate, and the worker's resident memory (the watchdog); `pack_by_memory` splits a
  case group's variants into chunks that fit together.
- Time: `--quick` and A/B runs adjust the suite's sampling budget.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

from invobench.bench.cases import BenchItem
from invobench.bench.suite import Suite

#: host memory budget when neither --mem-budget nor the suite gives one: this share of MemAvailable
DEFAULT_MEM_FRACTION = 0.6
#: GPU memory budget default: this share of the device's total memory
DEFAULT_GPU_FRACTION = 0.9

_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?)(b?)\s*$", re.IGNORECASE)


#: how --mem-budget (and a suite's mem_budget) is written; one rule, shown in --help and in every error
MEM_BUDGET_RULE = ("a share of available memory (60%, or a fraction up to 1: 0.6) or an amount with a unit "
                   "(8GiB, 512MiB, 8GB, 2000000B); a plain number above 1 is refused, as it could mean either")


def parse_mem_budget(text: str, available_bytes: int) -> int:
    """Bytes of a memory budget written as `MEM_BUDGET_RULE` says: '60%', '0.6' (of `available_bytes`), or '8GiB',
    '8G' (binary), '8GB' (decimal), '512B'."""
    s = str(text).strip()
    try:
        if s.endswith("%"):
            share = float(s[:-1]) / 100
            if not 0 < share <= 1:
                raise ValueError
            return int(share * available_bytes)
        value = float(s)
    except ValueError:
        value = None
    if value is not None:
        if 0 < value <= 1:
            return int(value * available_bytes)
        if value > 1:
            raise ValueError(f"--mem-budget {text!r} has no unit: write {s}B for bytes, or {s}GiB, or a share such as "
                             f"60%; the rule: {MEM_BUDGET_RULE}")
        raise ValueError(f"--mem-budget {text!r} is not a size: {MEM_BUDGET_RULE}")
    m = _SIZE.match(s)
    if m and (m.group(2) or m.group(4)):
        number, unit, binary, b = float(m.group(1)), m.group(2).lower(), m.group(3), m.group(4)
        power = "kmgt".index(unit) + 1 if unit else 0
        base = 1000 if (b and not binary) else 1024
        amount = int(number * base**power)
        if amount > 0:
            return amount
    raise ValueError(f"--mem-budget {text!r} is not a size: {MEM_BUDGET_RULE}")


def available_memory_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def rss_bytes(pid: int) -> Optional[int]:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def fmt_bytes(n: Optional[float]) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


#: samples per side an A/B run takes at least: the paired signed-rank test of n rounds cannot reach
#: p < 0.05 / 36 (Holm over a smoke suite's 36 cases) with fewer than ~12; 5 pairs cannot go below 0.0625
AB_MIN_SAMPLES = 20


def ab_budget(suite: Suite) -> Suite:
    """An A/B run's budget: at least AB_MIN_SAMPLES samples of every variant and twin."""
    b = suite.budget
    n = max(b.min_samples, AB_MIN_SAMPLES)
    budget = b.model_copy(update=dict(min_samples=n, max_samples=max(b.max_samples, n)))
    return suite.model_copy(update=dict(budget=budget))


def quick_budget(suite: Suite) -> Suite:
    """`--quick`: short warm-up and sampling, few samples, a small roofline — numbers for a smoke check only."""
    b, r = suite.budget, suite.roofline
    budget = b.model_copy(update=dict(warmup_s=min(b.warmup_s, 0.05), case_s=min(b.case_s, 0.2), min_samples=3,
                                      max_samples=min(b.max_samples, 20)))
    roof = r.model_copy(update=dict(copy_mib=min(r.copy_mib, 64), matmul_max_n=min(r.matmul_max_n, 1024),
                                    time_s=min(r.time_s, 0.1)))
    return suite.model_copy(update=dict(budget=budget, roofline=roof))



def pack_by_memory(items: list[tuple[BenchItem, Optional[int]]], budget: int) -> list[list[tuple[BenchItem, Optional[int]]]]:
    """Split a group's variants into chunks whose summed estimates fit the budget (all of a chunk is live at once)."""
    chunks: list[list] = []
    current, used = [], 0
    for item, estimate in items:
        need = estimate or 0
        if current and used + need > budget:
            chunks.append(current)
            current, used = [], 0
        current.append((item, estimate))
        used += need
    if current:
        chunks.append(current)
    return chunks
