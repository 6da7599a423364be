"""Human-readable output (rich): the consoles, and the text formats of changed, graph, plan.

On a terminal, output is coloured and fits its width, but a path is never cut or folded
(a line too long is left for the terminal to wrap, so copy and paste still works).  When
not on a terminal, or under CI (``CI=true``), output is plain: no colour, no padding, no
wrapping, one record per line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.segment import Segments
from rich.table import Table

from superbuild.git import short_oid as _short
from superbuild.text import safe_text

if TYPE_CHECKING:
    from superbuild.changes import ChangeSet
    from superbuild.manifest import Product
    from superbuild.planning import Plan

_STATUS_STYLE = {
    "added": "green",
    "deleted": "red",
    "modified": "yellow",
    "moved": "cyan",
    "typechange": "magenta",
}

#: Wide enough that rich never wraps plain output; lines are stripped of padding.
_UNBOUNDED = 100_000


class PlainConsole(Console):
    """A console for pipes and CI logs: no colour, no trailing padding, never wraps."""

    def __init__(self, *, stderr: bool = False, file: IO[str] | None = None) -> None:
        super().__init__(
            stderr=stderr,
            file=file,
            width=_UNBOUNDED,
            highlight=False,
            soft_wrap=True,
            force_terminal=False,
            no_color=True,
        )

    def print(self, *objects: Any, **kwargs: Any) -> None:
        with self.capture() as captured:
            super().print(*objects, **kwargs)
        text = safe_text(captured.get())
        self.file.write("\n".join(line.rstrip() for line in text.split("\n")))
        self.file.flush()


class TerminalConsole(Console):
    """A console for a terminal: colour, but text from a commit (names, paths, reasons)
    cannot emit its own escape sequences (rich passes ESC and C1 through as they are)."""

    def render_str(self, text: str, **kwargs: Any) -> Any:
        return super().render_str(safe_text(text), **kwargs)


def under_ci(environ: Mapping[str, str] | None = None) -> bool:
    """``CI`` set to anything but ``false``/``0``: plain output even on a terminal."""
    value = (os.environ if environ is None else environ).get("CI", "")
    return value.lower() not in ("", "0", "false", "no")


def console(stderr: bool = False) -> Console:
    """A rich console on a terminal; a :class:`PlainConsole` elsewhere (and under CI)."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty() and not under_ci():
        return TerminalConsole(stderr=stderr, highlight=False, soft_wrap=True)
    return PlainConsole(stderr=stderr)


def is_live(out: Console) -> bool:
    """Whether ``out`` may redraw in place (a live view): a terminal, not under CI."""
    return out.is_terminal and not isinstance(out, PlainConsole) and not under_ci()


def print_table(out: Console, table: Table) -> None:
    """Print ``table`` fitting the console, unless a word of a cell (a path) does not fit:
    then as wide as the table needs, and the terminal wraps the long lines."""
    needed = Measurement.get(out, out.options.update(max_width=_UNBOUNDED), table)
    if isinstance(out, PlainConsole) or needed.minimum <= out.width:
        out.print(table)
        return
    out.print(Segments(out.render(table, out.options.update(width=needed.maximum))))


def _waves(out: Console, waves: list[list[str]], empty: str) -> None:
    if not waves:
        out.print(empty)
        return
    for i, wave in enumerate(waves, 1):
        out.print(f"  [bold]wave {i}[/]: {escape(', '.join(wave))}")


def show_changes(cs: ChangeSet) -> None:
    """The text of ``changed`` over a range."""
    out = console()
    moved_back = []
    out.print(f"[bold]changes[/] {_short(cs.base) if cs.base else '(root)'}..{_short(cs.head)}")
    if cs.changes:
        table = Table(box=None, pad_edge=False)
        for col in ("status", "path", "package", "commit"):
            table.add_column(col, no_wrap=True)
        for c in cs.changes:
            style = _STATUS_STYLE.get(c.status, "")
            path = escape(f"{c.old_path} -> {c.path}" if c.old_path else c.path)
            commit = f"{_short(c.old_commit)} -> {_short(c.new_commit)}"
            if c.direction in ("backward", "sideways"):
                commit += f" [red bold]({c.direction})[/]"
                moved_back.append(f"{c.path} ({c.direction})")
            table.add_row(
                f"[{style}]{c.status}[/]",
                path,
                escape(c.package) if c.package else "[dim](unmanaged)[/]",
                commit,
            )
        print_table(out, table)
    else:
        out.print("  no submodule changes")
    if moved_back:
        out.print(
            f"[red bold]warning[/]: gitlinks moved backward or sideways (not a descendant of "
            f"the old commit: a revert or a force-push?): {escape(', '.join(moved_back))}"
        )
    if cs.manifest_changes:
        out.print(f"[bold]manifests changed[/]: {escape(', '.join(cs.manifest_changes))}")
    if cs.unmanaged:
        out.print(
            f"[yellow]unmanaged submodules[/] (no manifest): {escape(', '.join(cs.unmanaged))}"
        )
    out.print(f"[bold]build order[/] ({len(cs.affected)} affected)")
    _waves(out, cs.waves, "  nothing to build")


def show_rebuilds(plan: Plan) -> None:
    """``changed --since-last-success``: what needs a rebuild, and why."""
    out = console()
    out.print(f"[bold]since the last successful builds[/], at {_short(plan.product.commit)}")
    if plan.packages:
        table = Table(box=None, pad_edge=False)
        table.add_column("package", no_wrap=True)
        table.add_column("reason")
        for name in plan.packages:
            table.add_row(
                escape(name), escape(plan.reasons.get(name, "a package it requires needs a build"))
            )
        print_table(out, table)
    else:
        out.print("  every package is built at its current build key")
    out.print(f"[bold]build order[/] ({len(plan.packages)} affected)")
    _waves(out, plan.waves, "  nothing to build")


def show_graph(product: Product) -> None:
    """Wave, package, path, requirements, and (when a manifest has one) description."""
    out = console()
    graph = product.graph
    described = any(pkg.description for pkg in product.packages.values())
    table = Table(box=None, pad_edge=False)
    for col in ("wave", "package", "path", "requires"):
        table.add_column(col, no_wrap=col != "requires")
    if described:
        table.add_column("description")
    for i, wave in enumerate(graph.waves(), 1):
        for name in wave:
            pkg = product.packages[name]
            row = [str(i), name, pkg.path, ", ".join(graph.requires[name]) or "-"]
            extra = [pkg.description or "-"] if described else []
            table.add_row(*(escape(cell) for cell in [*row, *extra]))
    print_table(out, table)


def show_previews(previews: dict[str, dict[str, str]]) -> None:
    """``plan --verbose``: per package what its build would make."""
    out = console()
    for name, facts in previews.items():
        if "problem" in facts:
            out.print(f"  [red]{escape(name)}[/]: {escape(facts['problem'])}")
        elif "nevr" in facts:
            top = facts.get("top_folder") or "(none: %setup -c)"
            out.print(
                f"  {escape(name)}: {escape(facts['nevr'])}  archive {escape(facts['archive'])}"
                f" ({escape(facts['archive_from'])}), top folder {escape(top)}"
            )
        else:
            out.print(
                f"  {escape(name)}: " + escape(", ".join(f"{k} {v}" for k, v in facts.items()))
            )


def show_plan(plan: Plan) -> None:
    out = console()
    cs = plan.changeset
    if plan.origin == "affected" and cs is not None:
        what = f"affected by {_short(cs.base) if cs.base else '(root)'}..{_short(cs.head)}"
    else:
        what = f"selected at {_short(plan.product.commit)}"
    count = len(plan.packages)
    out.print(f"[bold]plan[/]: {count} package{'' if count == 1 else 's'} {what}")
    _waves(out, plan.waves, "  nothing to build")
    named = [t for t in plan.target_names if t is not None]
    if named:
        counts = {t: sum(1 for _, j in plan.jobs if j == t) for t in named}
        out.print(
            f"  [bold]targets[/]: {len(plan.jobs)} jobs: "
            + ", ".join(f"{escape(t)} ({counts[t]})" for t in named)
        )
        partial = [n for n in plan.packages if len(plan.targets_of(n)) < len(named)]
        for name in partial:
            out.print(f"    {escape(name)}: {', '.join(map(str, plan.targets_of(name)))} only")
    if plan.skipped:
        out.print(f"  [dim]skipped (--packages-skip)[/]: {escape(', '.join(plan.skipped))}")
