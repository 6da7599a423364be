"""Package selection for ``plan`` and ``build`` (colcon's semantics).

The starting set is the affected set of the range (``changed``), or every package with
``--all``, or -- when ``--packages-select/--packages-up-to/--packages-above`` is given
without ``--base`` -- every package.  Then, as in colcon, each given option narrows it:

- ``--packages-select P...``: only these packages;
- ``--packages-up-to P...``: these packages and everything they require, transitively;
- ``--packages-above P...``: these packages and everything that requires them, transitively;
- ``--packages-skip P...``: not these packages (their dependents still build, against
  what was built before).

Requirements outside the selection count as already built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from superbuild.changes import ChangeSet
from superbuild.errors import UsageError
from superbuild.manifest import Product, unknown_package_message


@dataclass(frozen=True)
class SelectionOptions:
    all: bool = False
    select: Sequence[str] = ()
    up_to: Sequence[str] = ()
    above: Sequence[str] = ()
    skip: Sequence[str] = ()

    @property
    def narrows(self) -> bool:
        return bool(self.select or self.up_to or self.above)


@dataclass
class Plan:
    product: Product
    waves: list[list[str]]
    skipped: list[str]
    origin: str  # "affected" | "all"
    changeset: ChangeSet | None = None
    commits: dict[str, str] = field(default_factory=dict)  # package -> recorded commit

    @property
    def packages(self) -> list[str]:
        return [n for w in self.waves for n in w]


def check_names(product: Product, named: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Every package named on the command line must exist: one line per unknown name."""
    problems = [
        f"{option}: {unknown_package_message(n, product.packages)}"
        for option, names in named
        for n in names
        if n not in product.packages
    ]
    if problems:
        raise UsageError.many(problems)


def make_plan(
    product: Product,
    options: SelectionOptions,
    links: dict[str, str],
    changeset: ChangeSet | None = None,
) -> Plan:
    """Select packages and order them in waves."""
    check_names(
        product,
        [
            ("--packages-select", options.select),
            ("--packages-up-to", options.up_to),
            ("--packages-above", options.above),
            ("--packages-skip", options.skip),
        ],
    )
    graph = product.graph
    if changeset is not None and not options.all:
        chosen = set(changeset.affected)
        origin = "affected"
    else:
        chosen = set(product.packages)
        origin = "all"
    if options.select:
        chosen &= set(options.select)
    if options.up_to:
        chosen &= graph.with_dependencies(options.up_to)
    if options.above:
        chosen &= graph.with_dependents(options.above)
    skipped = sorted(chosen & set(options.skip))
    chosen -= set(options.skip)
    waves = graph.waves(chosen)
    commits = {n: links[product.packages[n].path] for n in chosen}
    return Plan(product, waves, skipped, origin, changeset, commits)
