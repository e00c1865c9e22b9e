"""Reading and writing results files (schema v1, `invobench.results.schema`).

Appends are single `write` calls of one line followed by fsync, so a kill leaves at most a partial
last line, which `read_results(repair=True)` drops.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Union

from pydantic import BaseModel, ValidationError

from invobench.results.schema import _LINE, SCHEMA_VERSION, Record, Roofline, RunHeader


class ResultsFileError(ValueError):
    """A results file that cannot be read; the message names the file and line."""


class ResultsFile(BaseModel):
    path: str
    header: RunHeader
    rooflines: list[Roofline]
    records: list[Record]
    dropped_partial_line: bool = False


def append_line(path: Path, line: BaseModel) -> None:
    """Append one JSON line atomically enough for a kill: one write of the whole line, then fsync."""
    data = (line.model_dump_json(by_alias=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_results(path: Union[str, Path], repair: bool = False) -> ResultsFile:
    """Parse and validate a results file.

    A partial last line (a run killed mid-write) is an error naming the line, unless `repair`,
    which drops it and — when the file is writable — truncates the file to its valid lines.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot read results file: {exc.strerror}") from exc
    if not raw.strip():
        raise ResultsFileError(f"{path}: empty results file (no header line); was the run started?")
    lines = raw.split(b"\n")
    last_number = max(i for i, blob in enumerate(lines, start=1) if blob.strip())
    header, rooflines, records, dropped = None, [], [], False
    good_bytes = 0
    for number, blob in enumerate(lines, start=1):
        if not blob.strip():
            good_bytes += len(blob) + 1
            continue
        try:
            obj = json.loads(blob)
            parsed = _LINE.validate_python(obj)
        except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
            is_last = number == last_number
            if is_last and repair:
                dropped = True
                break
            detail = str(exc).splitlines()[0][:300]
            hint = " (a partial last line from an interrupted run: `--resume` repairs it)" if is_last else ""
            raise ResultsFileError(f"{path}:{number}: invalid results line{hint}: {detail}") from exc
        if number == 1:
            if not isinstance(parsed, RunHeader):
                raise ResultsFileError(f"{path}:1: first line must be the run header, found type {obj.get('type')!r}")
            if parsed.schema_version != SCHEMA_VERSION:
                raise ResultsFileError(f"{path}:1: schema_version {parsed.schema_version} is not supported "
                                       f"(this invobench reads version {SCHEMA_VERSION})")
            header = parsed
        elif isinstance(parsed, RunHeader):
            raise ResultsFileError(f"{path}:{number}: a second header line; concatenated runs must be merged with `invobench merge`")
        elif isinstance(parsed, Roofline):
            rooflines.append(parsed)
        else:
            records.append(parsed)
        good_bytes += len(blob) + 1
    if header is None:
        raise ResultsFileError(f"{path}: no valid header line")
    if dropped and os.access(path, os.W_OK):
        with open(path, "r+b") as fh:
            fh.truncate(min(good_bytes, len(raw)))
    return ResultsFile(path=str(path), header=header, rooflines=rooflines, records=records, dropped_partial_line=dropped)
