"""The results file of a run, as the runner and `merge` write it: checked before any timing, appended line by line."""
from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

from invobench.bench.budget import fmt_bytes
from invobench.results import append_line

#: a results file needs at least this much free space before a run starts
MIN_FREE_BYTES = 1 << 20


class RunnerError(RuntimeError):
    """A run that cannot start or go on; the message says why and what to do."""


def default_out(suite_name: str) -> Path:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Path("out") / f"{suite_name}-{stamp}.jsonl"


def ensure_writable(out: Path) -> None:
    """Fail before any timing when the results cannot be written (no directory, no permission, no space)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunnerError(f"cannot create the directory of --out {out}: {exc.strerror or exc}") from exc
    try:
        st = os.statvfs(out.parent)
        free = st.f_bavail * st.f_frsize
    except OSError:
        free = None
    if free is not None and free < MIN_FREE_BYTES:
        raise RunnerError(f"only {fmt_bytes(free)} free on the file system of --out {out}; need at least "
                          f"{fmt_bytes(MIN_FREE_BYTES)}. Free some space or choose another --out")


def write_line(out: Path, line) -> None:
    try:
        append_line(out, line)
    except OSError as exc:
        raise RunnerError(f"cannot write results to {out}: {exc.strerror or exc}. Every line written so far is "
                          "intact; free space (or fix the path) and rerun with --resume") from exc
