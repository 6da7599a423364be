"""Human-readable output (rich). Imported only for text formats."""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.table import Table

from superbuild.changes import ChangeSet
from superbuild.git import short_oid as _short
from superbuild.manifest import Product
from superbuild.planning import Plan

_STATUS_STYLE = {
    "added": "green",
    "deleted": "red",
    "modified": "yellow",
    "moved": "cyan",
    "typechange": "magenta",
}


def console(stderr: bool = False) -> Console:
    """A console; when not a terminal, wide enough that values are never cut."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else int(os.environ.get("COLUMNS") or 0) or 250
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def _waves(out: Console, waves: list[list[str]], empty: str) -> None:
    if not waves:
        out.print(empty)
        return
    for i, wave in enumerate(waves, 1):
        out.print(f"  [bold]wave {i}[/]: {', '.join(wave)}")


def show_changes(cs: ChangeSet) -> None:
    out = console()
    out.print(f"[bold]changes[/] {_short(cs.base) if cs.base else '(root)'}..{_short(cs.head)}")
    if cs.changes:
        table = Table(box=None, pad_edge=False)
        for col in ("status", "path", "package", "commit"):
            table.add_column(col)
        for c in cs.changes:
            style = _STATUS_STYLE.get(c.status, "")
            path = f"{c.old_path} -> {c.path}" if c.old_path else c.path
            table.add_row(
                f"[{style}]{c.status}[/]",
                path,
                c.package or "[dim](unmanaged)[/]",
                f"{_short(c.old_commit)} -> {_short(c.new_commit)}",
            )
        out.print(table)
    else:
        out.print("  no submodule changes")
    if cs.manifest_changes:
        out.print(f"[bold]manifests changed[/]: {', '.join(cs.manifest_changes)}")
    if cs.unmanaged:
        out.print(f"[yellow]unmanaged submodules[/] (no manifest): {', '.join(cs.unmanaged)}")
    out.print(f"[bold]build order[/] ({len(cs.affected)} affected)")
    _waves(out, cs.waves, "  nothing to build")


def show_rebuilds(plan: Plan) -> None:
    """``changed --since-last-success``: what needs a rebuild, and why."""
    out = console()
    out.print(f"[bold]since last success[/] at {_short(plan.product.commit)}")
    for name, reason in plan.reasons.items():
        out.print(f"  {name}: {reason}")
    if not plan.reasons:
        out.print("  every package is built at its current build key")
    out.print(f"[bold]build order[/] ({len(plan.packages)} affected)")
    _waves(out, plan.waves, "  nothing to build")


def show_graph(product: Product) -> None:
    out = console()
    graph = product.graph
    table = Table(box=None, pad_edge=False)
    for col in ("wave", "package", "path", "requires"):
        table.add_column(col)
    for i, wave in enumerate(graph.waves(), 1):
        for name in wave:
            table.add_row(
                str(i), name, product.packages[name].path, ", ".join(graph.requires[name]) or "-"
            )
    out.print(table)


def show_plan(plan: Plan) -> None:
    out = console()
    cs = plan.changeset
    if plan.origin == "affected" and cs is not None:
        what = f"affected by {_short(cs.base) if cs.base else '(root)'}..{_short(cs.head)}"
    else:
        what = f"selected at {_short(plan.product.commit)}"
    out.print(f"[bold]plan[/]: {len(plan.packages)} package(s) {what}")
    _waves(out, plan.waves, "  nothing to build")
    if plan.skipped:
        out.print(f"  [dim]skipped (--packages-skip)[/]: {', '.join(plan.skipped)}")
