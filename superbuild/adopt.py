"""Adopting an existing superproject: manifests proposed from the components' own specs.

:func:`propose` reads the superproject's gitlinks at a commit (``ls-tree``), then, for
each component, its tree at the recorded commit from the component's own repository
(the submodule's checkout, or its folder under ``.git/modules/``; git objects, never the
work tree, so nothing needs to be checked out), picks its spec and asks rpm
(:func:`superbuild.pipelines.rpm.spec.parsed`, librpm through ``specfile``) for the
Name, Version, Summary and, for every subpackage, ``Provides`` and ``Requires``, plus
the source package's ``BuildRequires``.

The spec of a component: the only ``*.spec`` at its root; else the one (anywhere in the
tree) whose rpm Name is the component's folder name; else the proposal asks for
``spec:``.  A required name (versions and operators dropped, a ``(x86-64)`` ISA suffix
tried without it, each name of a rich dependency) that exactly one other component
provides is an edge; a name nobody provides is outside the product (``python3dist(x)``
is matched only when a spec provides that very name).  Build-time and run-time edges
both count (a dependent is rebuilt against a changed library, and installed with it);
each edge says which it is.  The build-time graph must have no cycle (else there is no
build order: an error); a run-time edge that would close a cycle is left out, and
reported with the cycle it would close.

Nothing here writes: :class:`Proposal` holds the manifest texts, which
:mod:`superbuild.commands.init` prints or writes.  Every text is checked against the
manifest schema before it is offered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from superbuild import git as g
from superbuild.errors import GitError, SuperbuildError
from superbuild.manifest import MANIFESTS_DIR
from superbuild.submodules import initialized

Kind = Literal["build", "run"]

#: A spec larger than this is not read (a commit is untrusted input).
MAX_SPEC_BYTES = 1024 * 1024
#: At most this many spec files of one component are parsed to find the one whose Name
#: matches; with more, the proposal asks for ``spec:`` without parsing any.
MAX_SPECS = 16

_RPMSENSE_LESS, _RPMSENSE_GREATER, _RPMSENSE_EQUAL = 2, 4, 8
_ISA = re.compile(r"^(.+)\([A-Za-z0-9_]+-(?:32|64)\)$")
_RICH_WORDS = frozenset({"and", "or", "if", "else", "with", "without", "unless"})
_RICH_OPERATORS = frozenset({"<", "<=", "=", "==", ">", ">=", "<=>"})
_NAME_BAD = re.compile(r"[^A-Za-z0-9._+-]+")


class AdoptError(SuperbuildError):
    """The superproject cannot be described as it is (exit 2)."""


@dataclass(frozen=True)
class Dep:
    """One ``Requires``/``BuildRequires`` entry as rpm parsed it."""

    name: str
    kind: Kind
    op: str = ""
    version: str = ""
    #: The (sub)package that requires it; None for a BuildRequires.
    by: str | None = None

    @property
    def text(self) -> str:
        """``libplist-devel >= 2.2.0``."""
        return f"{self.name} {self.op} {self.version}" if self.op else self.name

    @property
    def reason(self) -> str:
        """``BuildRequires: x >= 1`` or ``python3-y Requires: x``."""
        if self.kind == "build":
            return f"BuildRequires: {self.text}"
        return f"{self.by} Requires: {self.text}"

    def names(self) -> list[str]:
        """The package names this entry can be satisfied by (a rich dependency has several)."""
        if not self.name.startswith("("):
            return [self.name]
        words = self.name.replace("(", " ( ").replace(")", " ) ").split()
        found: list[str] = []
        skip_next = False
        for word in words:
            if skip_next:
                skip_next = False
            elif word in _RICH_OPERATORS:
                skip_next = True  # the version after the operator
            elif word not in _RICH_WORDS and word not in ("(", ")"):
                found.append(word)
        return found


@dataclass(frozen=True)
class SpecReading:
    """What rpm says about one spec."""

    file: str  # relative to the component's root
    name: str
    version: str
    summary: str
    provides: tuple[str, ...]
    requires: tuple[Dep, ...]  # run-time (every subpackage) and build-time


@dataclass(frozen=True)
class Edge:
    """``dependent`` requires ``requirement``: the kinds and the spec lines that say so."""

    dependent: str
    requirement: str
    kinds: tuple[Kind, ...]
    reasons: tuple[str, ...]
    #: For a run-time edge left out: the cycle it would close (``[a, b, ..., a]``).
    cycle: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``build-time``, ``run-time`` or ``build-time and run-time``."""
        return " and ".join(f"{k}-time" for k in self.kinds)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "package": self.requirement,
            "kinds": list(self.kinds),
            "because": list(self.reasons),
        }
        if self.cycle:
            data["cycle"] = list(self.cycle)
        return data


@dataclass
class Component:
    """One gitlink of the superproject and what its repository says."""

    path: str
    commit: str
    package: str = ""
    manifest: str = ""
    #: The spec chosen (relative to the component's root), None when none could be.
    spec: str | None = None
    #: The spec files of the component, when the proposal asks to choose one.
    candidates: tuple[str, ...] = ()
    #: Other spec files of the repository (not built by this manifest).
    other_specs: tuple[str, ...] = ()
    reading: SpecReading | None = None
    #: Why the component's requirements are unknown (one line), or None.
    problem: str | None = None
    #: The repository has no spec file at all.
    no_spec: bool = False
    requires: list[Edge] = field(default_factory=list)
    dropped: list[Edge] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        reading = self.reading
        return {
            "package": self.package,
            "path": self.path,
            "commit": self.commit,
            "manifest": self.manifest,
            "spec": self.spec,
            "spec_candidates": list(self.candidates),
            "other_specs": list(self.other_specs),
            "rpm_name": reading.name if reading else None,
            "version": reading.version if reading else None,
            "provides": list(reading.provides) if reading else [],
            "requires": [e.to_json() for e in self.requires],
            "dropped": [e.to_json() for e in self.dropped],
            "problem": self.problem,
        }


@dataclass
class Proposal:
    """One manifest per component of ``commit``, with the notes a person should read."""

    commit: str
    components: list[Component]
    notes: list[str]
    #: manifest file (relative to the superproject) -> its text
    manifests: dict[str, str]
    waves: list[list[str]]

    def to_json(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "components": [c.to_json() for c in self.components],
            "waves": self.waves,
            "notes": self.notes,
        }


# --------------------------------------------------------------------------- reading


def component_repo(repo: Path, path: str, names: Mapping[str, str]) -> Path | None:
    """Where the objects of submodule ``path`` are: its checkout's repository, else its
    folder under the superproject's ``.git/modules/`` (a submodule that was cloned then
    deinitialised); None when there is neither."""
    work_tree = repo / path
    if initialized(work_tree):
        return work_tree
    name = names.get(path)
    if name is None or g.unsafe_path(name):
        return None
    modules = g.git_dir(repo) / "modules" / name
    if (modules / "HEAD").is_file() and (modules / "objects").is_dir():
        return modules
    return None


def _sizes(repo: Path, oids: Sequence[str]) -> dict[str, int]:
    """Object sizes in one ``cat-file --batch-check``."""
    if not oids:
        return {}
    out = g.git(
        repo,
        "cat-file",
        "--batch-check=%(objectname) %(objectsize)",
        input="".join(f"{o}\n" for o in oids).encode(),
    ).stdout.decode()
    sizes: dict[str, int] = {}
    for line in out.splitlines():
        oid, _, size = line.partition(" ")
        if size.isdigit():
            sizes[oid] = int(size)
    return sizes


def _flags_op(flags: int) -> str:
    op = ""
    if flags & _RPMSENSE_LESS:
        op += "<"
    if flags & _RPMSENSE_GREATER:
        op += ">"
    if flags & _RPMSENSE_EQUAL:
        op += "="
    return {"<": "<", ">": ">", "=": "=", "<=": "<=", ">=": ">="}.get(op, op)


def _text(value: Any) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


def _deps(header: Any, kind: Kind, by: str | None) -> list[Dep]:
    names = header["requirename"] or []
    flags = header["requireflags"] or []
    versions = header["requireversion"] or []
    found = []
    for name, flag, version in zip(names, flags, versions, strict=False):
        text = _text(name)
        if text.startswith("rpmlib("):
            continue  # rpm's own features, never a package
        found.append(Dep(text, kind, _flags_op(int(flag)), _text(version), by))
    return found


def read_spec_deps(file: str, text: str) -> SpecReading:
    """rpm's reading of a spec: Name, Version, Summary, every subpackage's Provides and
    Requires and the source package's BuildRequires (raises ``SpecError``)."""
    from superbuild.pipelines.rpm.spec import parsed, prelude

    with parsed(prelude(text) + text) as spec:
        rpm_spec = spec.rpm_spec
        source = rpm_spec.sourceHeader
        provides: list[str] = []
        requires: list[Dep] = _deps(source, "build", None)
        for package in rpm_spec.packages:
            header = package.header
            name = _text(header["name"])
            provides += [_text(p) for p in header["providename"] or []]
            provides.append(name)
            requires += _deps(header, "run", name)
        return SpecReading(
            file=file,
            name=_text(source["name"]),
            version=_text(source["version"]),
            summary=_text(source["summary"] or "").strip(),
            provides=tuple(sorted(set(provides))),
            requires=tuple(dict.fromkeys(requires)),
        )


def _parse(sub: Path, file: str, oid: str, size: int | None) -> SpecReading | str:
    """The reading of one spec blob, or the one-line reason it has none."""
    from superbuild.pipelines.rpm.spec import SpecError

    if size is None or size > MAX_SPEC_BYTES:
        return f"{file} is larger than 1 MiB: not read"
    data = g.read_blobs(sub, [oid])[oid]
    try:
        return read_spec_deps(file, data.decode("utf-8", "surrogateescape"))
    except SpecError as exc:
        return f"rpm cannot read {file}: {exc}"


def _read_component(repo: Path, comp: Component, names: Mapping[str, str]) -> None:
    """Choose the component's spec and read it (fills ``comp``; never raises for the
    component's own problems: they become ``comp.problem``)."""
    sub = component_repo(repo, comp.path, names)
    if sub is None:
        comp.problem = (
            f"{comp.path} is not checked out and has no repository under .git/modules: "
            f"run git submodule update --init {comp.path}, then superbuild init again"
        )
        return
    try:
        [found] = g.resolve(sub, [f"{comp.commit}^{{commit}}"])
        if found is None:
            comp.problem = (
                f"commit {comp.commit[:12]} of {comp.path} is not in {sub}: fetch it "
                f"(git submodule update --init {comp.path}), then superbuild init again"
            )
            return
        tree = g.ls_tree(sub, comp.commit)
    except GitError as exc:
        comp.problem = f"{comp.path}: {exc.lines[0]}"
        return
    specs = {e.path: e.oid for e in tree if e.kind == "blob" and e.path.endswith(".spec")}
    if not specs:
        comp.no_spec = True
        comp.problem = f"no *.spec file in {comp.path} at {comp.commit[:12]}"
        return
    root = sorted(p for p in specs if "/" not in p)
    sizes = _sizes(sub, list(dict.fromkeys(specs.values())))
    if len(root) == 1:
        comp.spec = root[0]
        comp.other_specs = tuple(sorted(p for p in specs if p != comp.spec))
        reading = _parse(sub, comp.spec, specs[comp.spec], sizes.get(specs[comp.spec]))
        if isinstance(reading, str):
            comp.problem = reading
        else:
            comp.reading = reading
        return
    folder = PurePosixPath(comp.path).name
    every = sorted(specs)
    if len(every) > MAX_SPECS:
        comp.candidates = tuple(every[:MAX_SPECS])  # the first ones: a hint, not a list
        comp.problem = (
            f"{len(every)} spec files in {comp.path} and none alone at its root "
            f"(more than {MAX_SPECS}: none read): choose one with spec:"
        )
        return
    readings: dict[str, SpecReading] = {}
    for file in every:
        reading = _parse(sub, file, specs[file], sizes.get(specs[file]))
        if not isinstance(reading, str):
            readings[file] = reading
    matching = [f for f, r in readings.items() if r.name == folder]
    if len(matching) == 1:
        comp.spec = matching[0]
        comp.reading = readings[comp.spec]
        comp.other_specs = tuple(p for p in every if p != comp.spec)
        return
    comp.candidates = tuple(every)
    comp.problem = (
        f"{len(every)} spec files in {comp.path} ({', '.join(every)}) and none alone at "
        f"its root, none (or several) with Name {folder}: choose one with spec:"
    )


# --------------------------------------------------------------------------- names


def _package_names(paths: Sequence[str]) -> dict[str, str]:
    """A package name per path: the folder name, made a valid name; the path, dashed,
    for folder names that clash."""

    def clean(text: str) -> str:
        name = _NAME_BAD.sub("-", text).lstrip("._+-")
        return name or "component"

    first = {p: clean(PurePosixPath(p).name) for p in paths}
    counts: dict[str, int] = {}
    for name in first.values():
        counts[name] = counts.get(name, 0) + 1
    names: dict[str, str] = {}
    taken: set[str] = set()
    for path in sorted(paths):
        name = first[path] if counts[first[path]] == 1 else clean(path.replace("/", "-"))
        base, n = name, 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        taken.add(name)
        names[path] = name
    return names


def _manifest_files(names: Mapping[str, str]) -> dict[str, str]:
    """``manifests/<group>/<name>.yaml`` per path: the group is the path's folder below
    the folder every component shares (``repos/openstack/glance`` next to
    ``repos/altai/focus``: ``manifests/openstack/glance.yaml``)."""
    parents = {p: PurePosixPath(p).parent.parts for p in names}
    common: tuple[str, ...] = ()
    if parents:
        shortest = min(parents.values(), key=len)
        for i, part in enumerate(shortest):
            if all(len(parts) > i and parts[i] == part for parts in parents.values()):
                common += (part,)
            else:
                break
    return {
        path: "/".join([MANIFESTS_DIR, *parents[path][len(common) :], f"{name}.yaml"])
        for path, name in names.items()
    }


# --------------------------------------------------------------------------- edges


def _providers(components: Iterable[Component]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for comp in components:
        if comp.reading is not None:
            for name in comp.reading.provides:
                found.setdefault(name, set()).add(comp.package)
    return found


def _edges(components: list[Component], notes: list[str]) -> dict[tuple[str, str], Edge]:
    """Every edge the specs give, merged per (dependent, requirement)."""
    providers = _providers(components)
    kinds: dict[tuple[str, str], set[Kind]] = {}
    reasons: dict[tuple[str, str], list[str]] = {}
    for comp in components:
        if comp.reading is None:
            continue
        own = set(comp.reading.provides)
        for dep in comp.reading.requires:
            for name in dep.names():
                if name in own:
                    continue
                who = providers.get(name)
                if who is None:
                    isa = _ISA.match(name)
                    if isa and isa.group(1) in own:
                        continue
                    who = providers.get(isa.group(1)) if isa else None
                if not who:
                    continue
                if len(who) > 1:
                    notes.append(
                        f"{comp.package}: {dep.reason}: {name} is provided by "
                        f"{', '.join(sorted(who))}: add the one you mean to requires:"
                    )
                    continue
                [target] = who
                key = (comp.package, target)
                kinds.setdefault(key, set()).add(dep.kind)
                said = reasons.setdefault(key, [])
                if dep.reason not in said:
                    said.append(dep.reason)
    order: tuple[Kind, ...] = ("build", "run")
    return {
        key: Edge(key[0], key[1], tuple(k for k in order if k in found), tuple(reasons[key]))
        for key, found in sorted(kinds.items())
    }


def _path(adjacency: Mapping[str, Iterable[str]], start: str, goal: str) -> list[str] | None:
    """A path ``start -> ... -> goal`` along ``adjacency`` (depth first), or None."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen = {start}
    while stack:
        node, trail = stack.pop()
        if node == goal:
            return trail
        for nxt in sorted(adjacency.get(node, ()), reverse=True):
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*trail, nxt]))
    return None


def _acyclic(edges: Mapping[tuple[str, str], Edge]) -> tuple[list[Edge], list[Edge]]:
    """The edges kept and the run-time edges left out to break cycles.

    Edges with a build-time part go in first; a build-time cycle is an error.  Run-time
    edges follow in name order, each left out when its requirement already reaches its
    dependent.
    """
    adjacency: dict[str, set[str]] = {}
    kept: list[Edge] = []
    build = [e for e in edges.values() if "build" in e.kinds]
    for edge in build:
        adjacency.setdefault(edge.dependent, set()).add(edge.requirement)
    for edge in build:
        back = _path(adjacency, edge.requirement, edge.dependent)
        if back is not None:
            cycle = [edge.dependent, *back]
            start = cycle.index(min(cycle[:-1]))
            members = cycle[start:-1] + cycle[:start]
            text = " -> ".join([*members, members[0]])
            why = "; ".join(
                f"{a}: {edges[(a, b)].reasons[0]}"
                for a, b in zip(members, [*members[1:], members[0]], strict=True)
            )
            raise AdoptError(
                f"build-time dependency cycle in the specs: {text} ({why}): no build order "
                "exists; fix one of these BuildRequires (or write these manifests by hand)"
            )
    kept += build
    dropped: list[Edge] = []
    for edge in (e for e in edges.values() if "build" not in e.kinds):
        back = _path(adjacency, edge.requirement, edge.dependent)
        if back is not None:
            dropped.append(
                Edge(
                    edge.dependent,
                    edge.requirement,
                    edge.kinds,
                    edge.reasons,
                    (edge.dependent, *back),
                )
            )
            continue
        adjacency.setdefault(edge.dependent, set()).add(edge.requirement)
        kept.append(edge)
    return kept, dropped


# --------------------------------------------------------------------------- manifests

_PLAIN = re.compile(r"^[A-Za-z0-9_./+][A-Za-z0-9_./+ ,()-]*$")


def yaml_scalar(text: str) -> str:
    """``text`` as a YAML scalar: plain when YAML reads it back as the same string,
    else double-quoted (JSON's escapes are YAML's)."""
    import yaml

    if _PLAIN.match(text) and not text.endswith(" "):
        try:
            if yaml.safe_load(text) == text:
                return text
        except yaml.YAMLError:
            pass
    return json.dumps(text, ensure_ascii=False)


def _comment(text: str) -> str:
    """Text safe on one YAML comment line (no line breaks or control characters)."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f]", " ", text)


def render(comp: Component) -> str:
    """The manifest text of ``comp``, with a comment per edge."""
    lines: list[str] = []
    reading = comp.reading
    commit = comp.commit[:12]
    if reading is not None:
        lines.append(
            f"# {_comment(comp.package)}: {_comment(reading.name)} {_comment(reading.version)}, "
            f"from {_comment(reading.file)} at {commit} (proposed by superbuild init)"
        )
    else:
        lines.append(f"# {_comment(comp.package)}: proposed by superbuild init")
    if comp.problem:
        lines.append(f"# NOTE: {_comment(comp.problem)}")
    if comp.candidates:
        lines.append("# choose the spec this package builds: uncomment one line")
        lines += [f"# spec: {yaml_scalar(c)}" for c in comp.candidates]
    if comp.other_specs:
        lines.append(
            "# also in the repository, not built by this manifest: "
            + _comment(", ".join(comp.other_specs))
        )
    lines.append(f"path: {yaml_scalar(comp.path)}")
    if reading is not None and reading.summary:
        lines.append(f"description: {yaml_scalar(reading.summary)}")
    if comp.no_spec:
        lines.append("# no spec: the command pipeline, whose steps (commands:) are yours to write")
        lines.append("pipeline: command")
    if comp.spec is not None:
        lines.append(f"spec: {yaml_scalar(comp.spec)}")
    if comp.requires or comp.dropped:
        lines.append("requires:" if comp.requires else "requires: []")
        for edge in comp.requires:
            lines.append(
                f"  - {yaml_scalar(edge.requirement)}  # {edge.label}: "
                + _comment("; ".join(edge.reasons))
            )
        for edge in comp.dropped:
            lines.append(
                f"  # - {yaml_scalar(edge.requirement)}  # {edge.label}, left out: it would "
                f"close the cycle {_comment(' -> '.join(edge.cycle))} "
                f"({_comment('; '.join(edge.reasons))})"
            )
    return "\n".join(lines) + "\n"


def _check(file: str, text: str) -> None:
    """Every proposed text must be a valid manifest: a failure here is a bug."""
    from superbuild import schema

    problems: list[str] = []
    raw = schema.load_yaml(text.encode("utf-8"), file, problems)
    if raw is not None:
        schema.validate(raw, schema.MANIFEST_SCHEMA, file, problems)
    if problems:
        raise AssertionError(f"superbuild init proposed an invalid manifest: {problems[0]}")


# --------------------------------------------------------------------------- proposal


def propose(repo: Path, rev: str = "HEAD") -> Proposal:
    """The manifests of the superproject ``repo`` at ``rev``, from its components' specs."""
    commit = g.rev_commit(repo, rev)
    links = g.gitlinks(repo, commit)
    if not links:
        raise AdoptError(
            f"commit {commit[:12]} records no submodule (gitlink): nothing to describe; "
            "add the components first (git submodule add URL PATH)"
        )
    names = _package_names(list(links))
    files = _manifest_files(names)
    module_names = g.submodule_names(repo, commit)
    components = [Component(path, links[path], names[path], files[path]) for path in sorted(links)]
    for comp in components:
        _read_component(repo, comp, module_names)
    notes: list[str] = []
    edges = _edges(components, notes)
    kept, dropped = _acyclic(edges)
    by_name = {c.package: c for c in components}
    for edge in sorted(kept, key=lambda e: (e.dependent, e.requirement)):
        by_name[edge.dependent].requires.append(edge)
    for edge in dropped:
        by_name[edge.dependent].dropped.append(edge)
        notes.append(
            f"{edge.dependent}: run-time requirement {edge.requirement} left out: it would "
            f"close the cycle {' -> '.join(edge.cycle)} ({'; '.join(edge.reasons)}); "
            "drop another edge of the cycle by hand if you prefer"
        )
    for comp in components:
        if comp.problem is None:
            continue
        if comp.no_spec:
            notes.append(
                f"{comp.package}: {comp.problem}: proposed with pipeline: command and no "
                "steps; write its commands: (or add a spec and remove pipeline:)"
            )
        elif comp.candidates:
            notes.append(f"{comp.package}: {comp.problem} (in {comp.manifest})")
        else:
            notes.append(f"{comp.package}: {comp.problem}; its requires are not known")
    manifests = {c.manifest: render(c) for c in components}
    for file, text in manifests.items():
        _check(file, text)
    from superbuild.graph import DependencyGraph

    graph = DependencyGraph({c.package: [e.requirement for e in c.requires] for c in components})
    return Proposal(commit, components, notes, manifests, graph.waves())
