"""The live display of `invobench run` and `invobench ab`: the runner's events on stderr (rich).

One line per finished record (status, variant, pass, case, median ± IQR/median, GB/s, % of roofline),
the roofline of each (device, dtype) when it is measured, and a progress bar with an ETA.
"""
from __future__ import annotations

from typing import Optional

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from invobench.bench.records import summary_line
from invobench.bench.runner import RecordWritten, RooflineMeasured, RunEvent, RunStarted, StatusChanged
from invobench.results import Roofline

STATUS_STYLES = {"ok": "green", "skipped": "dim", "error": "red", "crashed": "bold red", "oom": "bold red",
                 "timeout": "bold red"}


def roofline_line(line: Roofline) -> str:
    if line.error:
        return f"roofline {line.device} {line.dtype}: not measured ({line.error})"
    return (f"roofline {line.device} {line.dtype}: copy {line.copy_bandwidth_gbps:.1f} GB/s, "
            f"matmul peak {line.matmul_peak_flops / 1e9:.1f} GFLOP/s (n={line.matmul_n}, {line.threads} threads)")


class RunProgress:
    """Shows a run's events on a console; call `close()` when the run ends (also on errors)."""

    def __init__(self, console: Console):
        self.console = console
        self.progress: Optional[Progress] = None
        self.task = None

    def __call__(self, event: RunEvent) -> None:
        if isinstance(event, RunStarted):
            self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                     console=self.console, transient=True)
            self.progress.start()
            self.task = self.progress.add_task("starting", total=max(event.total, 1))
            if event.already_done:
                self.console.print(f"resuming: {event.already_done} records already in the file")
        elif isinstance(event, StatusChanged):
            if self.progress is not None:
                self.progress.update(self.task, description=event.text[:60])
        elif isinstance(event, RooflineMeasured):
            self.console.print(roofline_line(event.line), style="red" if event.line.error else None, highlight=False)
        elif isinstance(event, RecordWritten):
            self.console.print(summary_line(event.record), style=STATUS_STYLES.get(event.record.status, ""),
                               highlight=False, markup=False, soft_wrap=True)
            if self.progress is not None:
                self.progress.advance(self.task)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
