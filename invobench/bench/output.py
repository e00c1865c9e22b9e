"""The results file of a run, as the runner and `merge` write it: checked before any timing, appended line by line."""
from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

from invobench.bench.budget import fmt_bytes
from invobench.results import ResultsLock, ResultsLockedError, ResultsWriteError, append_line, lock_results

#: a results file needs at least this much free space before a run starts
MIN_FREE_BYTES = 1 << 20


class RunnerError(RuntimeError):
    """A run that cannot start or go on; the message says why and what to do."""


def default_out(suite_name: str) -> Path:
    """out/<suite>-<UTC time>.jsonl; a name is reduced to its last path component, so it stays inside out/."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in Path(str(suite_name)).name).strip(".-")
    return Path("out") / f"{safe or 'suite'}-{stamp}.jsonl"


def lock(out: Path) -> ResultsLock:
    """The exclusive lock of results file `out` for one writer; RunnerError naming the holder when taken.

    A device (`/dev/null`, `/dev/full`) is not locked: no lock file is made beside it."""
    if out.exists() and not out.is_file():
        return ResultsLock(out, None, None)
    try:
        return lock_results(out)
    except ResultsLockedError as exc:
        raise RunnerError(str(exc)) from None
    except ResultsWriteError as exc:
        raise RunnerError(str(exc)) from exc


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
    """Append one line, or stop the run: the line is written whole or rolled back (`append_line`)."""
    try:
        append_line(out, line)
    except ResultsWriteError as exc:
        raise RunnerError(f"{exc.strerror}. The run stopped; free space (or fix the path) and continue it with "
                          f"`invobench run SUITE --resume --out {out}`") from exc
