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
from superbuild.errors import SuperbuildError, UsageError
from superbuild.manifest import Product, unknown_package_message
from superbuild.package import job_id, split_job_id
from superbuild.state import BuildRecord, BuildState, since_last_success

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
    #: ``--target``: only these targets of superbuild.yaml (empty: every target).
    targets: tuple[str, ...] = ()

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
    #: Package -> the targets it is built for in this run (``(None,)``: the implicit
    #: target); a package missing here is built for each of its targets.
    targets: dict[str, tuple[str | None, ...]] = field(default_factory=dict)

    @property
    def packages(self) -> list[str]:
        """Every package of the plan, in build order."""
        return [n for w in self.waves for n in w]

    def targets_of(self, name: str) -> tuple[str | None, ...]:
        """The targets ``name`` is built for in this plan."""
        found = self.targets.get(name)
        return found if found is not None else self.product.targets_of(name)

    @property
    def jobs(self) -> list[tuple[str, str | None]]:
        """``(package, target)`` of every build of the plan, in build order: one job each."""
        return [(n, t) for n in self.packages for t in self.targets_of(n)]

    @property
    def job_ids(self) -> list[str]:
        """The job ids of :attr:`jobs` (``pkg``, or ``pkg@target``)."""
        return [job_id(n, t) for n, t in self.jobs]

    @property
    def target_names(self) -> list[str | None]:
        """The targets this plan builds for, in superbuild.yaml's order."""
        used = {t for _, t in self.jobs}
        names: list[str | None] = [*self.product.target_names] or [None]
        return [t for t in names if t in used]

    def job_commits(self) -> dict[str, str]:
        """Job id -> the recorded commit it builds."""
        return {job_id(n, t): self.commits[n] for n, t in self.jobs}

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
    #: The targets of the product at --head when it was read (their outputs to recover).
    target_names: tuple[str, ...] = ()


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
        by_job = since_last_success(state, product, links)
        # Per target: what needs a rebuild there, and its dependents there.
        per_target: dict[str | None, set[str]] = {}
        for job in by_job:
            name, target = split_job_id(job)
            per_target.setdefault(target, set()).add(name)
        wanted: dict[str, set[str | None]] = {}
        for target, names in per_target.items():
            for name in product.graph.with_dependents(names):
                if target in product.targets_of(name):
                    wanted.setdefault(name, set()).add(target)
        reasons: dict[str, str] = {}
        for job, why in by_job.items():
            reasons.setdefault(split_job_id(job)[0], why)
        found = select(
            product, request, links, affected=wanted, reasons=reasons, affected_targets=wanted
        )
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
            ],
            _target_names(repo, request.head),
        )
    rng = resolve_range(repo, None, request.head, request.manifests_from, offer=True)
    product, links = load_head(repo, rng)
    notes: list[Note] = [Note(n) for n in borrowed_notes(product)]

    def known(b: BuildRecord) -> bool:
        return b.package in product.packages and b.target in product.targets_of(b.package)

    gone = [b.job_id for b in unfinished if not known(b)]
    if gone:
        notes.append(
            Note(f"not in the product any more, not retried: {', '.join(gone)}", warning=True)
        )
    kept = [b for b in unfinished if known(b)]
    if not kept:
        return NoPlan([*notes, Note("nothing to retry")], product.target_names)
    names = [b.job_id for b in kept]
    notes.append(
        Note(
            f"retrying {len(kept)} package(s) the last run ({last.id}, {last.result}) "
            f"did not finish: {', '.join(names)}"
        )
    )
    reasons: dict[str, str] = {}
    wanted: dict[str, set[str | None]] = {}
    for b in kept:
        reasons.setdefault(
            b.package, f"{b.status} in run {last.id}" + (f" ({b.reason})" if b.reason else "")
        )
        wanted.setdefault(b.package, set()).add(b.target)
    found = select(
        product, request, links, affected=list(wanted), reasons=reasons, affected_targets=wanted
    )
    found.notes[:0] = notes
    return found


def _target_names(repo: Path, head: str) -> tuple[str, ...]:
    """The targets at ``head`` (whose outputs a build recovers), () if it cannot be read:
    a run killed after its last package may have left a target's metadata refresh."""
    try:
        product, _ = load_head(repo, resolve_range(repo, None, head))
    except SuperbuildError:
        return ()
    return product.target_names


def check_targets(product: Product, targets: Sequence[str]) -> None:
    """Every ``--target`` must be a target of superbuild.yaml: one line, exit 2."""
    for name in targets:
        if name not in product.target_names:
            defined = ", ".join(product.target_names)
            raise UsageError(
                f"--target {name}: unknown target; superbuild.yaml targets: {defined}"
                if defined
                else f"--target {name}: superbuild.yaml defines no targets: (add a "
                "targets: mapping to build for several platforms, see docs/build.md)"
            )


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
    affected_targets: Mapping[str, Collection[str | None]] | None = None,
) -> Plan:
    """Narrow ``affected`` (None: every package) by the request's filters, in waves.

    Each package is built for its targets (``affected_targets``: only these), narrowed
    by ``--target``; a package left with none is not in the plan.
    """
    check_names(product, request.options())
    check_targets(product, request.targets)
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
    targets: dict[str, tuple[str | None, ...]] = {}
    for name in sorted(chosen):
        only = (affected_targets or {}).get(name)
        targets[name] = tuple(
            t
            for t in product.targets_of(name)
            if (only is None or t in only) and (not request.targets or t in request.targets)
        )
    chosen = {n for n, found in targets.items() if found}
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
        targets={n: found for n, found in targets.items() if n in chosen},
    )
