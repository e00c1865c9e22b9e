"""Reading, writing and locking results files (schema v1, `invobench.results.schema`).

Nothing a run has written is ever lost:
- `append_line` writes a whole line or nothing: a short write (a full disk) is retried, and what
  cannot be written is rolled back to the end of the last complete line before the error is raised,
  so the file stays valid and resumable.
- `lock_results` holds an exclusive lock on a results file for as long as one writer (a run, a
  resume, an A/B run, a merge) uses it; a second writer is refused at once with the holder's PID.
  The lock is `flock` on a `<file>.lock` beside it, which the kernel releases when the holder dies,
  so a lock left by a killed run is taken over without anyone deleting it by hand.
- `read_results(repair=True)` drops only a partial last line (one without its final newline, as a
  kill mid-write leaves); a complete line that does not validate is refused with its line number.
- Version 1 readers ignore fields they don't know (and keep them when they rewrite a file); a file
  of a newer major version is refused by name.
"""
from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any, Optional, Union

from pydantic import BaseModel, ValidationError

from invobench.results.schema import SCHEMA_VERSION, Record, Roofline, RunHeader

try:  # POSIX; elsewhere results files are not locked (a second writer is not detected)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LINE_TYPES = {"header": RunHeader, "roofline": Roofline, "record": Record}


class ResultsFileError(ValueError):
    """A results file that cannot be read; the message names the file and line."""


class ResultsWriteError(OSError):
    """A line that could not be written (a full disk, a vanished directory); the file keeps every complete line."""


class ResultsLockedError(RuntimeError):
    """Another process is writing the results file; the message names it."""


class ResultsFile(BaseModel):
    path: str
    header: RunHeader
    rooflines: list[Roofline]
    records: list[Record]
    dropped_partial_line: bool = False

    def duplicate_case_ids(self) -> dict[str, int]:
        """case id -> how many records carry it, for the ids that appear more than once."""
        counts: dict[str, int] = {}
        for record in self.records:
            counts[record.case_id] = counts.get(record.case_id, 0) + 1
        return {cid: n for cid, n in counts.items() if n > 1}

    def duplicate_warning(self) -> Optional[str]:
        """What to tell a reader of a file in which some case ids repeat (None when none does)."""
        dupes = self.duplicate_case_ids()
        if not dupes:
            return None
        extra = sum(n - 1 for n in dupes.values())
        example = next(r for r in self.records if r.case_id in dupes)
        return (f"{self.path}: {len(dupes)} case id(s) appear more than once ({extra} extra records, e.g. "
                f"{example.family}.{example.variant} {example.pass_} {example.label}): two runs wrote into one "
                f"file, or shards were concatenated instead of merged; each is counted as often as it appears")


# ---- writing ------------------------------------------------------------------------------------

def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written == 0:  # no progress without an error: treat as a full disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def append_line(path: Path, line: BaseModel) -> None:
    """Append one JSON line, whole or not at all: written (short writes retried) and fsynced, or rolled back.

    On any error the file is truncated back to its size before the call, so it ends with the last
    complete line; a ResultsWriteError says so ("disk full at <path>" for ENOSPC/EDQUOT).
    """
    data = (line.model_dump_json(by_alias=True) + "\n").encode()
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ResultsWriteError(exc.errno, f"cannot open {path} for appending: {exc.strerror}") from exc
    try:
        start = os.fstat(fd).st_size
        try:
            _write_all(fd, data)
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, start)
                rolled_back = True
            except OSError:
                rolled_back = False
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            what = f"disk full at {path}" if full else f"cannot write {path}: {exc.strerror or exc}"
            state = ("the partial line was rolled back; every line before it is intact" if rolled_back else
                     "the partial line could not be rolled back: `--resume` drops it")
            raise ResultsWriteError(exc.errno, f"{what} ({state})") from exc
    finally:
        os.close(fd)


# ---- locking ------------------------------------------------------------------------------------

def lock_path(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".lock")


class ResultsLock:
    """An exclusive lock on one results file (`lock_results`); `release()` (or leaving the `with`) frees it."""

    def __init__(self, path: Path, fd: Optional[int], took_over: Optional[dict]):
        self.path, self.fd, self.took_over = Path(path), fd, took_over

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(lock_path(self.path))  # while still holding it: a waiter re-checks the inode
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "ResultsLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _holder(text: str) -> dict:
    try:
        info = json.loads(text)
        return info if isinstance(info, dict) else {}
    except ValueError:
        return {}


def _describe_holder(info: dict) -> str:
    if not info:
        return "another process"
    where = f" on {info['host']}" if info.get("host") and info.get("host") != platform.node() else ""
    since = f" since {info['since']}" if info.get("since") else ""
    command = f" ({info['command']})" if info.get("command") else ""
    return f"PID {info.get('pid', '?')}{where}{since}{command}"


def lock_results(path: Union[str, Path], command: Optional[str] = None) -> ResultsLock:
    """Take the exclusive lock of results file `path`, or raise ResultsLockedError naming its holder.

    A lock file left by a process that died is not held by anyone (the kernel dropped its flock):
    it is taken over, and `ResultsLock.took_over` holds what the dead holder had written in it.
    """
    path = Path(path)
    if fcntl is None:  # pragma: no cover
        return ResultsLock(path, None, None)
    target = lock_path(path)
    while True:
        try:
            fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ResultsWriteError(exc.errno, f"cannot create the lock file {target}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _holder(os.pread(fd, 4096, 0).decode(errors="replace"))
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ResultsLockedError(
                    f"{path} is being written by {_describe_holder(holder)}: two writers would interleave their "
                    f"lines; wait for it to finish, or give another --out") from None
            raise ResultsWriteError(exc.errno, f"cannot lock {target}: {exc.strerror}") from exc
        try:  # the holder before us may have unlinked the file we opened: lock the one at the path
            same = os.fstat(fd).st_ino == os.stat(target).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        previous = _holder(os.pread(fd, 4096, 0).decode(errors="replace")) or None
        info = {"pid": os.getpid(), "host": platform.node(),
                "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "command": command or " ".join(["invobench", *sys.argv[1:]])[:300]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        return ResultsLock(path, fd, previous)


# ---- reading ------------------------------------------------------------------------------------

def _describe_validation(kind: str, exc: ValidationError) -> str:
    """'record: missing case_id, status; samples_ms.3: must be a finite number > 0' (at most 5 problems)."""
    missing = [".".join(map(str, e["loc"])) for e in exc.errors() if e["type"] == "missing"]
    other = [f"{'.'.join(map(str, e['loc'])) or kind}: {e['msg']}" for e in exc.errors() if e["type"] != "missing"]
    parts = ([f"missing {', '.join(missing)}"] if missing else []) + other
    shown = "; ".join(parts[:5]) + (f"; … {len(parts) - 5} more" if len(parts) > 5 else "")
    return f"not a valid {kind} line: {shown}"


def parse_line(obj: Any) -> Union[RunHeader, Roofline, Record]:
    """One decoded JSON line as a results line; ValueError saying what it lacks."""
    if not isinstance(obj, dict):
        raise ValueError(f"not a results line: a JSON {type(obj).__name__}, not an object with a \"type\"")
    kind = obj.get("type")
    if kind not in LINE_TYPES:
        found = "no \"type\" field" if "type" not in obj else f"\"type\": {kind!r}"
        raise ValueError(f"not a results line: {found} (a results line is a header, roofline or record)")
    try:
        return LINE_TYPES[kind].model_validate(obj)
    except ValidationError as exc:
        raise ValueError(_describe_validation(kind, exc)) from None


def _json_constant(name: str) -> float:
    return float(name)  # NaN, Infinity: parsed, then refused by the schema with the field's name


def read_results(path: Union[str, Path], repair: bool = False) -> ResultsFile:
    """Parse and validate a results file.

    A partial last line — one without its final newline, as a run killed mid-write leaves — is an
    error naming the line, unless `repair`, which drops it and, when the file is writable, truncates
    the file to its complete lines. Any other invalid line is an error naming it, `repair` or not.
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise ResultsFileError(f"{path}: is a directory, not a results file")
        raw = path.read_bytes()
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot read results file: {exc.strerror}") from exc
    if not raw.strip():
        raise ResultsFileError(f"{path}: empty results file (no header line); was the run started?")
    lines = raw.split(b"\n")
    # only the text after the last newline can be a partial line (empty when the file ends with one)
    partial = lines[-1] if lines[-1].strip() else None
    complete = lines[:-1]
    header, rooflines, records, dropped = None, [], [], False
    for number, blob in enumerate(complete + ([partial] if partial is not None else []), start=1):
        if not blob.strip():
            continue
        is_partial = partial is not None and number == len(complete) + 1
        try:
            try:
                obj = json.loads(blob, parse_constant=_json_constant)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc.msg}, column {exc.colno})") from None
            if number == 1 or header is None:
                _check_version(path, number, obj)
            parsed = parse_line(obj)
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
            if is_partial and repair:
                dropped = True
                break
            if is_partial:
                raise ResultsFileError(f"{path}:{number}: a partial last line (no final newline), as an interrupted "
                                       f"run leaves: `invobench run --resume` drops it ({exc})") from exc
            if isinstance(exc, ResultsFileError):
                raise
            raise ResultsFileError(f"{path}:{number}: {exc}") from exc
        if header is None:
            if not isinstance(parsed, RunHeader):
                raise ResultsFileError(f"{path}:{number}: the first line must be the run header, found a {obj.get('type')} line")
            header = parsed
        elif isinstance(parsed, RunHeader):
            raise ResultsFileError(f"{path}:{number}: a second header line; concatenated runs must be merged with `invobench merge`")
        elif isinstance(parsed, Roofline):
            rooflines.append(parsed)
        else:
            records.append(parsed)
    if header is None:
        raise ResultsFileError(f"{path}: no header line")
    if dropped and os.access(path, os.W_OK):
        with open(path, "r+b") as fh:
            fh.truncate(len(raw) - len(partial))
    return ResultsFile(path=str(path), header=header, rooflines=rooflines, records=records, dropped_partial_line=dropped)


def _check_version(path: Path, number: int, obj: Any) -> None:
    """A header of another major version is refused by name, before its fields are validated."""
    if not isinstance(obj, dict) or obj.get("type") != "header":
        return
    version = obj.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ResultsFileError(f"{path}:{number}: schema_version {version!r} is not a whole number")
    if version > SCHEMA_VERSION:
        raise ResultsFileError(f"{path}:{number}: schema {version} is newer than this invobench ({SCHEMA_VERSION}); "
                               f"upgrade invobench to read it")
    if version < 1:
        raise ResultsFileError(f"{path}:{number}: schema_version {version} is not a version invobench ever wrote")
