"""Finding and reading the results files that `report` and `compare` are given.

Files are read with `invobench.results.read_results` (never repaired: a report must not
truncate its inputs). Problems become `ReportInputError` with a message naming the path,
which the CLI prints without a traceback.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Union

from invobench.results import ResultsFile, ResultsFileError, read_results

#: what a directory is searched for (the runner writes JSON Lines)
RESULTS_GLOB = "*.jsonl"


class ReportInputError(ValueError):
    """Inputs that cannot be reported on; the message says which path and why."""


def find_results_files(paths: Iterable[Union[str, Path]]) -> list[Path]:
    """Expand files and directories (searched recursively for *.jsonl) into a sorted, de-duplicated list."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(p for p in path.rglob(RESULTS_GLOB) if p.is_file())
            if not inside:
                raise ReportInputError(f"{path}: no results files ({RESULTS_GLOB}) in this directory; "
                                       f"write one with `invobench run SUITE --out {path}/run.jsonl`")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise ReportInputError(f"{path}: no such file or directory")
    unique: list[Path] = []
    seen: set[Path] = set()
    for path in found:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def load_results(paths: Iterable[Union[str, Path]]) -> list[ResultsFile]:
    """Read every results file under `paths`; the first unreadable one raises ReportInputError naming its line."""
    files = find_results_files(paths)
    if not files:
        raise ReportInputError("no results files given")
    loaded = []
    for path in files:
        try:
            loaded.append(read_results(path, repair=False))
        except ResultsFileError as exc:
            raise ReportInputError(str(exc)) from exc
    return loaded


def machine_name(results: ResultsFile) -> str:
    """A short name for the machine of a run: the GPU if one was used, else the CPU model, then the host."""
    fp = results.header.fingerprint
    used_cuda = any(r.case.get("device") == "cuda" for r in results.records)
    device = fp.machine_name(used_cuda)
    return f"{device} ({fp.hostname})" if fp.hostname else device


def host_loads(run: ResultsFile) -> list[float]:
    """The 1-minute load averages the runner recorded at the start of each case group (info.host_load)."""
    loads = []
    for record in run.records:
        value = record.info.get("host_load")
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], (int, float)):
            loads.append(float(value[0]))
    return loads


def run_titles(runs: list[ResultsFile]) -> list[str]:
    """Column titles for runs shown side by side: '#1 machine · run id', unique even for one machine twice."""
    return [f"#{i} {machine_name(run)} · {run.header.run_id}" for i, run in enumerate(runs, start=1)]
