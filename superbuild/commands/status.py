"""``superbuild status``: one row per package: recorded commit, checkout, last build."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from superbuild.commands import print_json, superproject
from superbuild.git import short_oid as _short
from superbuild.status import SubmoduleStatus, collect, summary, to_json

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


def rich_table(rows: Sequence[SubmoduleStatus]) -> None:
    """A coloured table on the terminal."""
    from rich.table import Table

    from superbuild.ui import console

    table = Table(box=None, pad_edge=False)
    for column in COLUMNS:
        table.add_column(column, justify="right" if column == "unpushed" else "left")
    for row in rows:
        package, path, recorded, checkout, unpushed, built, rebuild = cells(row)
        if not row.initialized:
            checkout = f"[dim]{checkout}[/]"
        elif row.checkout_differs or row.dirty:
            checkout = f"[yellow]{checkout}[/]"
        if row.unpushed:
            unpushed = f"[magenta]{unpushed}[/]"
        if row.last_build is not None:
            style = {"succeeded": "green", "failed": "red", "running": "cyan"}.get(
                row.last_build.status, "yellow"
            )
            built = f"[{style}]{built}[/]"
        if row.needs_rebuild:
            rebuild = f"[yellow]{rebuild}[/]"
        if row.package is None:
            package = f"[dim]{package}[/]"
        table.add_row(package, path, recorded, checkout, unpushed, built, rebuild)
    out = console()
    out.print(table)
    out.print(_summary_line(rows))


def run(args: argparse.Namespace) -> int:
    rows = collect(superproject(args))
    if args.json:
        print_json(to_json(rows))
    elif sys.stdout.isatty():
        rich_table(rows)
    else:
        sys.stdout.write(plain_table(rows) + _summary_line(rows) + "\n")
    return 0
