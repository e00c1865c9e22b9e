"""The worker-process protocol, seen from the runner: start a worker, send requests, read replies, and tell
how it died when it does.

    python -m invobench.bench.worker --result-fd N --board PATH [--threads T]

Requests go to the worker's stdin, one JSON object a line: {"kind": "roofline", ...}, {"kind": "group", ...},
{"kind": "exit"}. Replies come on a private pipe (`--result-fd`), one JSON object a line: "hello" once,
then "roofline", "result" (one per variant) and "group_done". The worker's stdout and stderr go to a
log whose tail becomes a crashed record's `stderr_tail`. Before each step the worker writes
"<variant>\\t<phase>" to the status board (a small shared file), so when the process dies the runner
knows which variant was running. A worker that makes no progress for the stall timeout, or whose
resident memory passes the budget, is killed.
"""
from __future__ import annotations

import json
import mmap
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from invobench.bench.budget import fmt_bytes, rss_bytes
from invobench.env import CPU_HEAP_TUNABLES, worker_environment

BOARD_BYTES = 512
#: a worker killed by SIGKILL that we did not send counts as `oom` when its last RSS was above this share of the budget
OOM_KILL_RSS_SHARE = 0.5


class WorkerStartError(RuntimeError):
    """The worker process did not start; the message holds its output."""


class StatusBoard:
    """A tiny shared file: the worker writes what it is doing, the runner reads it after a crash."""

    def __init__(self, path: str):
        self._fh = open(path, "r+b")
        self._map = mmap.mmap(self._fh.fileno(), BOARD_BYTES)

    def set(self, text: str) -> None:
        data = text.encode()[: BOARD_BYTES - 1]
        self._map[: len(data) + 1] = data + b"\0"

    @staticmethod
    def create(path: str) -> None:
        with open(path, "wb") as fh:
            fh.write(b"\0" * BOARD_BYTES)

    @staticmethod
    def read(path: str) -> str:
        try:
            raw = Path(path).read_bytes()
        except OSError:
            return ""
        return raw.split(b"\0", 1)[0].decode(errors="replace")



@dataclass
class WorkerDeath:
    """The worker stopped without answering: how, and what its status board said it was doing."""

    status: str            # crashed | oom | timeout
    reason: str
    board: str
    stderr_tail: str


class WorkerProcess:
    """A `python -m invobench.bench.worker` child: requests on its stdin, replies on a private pipe."""

    def __init__(self, tmpdir: Path, threads: Optional[int] = None, rss_limit: Optional[int] = None):
        self.tmpdir, self.threads, self.rss_limit = tmpdir, threads, rss_limit
        self.proc: Optional[subprocess.Popen] = None
        self.count = 0
        self.hello: dict = {}
        self.env: dict[str, str] = {}  # the worker's environment (env.worker_environment), set by start()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout_s: float = 300) -> None:
        self.count += 1
        self.board_path = str(self.tmpdir / f"board-{self.count}")
        StatusBoard.create(self.board_path)
        self.log_path = self.tmpdir / f"worker-{self.count}.log"
        self.log_file = open(self.log_path, "wb")
        read_fd, write_fd = os.pipe()
        cmd = [sys.executable, "-m", "invobench.bench.worker", "--result-fd", str(write_fd), "--board", self.board_path]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        # A session of its own: Ctrl-C reaches the runner only, and a kill takes the worker's children too.
        self.env = worker_environment()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     pass_fds=(write_fd,), start_new_session=True, env=self.env)
        os.close(write_fd)
        self.read_fd, self.buffer, self.last_rss = read_fd, b"", 0
        reply = self.receive(timeout_s)
        if isinstance(reply, WorkerDeath) or reply.get("kind") != "hello":
            tail = reply.stderr_tail if isinstance(reply, WorkerDeath) else str(reply)
            raise WorkerStartError(f"the benchmark worker failed to start:\n{tail}")
        self.hello = reply

    def log_offset(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_tail(self, since: int = 0, chars: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(since)
                data = fh.read()
        except OSError:
            return ""
        text = data.decode(errors="replace")
        # the profiler's USDT chatter is noise in a crash report
        text = "\n".join(line for line in text.splitlines() if "USDT:" not in line)
        return text[-chars:]

    def send(self, obj: dict) -> bool:
        try:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode())
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def receive(self, stall_timeout_s: float, log_since: int = 0) -> "dict | WorkerDeath":
        """The next reply, or how the worker died. Times out after `stall_timeout_s` without progress
        (no reply and no change on the status board)."""
        last_board, last_progress = None, time.monotonic()
        while True:
            if b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                return json.loads(line)
            ready, _, _ = select.select([self.read_fd], [], [], 0.1)
            if ready:
                chunk = os.read(self.read_fd, 1 << 16)
                if chunk:
                    self.buffer += chunk
                    continue
            if self.proc.poll() is not None:
                if ready or not self._drain():
                    return self._death(None, log_since)
                continue
            board = StatusBoard.read(self.board_path)
            if board != last_board:
                last_board, last_progress = board, time.monotonic()
            rss = rss_bytes(self.proc.pid)
            if rss is not None:
                self.last_rss = rss
                if self.rss_limit and rss > self.rss_limit:
                    self.kill()
                    return self._death("oom", log_since, f"the worker's resident memory ({fmt_bytes(rss)}) exceeded the "
                                                         f"memory budget ({fmt_bytes(self.rss_limit)}); it was killed"
                                                         + self._heap_hint())
            if time.monotonic() - last_progress > stall_timeout_s:
                self.kill()
                return self._death("timeout", log_since, f"no progress for {stall_timeout_s:g} s (the suite's "
                                                         "budget.timeout_s); the worker was killed")

    def _heap_hint(self) -> str:
        """What to try when the workers' heap setting holds the memory (env.CPU_HEAP_TUNABLES), else ''."""
        if self.env.get("GLIBC_TUNABLES") != CPU_HEAP_TUNABLES:
            return ""
        return (" (a case's variants keep their freed large blocks on the heap until the case ends, which "
                "can hold more than the largest of them needs: GLIBC_TUNABLES= returns them at once, at the "
                "cost of zero-filled pages in every call; or raise --mem-budget)")

    def _drain(self) -> bool:
        """Read whatever the exited worker left in the pipe; True if there was something."""
        ready, _, _ = select.select([self.read_fd], [], [], 0)
        if not ready:
            return False
        chunk = os.read(self.read_fd, 1 << 16)
        self.buffer += chunk
        return bool(chunk)

    def _death(self, status: Optional[str], log_since: int, reason: Optional[str] = None) -> WorkerDeath:
        code = self.proc.wait()
        board = StatusBoard.read(self.board_path)
        if status is None:
            if code < 0:
                sig = signal.Signals(-code)
                if sig == signal.SIGKILL and self.rss_limit and self.last_rss > OOM_KILL_RSS_SHARE * self.rss_limit:
                    status = "oom"
                    reason = (f"the worker was killed by SIGKILL (the kernel's OOM killer's signal) with "
                              f"{fmt_bytes(self.last_rss)} resident")
                else:
                    status = "crashed"
                    reason = f"the worker died with {sig.name} (signal {-code})"
            else:
                status, reason = "crashed", f"the worker exited with code {code} in the middle of a case"
        self.close()
        return WorkerDeath(status, reason or status, board, self.log_tail(log_since))

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()

    def close(self) -> None:
        if getattr(self, "read_fd", None) is not None:
            try:
                os.close(self.read_fd)
            except OSError:
                pass
            self.read_fd = None
        if getattr(self, "log_file", None) is not None:
            self.log_file.close()
            self.log_file = None
        if self.proc is not None and self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:  # a dead worker's pipe
                pass

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.alive:
            self.send({"kind": "exit"})
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc.wait()
        self.close()
        self.proc = None
