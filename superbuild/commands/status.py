"""One row per package (and per unmanaged submodule): recorded commit, checkout state,
unpushed commits, last build, and whether it needs a rebuild and why.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from superbuild.commands import print_json, superproject
from superbuild.git import short_oid as _short
from superbuild.status import SubmoduleStatus, collect, summary, to_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


COLUMNS = ("package", "path", "recorded", "checkout", "unpushed", "last build", "rebuild")


def cells(row: SubmoduleStatus) -> tuple[str, ...]:
    """The plain-text cells of one row (see :data:`COLUMNS`)."""
    if not row.initialized:
        checkout = "not initialized"
    else:
        marks = [m for m, on in (("differs", row.checkout_differs), ("dirty", row.dirty)) if on]
        checkout = _short(row.checkout_commit) + (f" ({', '.join(marks)})" if marks else "")
    last = row.last_build
    built = f"{last.status} {_short(last.commit)} {last.finished_at or ''}".strip() if last else "-"
    if row.needs_rebuild is None:
        rebuild = "-"
    else:
        rebuild = f"yes: {row.reason}" if row.needs_rebuild else "no"
    return (
        row.package or "(unmanaged)",
        row.path,
        _short(row.recorded_commit),
        checkout,
        "-" if row.unpushed is None else str(row.unpushed),
        built,
        rebuild,
    )


def plain_table(rows: Sequence[SubmoduleStatus]) -> str:
    """Aligned columns for pipes and logs."""
    table = [COLUMNS, *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    return "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() + "\n"
        for line in table
    )


def _summary_line(rows: Sequence[SubmoduleStatus]) -> str:
    n = summary(rows)
    return (
        f"{n['submodules']} submodule(s), {n['initialized']} initialized, {n['dirty']} dirty, "
        f"{n['differ']} checked out at another commit, {n['unpushed']} with unpushed commits, "
        f"{n['rebuild']} package(s) to rebuild"
    )


def age(iso_time: str | None, now: float | None = None) -> str:
    """``5s ago``, ``3m ago``, ``2h ago``, ``4d ago`` (``running`` without a time)."""
    if not iso_time:
        return "running"
    from datetime import datetime

    seconds = max(0, int((now or time.time()) - datetime.fromisoformat(iso_time).timestamp()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def rich_table(rows: Sequence[SubmoduleStatus]) -> None:
    """A coloured table on the terminal, made to fit 80 columns: a checkout at the recorded
    commit says ``same``, the last build gives its commit only when it is not the recorded
    one and its time as an age; only checkouts and reasons wrap, paths never."""
    from rich.markup import escape
    from rich.table import Table

    from superbuild.ui import console, print_table

    table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0))
    for column in COLUMNS:
        table.add_column(
            column,
            justify="right" if column == "unpushed" else "left",
            no_wrap=column not in ("checkout", "rebuild"),
        )
    for row in rows:
        package, path, recorded, checkout, unpushed, built, rebuild = (
            escape(cell) for cell in cells(row)
        )
        if not row.initialized:
            checkout = f"[dim]{checkout}[/]"
        elif row.checkout_differs or row.dirty:
            checkout = f"[yellow]{checkout}[/]"
        else:
            checkout = "[dim]same[/]"
        if row.unpushed:
            unpushed = f"[magenta]{unpushed}[/]"
        if row.last_build is not None:
            last = row.last_build
            style = {"succeeded": "green", "failed": "red", "running": "cyan"}.get(
                last.status, "yellow"
            )
            commit = "" if last.commit == row.recorded_commit else f" {_short(last.commit)}"
            built = f"[{style}]{last.status}[/]{commit} {age(last.finished_at)}"
        if row.needs_rebuild:
            rebuild = f"[yellow]{rebuild}[/]"
        if row.package is None:
            package = f"[dim]{package}[/]"
        table.add_row(package, path, recorded, checkout, unpushed, built, rebuild)
    out = console()
    print_table(out, table)
    out.print(_summary_line(rows), soft_wrap=False)


def _on_terminal() -> bool:
    if not sys.stdout.isatty():
        return False
    from superbuild.ui import under_ci  # rich only for a terminal

    return not under_ci()


def run(args: argparse.Namespace) -> int:
    rows = collect(superproject(args))
    if args.json:
        print_json(to_json(rows))
    elif _on_terminal():
        rich_table(rows)
    else:
        sys.stdout.write(plain_table(rows) + _summary_line(rows) + "\n")
    return 0
