"""Build progress for people: a rich live view on a terminal, timestamped lines elsewhere.

Both are scheduler observers (called in the scheduler's thread); neither changes what is
built.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from superbuild.jobs import Event, JobFinished, JobRunning, JobSkipped, JobStarted
from superbuild.ui import console as ui_console
from superbuild.ui import is_live

_STYLE = {"succeeded": "green", "failed": "red", "skipped": "yellow", "cancelled": "magenta"}


class _Counts:
    def __init__(self, total: int) -> None:
        self.total = total
        self.by_status = {"succeeded": 0, "failed": 0, "skipped": 0, "cancelled": 0}
        self.running: dict[str, float] = {}
        #: Handed to an executor that queues jobs, not yet begun by a worker.
        self.queued: set[str] = set()
        self.lock = threading.Lock()

    @property
    def done(self) -> int:
        return sum(self.by_status.values())

    def apply(self, event: Event, *, queues: bool = False) -> str | None:
        """Update the counts; the final status of the event's job, if it has one.

        ``queues``: the executor queues jobs (Dask), a job is running from its
        :class:`JobRunning` on, queued before."""
        with self.lock:
            if isinstance(event, JobStarted):
                self.running[event.job_id] = time.monotonic()
                if queues:
                    self.queued.add(event.job_id)
                return None
            if isinstance(event, JobRunning):
                if event.job_id in self.queued:
                    self.queued.discard(event.job_id)
                    self.running[event.job_id] = time.monotonic()
                return None
            self.running.pop(event.job_id, None)
            self.queued.discard(event.job_id)
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
    """One timestamped line per event, for CI logs.

    ``queues``: the executor queues jobs (Dask): a job is ``queued`` when handed over and
    ``started`` when a worker begins it; otherwise ``started`` when handed over.
    """

    def __init__(self, total: int, stream: IO[str] | None = None, *, queues: bool = False) -> None:
        self.counts = _Counts(total)
        self.stream = stream or sys.stderr
        self.queues = queues

    def __call__(self, event: Event) -> None:
        if isinstance(event, JobRunning) and not self.queues:
            return
        status = self.counts.apply(event, queues=self.queues)
        stamp = time.strftime("%H:%M:%S")
        width = len(str(self.counts.total))
        where = f"[{self.counts.done:>{width}}/{self.counts.total}]"
        if status is None:
            what = "queued" if isinstance(event, JobStarted) and self.queues else "started"
            line = f"{stamp} {where} {what:<9} {event.job_id}"
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

    def __init__(self, total: int, console: Console, *, queues: bool = False) -> None:
        self.counts = _Counts(total)
        self.console = console
        self.queues = queues
        self.live = Live(
            renderable=self,
            console=console,
            refresh_per_second=4,
            transient=True,
        )

    def __call__(self, event: Event) -> None:
        status = self.counts.apply(event, queues=self.queues)
        if status is not None and status != "succeeded":
            style = _STYLE[status]
            reason = getattr(event, "reason", "")
            # soft_wrap: a log path in the reason is never folded (copy and paste)
            self.console.print(
                f"[{style}]{status}[/] {escape(event.job_id)}: {escape(reason)}",
                soft_wrap=True,
                highlight=False,
            )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """The view: one line per running build, then the counts and a bar, in the width."""
        c = self.counts
        with c.lock:
            running = sorted(c.running.items(), key=lambda kv: kv[1])
            queued = set(c.queued)
            counts = dict(c.by_status)
            done = c.done
        now = time.monotonic()
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="cyan", no_wrap=True, overflow="ellipsis")
        table.add_column(justify="right", no_wrap=True)
        for name, started in running[:20]:
            doing = "queued" if name in queued else "building"
            table.add_row(f"{doing} {escape(name)}", f"{now - started:5.0f}s")
        if len(running) > 20:
            table.add_row(f"... and {len(running) - 20} more", "")
        yield table
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
            no_wrap=True,
            overflow="ellipsis",
        )
        # The bar takes what the counts leave of the line (at most 40 columns); on a
        # narrow terminal it goes on a line of its own.
        room = options.max_width - summary.cell_len - 2
        bar_width = min(40, room if room >= 10 else options.max_width)
        bar = ProgressBar(total=max(c.total, 1), completed=done, width=bar_width)
        if room >= 10:
            footer = Table.grid(padding=(0, 2))
            footer.add_row(bar, summary)
            yield footer
        else:
            yield summary
            yield bar

    def __enter__(self) -> LiveProgress:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()


def make_progress(
    total: int, console: Console | None = None, *, queues: bool = False
) -> PlainProgress | LiveProgress:
    """The live view on a terminal; plain lines elsewhere, and under CI (``CI=true``).
    ``queues``: the executor queues jobs (Dask): "queued" and "started" are told apart."""
    console = console or ui_console(stderr=True)
    if is_live(console):
        return LiveProgress(total, console, queues=queues)
    return PlainProgress(total, sys.stderr, queues=queues)


def summary_table(report: dict[str, Any], limit: int = 50) -> Table:
    """The final table: one row per build (``pkg@target`` with targets); past ``limit``
    rows, only the unsuccessful."""
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
        name = p["package"] if p.get("target") is None else f"{p['package']}@{p['target']}"
        table.add_row(
            escape(name), f"[{style}]{p['status']}[/]", f"{p['duration_s']:.1f}s", escape(detail)
        )
    return table
