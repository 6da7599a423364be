"""Planning: which packages a run builds, in what order, and why: one entry point, :func:`plan`.

A :class:`PlanRequest` names where the packages come from (its ``mode``):

- ``range``: the packages affected between ``base`` and ``head`` (``superbuild changed``);
  with a narrowing filter and no ``base``, every package at ``head``;
- ``all``: every package at ``head``;
- ``since-last-success``: the packages whose build key differs from their last
  successful build (the build state), plus their dependents;
- ``retry-failed``: what the last recorded run did not finish (failed, skipped,
  cancelled).

Then, as in colcon, each filter narrows that set:

- ``select``: only these packages;
- ``up_to``: these packages and everything they require, transitively;
- ``above``: these packages and everything that requires them, transitively;
- ``skip``: not these packages (their dependents still build, against what was built
  before).

Requirements outside the selection count as already built.  Planning never prints: the
:class:`Plan` carries its :class:`Note` lines (warnings and messages) for the verb to show.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

from superbuild.changes import ChangeSet, borrowed_notes, detect, load_head, resolve_range
from superbuild.errors import UsageError
from superbuild.manifest import Product, unknown_package_message
from superbuild.state import BuildState, since_last_success

Mode = Literal["range", "all", "since-last-success", "retry-failed"]
MODES: tuple[Mode, ...] = ("range", "all", "since-last-success", "retry-failed")
#: The modes that read the build state.
STATE_MODES: frozenset[Mode] = frozenset({"since-last-success", "retry-failed"})


class Note(NamedTuple):
    """One line for the user: a warning (``superbuild: warning: ...``) or a message."""

    text: str
    warning: bool = False


@dataclass(frozen=True)
class PlanRequest:
    """What to plan: a mode (where the packages come from), the commits, the filters."""

    mode: Mode = "range"
    base: str | None = None  # range only; None: head's first parent
    head: str = "HEAD"
    select: tuple[str, ...] = ()
    up_to: tuple[str, ...] = ()
    above: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    #: ``--manifests-from``: the commit whose manifests judge commits that have none.
    manifests_from: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown planning mode {self.mode!r}")

    @property
    def narrows(self) -> bool:
        """Whether a filter other than ``skip`` is given."""
        return bool(self.select or self.up_to or self.above)

    @property
    def needs_state(self) -> bool:
        """Whether planning reads the build state."""
        return self.mode in STATE_MODES

    def options(self) -> list[tuple[str, Sequence[str]]]:
        """The filters given, by command-line option."""
        named = [
            ("--packages-select", self.select),
            ("--packages-up-to", self.up_to),
            ("--packages-above", self.above),
            ("--packages-skip", self.skip),
        ]
        return [(option, names) for option, names in named if names]

    def refused(self) -> list[str]:
        """The options given that this request's mode cannot take."""
        if self.mode == "retry-failed":
            return (["--base"] if self.base is not None else []) + [o for o, _ in self.options()]
        if self.mode != "range" and self.base is not None:
            return ["--base"]
        return []


def check(request: PlanRequest, also: Sequence[str] = ()) -> None:
    """Refuse the combinations that make no sense (exit 2, one line).

    ``also``: other mode options given with ``request.mode`` (``--all``, ...).
    """
    clashes = [*request.refused(), *also]
    if not clashes:
        return
    option = f"--{request.mode}"
    if request.mode == "retry-failed":
        raise UsageError(
            f"{option} rebuilds what the last run did not finish: "
            f"it cannot be combined with {', '.join(clashes)}"
        )
    if request.mode == "all":
        raise UsageError(
            f"{option} selects every package at --head: "
            f"it cannot be combined with {', '.join(clashes)}"
        )
    raise UsageError(f"{option} cannot be combined with {', '.join(clashes)}")


@dataclass
class Plan:
    """The packages of a run, in waves, and why they are in it."""

    product: Product
    waves: list[list[str]]
    skipped: list[str]
    origin: str  # "affected" | "all": where the selection started
    changeset: ChangeSet | None = None  # mode range, when the selection came from it
    commits: dict[str, str] = field(default_factory=dict)  # package -> recorded commit
    #: Every gitlink (path -> recorded commit) of the plan's commit, for build keys.
    links: dict[str, str] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    #: Directly affected package -> why (a changed gitlink or manifest, a verdict, ...).
    reasons: dict[str, str] = field(default_factory=dict)
    mode: Mode = "range"

    @property
    def packages(self) -> list[str]:
        """Every package of the plan, in build order."""
        return [n for w in self.waves for n in w]

    def why(self, name: str) -> str:
        """The chain from a directly affected package to ``name``, with its reason."""
        self.product.get(name)  # unknown package -> error
        if name not in self.packages:
            if self.mode == "since-last-success":
                return f"{name} needs no rebuild: its last successful build has its build key"
            return f"{name} is not in the plan"
        chain = self.product.graph.chain_to(name, self.reasons, within=self.packages)
        if chain is None:
            return f"{name} is selected"
        return " <- ".join(chain) + f" ({self.reasons[chain[-1]]})"


@dataclass(frozen=True)
class NoPlan:
    """Nothing to plan (``retry-failed`` with nothing left to retry); ``notes`` say why."""

    notes: list[Note]


def plan(repo: Path, request: PlanRequest, state: BuildState | None = None) -> Plan | NoPlan:
    """Plan ``request`` in the superproject ``repo``.

    ``state`` is the open build state when the caller holds one (``build`` does); the
    modes that need it read it otherwise (without creating it), and the others never
    open it.
    """
    check(request)
    if request.needs_state and state is None:
        with BuildState.read(repo) as read:
            return _plan(repo, request, read)
    return _plan(repo, request, state)


def _plan(repo: Path, request: PlanRequest, state: BuildState | None) -> Plan | NoPlan:
    if request.mode == "retry-failed":
        return _retry_failed(repo, request, state)
    rng = resolve_range(repo, request.base, request.head, request.manifests_from, offer=True)
    notes = [Note(w, warning=True) for w in rng.warnings]
    if request.mode == "since-last-success":
        product, links = load_head(repo, rng)
        reasons = since_last_success(state, product, links)
        affected = product.graph.with_dependents(reasons)
        found = select(product, request, links, affected=affected, reasons=reasons)
    elif request.mode == "all" or (request.narrows and request.base is None):
        product, links = load_head(repo, rng)
        found = select(product, request, links)
    else:
        changeset = detect(repo, rng)
        found = select(
            changeset.product,
            request,
            changeset.links,
            affected=changeset.affected,
            reasons=changeset.reasons,
            changeset=changeset,
        )
    base = found.changeset.base_product if found.changeset else None
    notes += [Note(n) for n in borrowed_notes(found.product, base)]
    found.notes[:0] = notes
    return found


def _retry_failed(repo: Path, request: PlanRequest, state: BuildState | None) -> Plan | NoPlan:
    last = state.last_run() if state is not None else None
    if state is None or last is None:
        return NoPlan([Note("nothing to retry: no build recorded in this superproject")])
    unfinished = state.unfinished(last.id)
    if not unfinished:
        return NoPlan(
            [
                Note(
                    f"nothing to retry: the last run ({last.id}, {last.result}) "
                    "finished every package"
                )
            ]
        )
    rng = resolve_range(repo, None, request.head, request.manifests_from, offer=True)
    product, links = load_head(repo, rng)
    notes: list[Note] = [Note(n) for n in borrowed_notes(product)]
    gone = [b.package for b in unfinished if b.package not in product.packages]
    if gone:
        notes.append(
            Note(f"not in the product any more, not retried: {', '.join(gone)}", warning=True)
        )
    kept = [b for b in unfinished if b.package in product.packages]
    if not kept:
        return NoPlan([*notes, Note("nothing to retry")])
    names = [b.package for b in kept]
    notes.append(
        Note(
            f"retrying {len(kept)} package(s) the last run ({last.id}, {last.result}) "
            f"did not finish: {', '.join(names)}"
        )
    )
    reasons = {
        b.package: f"{b.status} in run {last.id}" + (f" ({b.reason})" if b.reason else "")
        for b in kept
    }
    found = select(product, request, links, affected=names, reasons=reasons)
    found.notes[:0] = notes
    return found


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


def select(
    product: Product,
    request: PlanRequest,
    links: Mapping[str, str],
    *,
    affected: Collection[str] | None = None,
    reasons: Mapping[str, str] | None = None,
    changeset: ChangeSet | None = None,
) -> Plan:
    """Narrow ``affected`` (None: every package) by the request's filters, in waves."""
    check_names(product, request.options())
    graph = product.graph
    chosen = set(product.packages if affected is None else affected)
    if request.select:
        chosen &= set(request.select)
    if request.up_to:
        chosen &= graph.with_dependencies(request.up_to)
    if request.above:
        chosen &= graph.with_dependents(request.above)
    skipped = sorted(chosen & set(request.skip))
    chosen -= set(request.skip)
    return Plan(
        product,
        graph.waves(chosen),
        skipped,
        "all" if affected is None else "affected",
        changeset,
        {n: links[product.packages[n].path] for n in chosen},
        dict(links),
        reasons={n: why for n, why in (reasons or {}).items() if n in chosen},
        mode=request.mode,
    )
