"""Build progress for people: a rich live view on a terminal, timestamped lines elsewhere.

Both are scheduler observers (called in the scheduler's thread); neither changes what is
built.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from superbuild.jobs import Event, JobFinished, JobSkipped, JobStarted

_STYLE = {"succeeded": "green", "failed": "red", "skipped": "yellow", "cancelled": "magenta"}


class _Counts:
    def __init__(self, total: int) -> None:
        self.total = total
        self.by_status = {"succeeded": 0, "failed": 0, "skipped": 0, "cancelled": 0}
        self.running: dict[str, float] = {}
        self.lock = threading.Lock()

    @property
    def done(self) -> int:
        return sum(self.by_status.values())

    def apply(self, event: Event) -> str | None:
        """Update the counts; the final status of the event's job, if it has one."""
        with self.lock:
            if isinstance(event, JobStarted):
                self.running[event.job_id] = time.monotonic()
                return None
            self.running.pop(event.job_id, None)
            status = _status_of(event)
            self.by_status[status] += 1
            return status


def _status_of(event: Event) -> str:
    if isinstance(event, JobFinished):
        return event.status
    if isinstance(event, JobSkipped):
        return "skipped"
    return "cancelled"


class PlainProgress:
    """One timestamped line per event, for CI logs."""

    def __init__(self, total: int, stream: IO[str] | None = None) -> None:
        self.counts = _Counts(total)
        self.stream = stream or sys.stderr

    def __call__(self, event: Event) -> None:
        status = self.counts.apply(event)
        stamp = time.strftime("%H:%M:%S")
        width = len(str(self.counts.total))
        where = f"[{self.counts.done:>{width}}/{self.counts.total}]"
        if status is None:
            line = f"{stamp} {where} started   {event.job_id}"
        elif isinstance(event, JobFinished):
            took = f" ({event.duration_s:.1f}s)"
            why = f": {event.reason}" if status == "failed" else ""
            line = f"{stamp} {where} {status:<9} {event.job_id}{took}{why}"
        else:
            line = f"{stamp} {where} {status:<9} {event.job_id}: {getattr(event, 'reason', '')}"
        print(line, file=self.stream, flush=True)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class LiveProgress:
    """A rich live view: running builds with elapsed time, counts and a progress bar."""

    def __init__(self, total: int, console: Console) -> None:
        self.counts = _Counts(total)
        self.console = console
        self.live = Live(
            get_renderable=self._render,
            console=console,
            refresh_per_second=4,
            transient=True,
        )

    def __call__(self, event: Event) -> None:
        status = self.counts.apply(event)
        if status is not None and status != "succeeded":
            style = _STYLE[status]
            reason = getattr(event, "reason", "")
            self.console.print(f"[{style}]{status}[/] {event.job_id}: {reason}")

    def _render(self) -> Any:
        c = self.counts
        with c.lock:
            running = sorted(c.running.items(), key=lambda kv: kv[1])
            counts = dict(c.by_status)
            done = c.done
        now = time.monotonic()
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="cyan")
        table.add_column(justify="right")
        for name, started in running[:20]:
            table.add_row(f"building {name}", f"{now - started:5.0f}s")
        if len(running) > 20:
            table.add_row(f"... and {len(running) - 20} more", "")
        summary = Text.assemble(
            (f"{done}/{c.total} done", "bold"),
            "  ",
            (f"{counts['succeeded']} succeeded", "green"),
            "  ",
            (f"{counts['failed']} failed", "red"),
            "  ",
            (f"{counts['skipped']} skipped", "yellow"),
            "  ",
            (f"{len(running)} running", "cyan"),
        )
        footer = Table.grid(padding=(0, 2))
        footer.add_row(ProgressBar(total=max(c.total, 1), completed=done, width=40), summary)
        return Group(table, footer)

    def __enter__(self) -> LiveProgress:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()


def make_progress(total: int, console: Console | None = None) -> PlainProgress | LiveProgress:
    console = console or Console(stderr=True, highlight=False)
    if console.is_terminal:
        return LiveProgress(total, console)
    return PlainProgress(total, sys.stderr)


def summary_table(report: dict[str, Any], limit: int = 50) -> Table:
    """The final table: one row per package; past ``limit`` packages, only the unsuccessful."""
    packages = report["packages"]
    shown = packages
    caption = None
    if len(packages) > limit:
        shown = [p for p in packages if p["status"] != "succeeded"]
        ok = len(packages) - len(shown)
        caption = f"{ok} of {len(packages)} package(s) succeeded (see the JSON report for all)"
    table = Table(
        title=f"build {report['result']}",
        title_justify="left",
        caption=caption,
        caption_justify="left",
        box=None,
    )
    for col in ("package", "status", "time", "artifacts / reason"):
        table.add_column(col, justify="right" if col == "time" else "left")
    for p in shown:
        style = _STYLE.get(p["status"], "")
        detail = p["reason"] or f"{len(p['artifacts'])} file(s)"
        table.add_row(p["package"], f"[{style}]{p['status']}[/]", f"{p['duration_s']:.1f}s", detail)
    return table
