"""The result of change detection, computed from plain data: one code path for both
``changed`` paths.

The general path (:mod:`superbuild.changes`) and the lean one
(:mod:`superbuild.fastchanged`) both feed :func:`analyse` with git's diff records, the
packages' submodule paths, build digests and requirements, and print :func:`report`.
This module imports no process machinery (nor :mod:`pathlib`): the lean path pays only
for what it runs.  It also reads the manifests cache (:func:`read_cache`), whose file
:mod:`superbuild.manifest` writes.
"""

from __future__ import annotations

import sys
from collections import namedtuple

from superbuild import SETTINGS_FILE, __version__

TYPE_CHECKING = False  # typing is not imported on the lean path: its types are for mypy
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any, Literal, NamedTuple

    from superbuild.gitparse import RawChange
    from superbuild.graph import DependencyGraph

    Status = Literal["added", "deleted", "modified", "moved", "typechange"]
    Direction = Literal["forward", "backward", "sideways", "unknown"]

#: The layout of a manifests cache file (see :func:`cache_name`).
CACHE_FORMAT = 8
GITLINK = 0o160000


if TYPE_CHECKING:

    class _Change(NamedTuple):
        path: str
        status: Status
        old_commit: str | None
        new_commit: str | None
        package: str | None = None
        old_path: str | None = None
        direction: Direction | None = None  # for modified and moved submodules

    class _Analysis(NamedTuple):
        changes: list[Change]
        manifest_changes: list[str]
        reasons: dict[str, str]  # directly changed package -> why
        unmanaged: list[str]
        waves: list[list[str]]

    class Side(NamedTuple):
        """One commit's packages as change detection needs them."""

        by_path: Mapping[str, str]  # submodule path -> package
        #: package -> (manifest blob, digest), in name order.
        keys: Mapping[str, tuple[str, str]]

else:  # the same fields (typing.NamedTuple makes these too)
    _Change = namedtuple(
        "_Change",
        ["path", "status", "old_commit", "new_commit", "package", "old_path", "direction"],
        defaults=(None, None, None),
    )
    _Analysis = namedtuple(
        "_Analysis", ["changes", "manifest_changes", "reasons", "unmanaged", "waves"]
    )
    Side = namedtuple("Side", ["by_path", "keys"])


class Change(_Change):
    """A changed gitlink: path, status, old and new commit, package, old path, direction."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "old_path": self.old_path,
            "package": self.package,
            "status": self.status,
            "old_commit": self.old_commit,
            "new_commit": self.new_commit,
            "direction": self.direction,
        }


class Analysis(_Analysis):
    """What changed between two commits and what it affects (directions not yet set)."""

    __slots__ = ()

    @property
    def affected(self) -> list[str]:
        return [n for w in self.waves for n in w]


def gitlink_changes(
    raw: list[RawChange],
    names: tuple[Mapping[str, str], Mapping[str, str]] | None = None,
) -> list[Change]:
    """Turn ``diff-tree`` records into submodule changes (without package names).

    ``names`` maps path -> submodule name in base's and head's ``.gitmodules``; a gitlink
    deleted at one path and added at another under the same name is a move.
    """
    added: dict[str, RawChange] = {}
    deleted: dict[str, RawChange] = {}
    changes: list[Change] = []
    blob_added_dirs: set[str] = set()
    blob_deleted_dirs: set[str] = set()
    for rc in raw:
        old_link = rc.old_mode == GITLINK
        new_link = rc.new_mode == GITLINK
        if not (old_link or new_link):
            # Files appearing where a gitlink was (or the reverse): remember their parents.
            parts = rc.path.split("/")
            dirs = {"/".join(parts[:i]) for i in range(1, len(parts))}
            if rc.status == "A":
                blob_added_dirs |= dirs
            elif rc.status == "D":
                blob_deleted_dirs |= dirs
            continue
        if rc.status == "A":
            added[rc.path] = rc
        elif rc.status == "D":
            deleted[rc.path] = rc
        elif rc.status == "M":
            changes.append(Change(rc.path, "modified", rc.old_oid, rc.new_oid))
        elif rc.status == "T":
            changes.append(
                Change(
                    rc.path,
                    "typechange",
                    rc.old_oid if old_link else None,
                    rc.new_oid if new_link else None,
                )
            )
    if names is not None and added and deleted:
        old_names, new_names = names
        by_name = {old_names[p]: p for p in deleted if p in old_names}
        for path in list(added):
            name = new_names.get(path)
            old_path = by_name.get(name) if name is not None else None
            if old_path is not None and old_path in deleted:
                old, new = deleted.pop(old_path), added.pop(path)
                changes.append(Change(path, "moved", old.old_oid, new.new_oid, old_path=old_path))
    for path, rc in deleted.items():
        # A gitlink replaced by a directory of files is a type change.
        status: Status = "typechange" if path in blob_added_dirs else "deleted"
        changes.append(Change(path, status, rc.old_oid, None))
    for path, rc in added.items():
        status = "typechange" if path in blob_deleted_dirs else "added"
        changes.append(Change(path, status, None, rc.new_oid))
    changes.sort(key=lambda c: c.path)
    return changes


def moves_possible(raw: Iterable[RawChange]) -> bool:
    """Whether the range both adds and deletes gitlinks (a move needs ``.gitmodules``)."""
    raw = list(raw)
    adds = any(r.status == "A" and r.new_mode == GITLINK for r in raw)
    dels = any(r.status == "D" and r.old_mode == GITLINK for r in raw)
    return adds and dels


def analyse(
    raw: list[RawChange],
    head: Side,
    base: Side,
    graph: DependencyGraph,
    names: tuple[Mapping[str, str], Mapping[str, str]] | None = None,
) -> Analysis:
    """Which packages changed (gitlink or build digest) and what that affects."""
    changes = []
    reasons: dict[str, str] = {}
    unmanaged = []
    for change in gitlink_changes(raw, names):
        name = None
        if change.new_commit is not None:
            name = head.by_path.get(change.path)
        if name is None:
            name = base.by_path.get(change.old_path or change.path)
        if name is None:
            unmanaged.append(change.path)
            changes.append(change)
            continue
        path, status, old_commit, new_commit, _, old_path, direction = change
        changes.append(Change(path, status, old_commit, new_commit, name, old_path, direction))
        if name not in reasons and name in head.keys and new_commit is not None:
            reasons[name] = describe(change)
    manifest_changes = []
    # Only what changes the build counts: an entry changed when its digest (the part of
    # the build key a manifest gives, see Package.digest) did. A manifest edit that
    # leaves it alone (description, comments, key order, quoting) changes nothing.
    for name, (blob, digest) in head.keys.items():
        old = base.keys.get(name)
        if old is None:
            why = "manifest added"
        elif old[1] == digest:
            continue
        elif old[0] != blob:
            why = "manifest changed"
        else:
            why = f"{SETTINGS_FILE} changed"
        manifest_changes.append(name)
        reasons.setdefault(name, why)
    waves = graph.waves(graph.with_dependents(reasons))
    return Analysis(changes, manifest_changes, reasons, sorted(unmanaged), waves)


def pending_directions(changes: Iterable[Change]) -> list[Change]:
    """The changes whose direction is judged in the submodule's history."""
    return [
        c
        for c in changes
        if c.status in ("modified", "moved")
        and c.old_commit
        and c.new_commit
        and c.old_commit != c.new_commit
    ]


def with_directions(changes: list[Change], found: Mapping[str, Direction]) -> list[Change]:
    """``changes`` with the directions ``found`` (path -> direction) filled in."""
    if not found:
        return changes
    return [
        Change(c[0], c[1], c[2], c[3], c[4], c[5], found[c[0]]) if c[0] in found else c
        for c in changes
    ]


def report(
    base: str | None,
    head: str,
    changes: list[Change],
    analysis: Analysis,
    manifests: Mapping[str, str | None],
) -> dict[str, Any]:
    """``changed --format json`` (``manifests``: whose manifests judged head and base)."""
    return {
        "base": base,
        "head": head,
        "manifests": dict(manifests),
        "changes": [c.to_json() for c in changes],
        "manifest_changes": analysis.manifest_changes,
        "affected": analysis.affected,
        "waves": analysis.waves,
        "unmanaged": analysis.unmanaged,
    }


def target_digest(digest: str, targets: Iterable[tuple[str, str]]) -> str:
    """A package's digest covering its digest for each target (``(target, digest)``):
    the digest itself without targets, so a product without ``targets:`` compares as
    before."""
    return digest + "".join(f";{t}={d}" for t, d in targets)


def describe(change: Change) -> str:
    old = change.old_commit[:7] if change.old_commit else None
    new = change.new_commit[:7] if change.new_commit else "-"
    if change.status == "modified":
        return f"gitlink {old} -> {new}"
    if change.status == "moved":
        return f"moved from {change.old_path}" + (f", gitlink {old} -> {new}" if old != new else "")
    if change.status == "typechange":
        return f"became a submodule at {new}"
    return f"submodule added at {new}"


# --------------------------------------------------------------------------- the cache


def cache_name(tree: str, settings_blob: str | None) -> str:
    """The manifests cache file of a manifests tree and settings blob (marshal is
    version-specific: the interpreter's cache tag is in the name)."""
    return (
        f"manifests-{CACHE_FORMAT}-{__version__}-{sys.implementation.cache_tag}-"
        f"{tree}-{settings_blob or 'none'}.marshal"
    )


def index_name(tree: str, settings_blob: str | None) -> str:
    """The change-detection index written next to :func:`cache_name`'s file: a commit's
    :class:`Side` and requirements, as the lean path reads them (no rows to rebuild)."""
    return "changed-" + cache_name(tree, settings_blob).removeprefix("manifests-")


def linked_name(root_tree: str) -> str:
    """The marker file the lean path leaves once it checked that every manifest ``path``
    of a commit's tree (``root_tree``: its manifests and settings, its gitlinks) is a
    gitlink: trees are content-addressed, so a later run on the same tree needs no
    ``ls-tree`` to know it again."""
    return f"linked-{CACHE_FORMAT}-{__version__}-{root_tree}"


def read_cache(path: str) -> dict[str, Any] | None:
    """A cache file's payload: a CRC-32 of the payload, then the payload in ``marshal``.

    marshal (not JSON) because it loads 1,000 entries several times faster; the CRC is
    checked before anything is unmarshalled, so a damaged file is ignored, never trusted;
    the key stored inside must be the file's own name.  None: absent or damaged.
    """
    import marshal
    import zlib

    try:
        with open(path, "rb") as fh:  # noqa: PTH123 - no pathlib on the lean path
            raw = fh.read()
        if len(raw) < 4 or zlib.crc32(raw[4:]) != int.from_bytes(raw[:4], "big"):
            return None
        data = marshal.loads(raw[4:])
        if not isinstance(data, dict) or data.get("key") != path.rpartition("/")[2]:
            return None
        return data
    except (OSError, ValueError, EOFError, TypeError):
        return None


# --------------------------------------------------------------------------- JSON


def dumps(data: object) -> str:
    """``json.dumps(data, indent=2) + "\\n"``, byte for byte, for the report's types (dicts
    with string keys, lists, strings, None, booleans, ints) without importing :mod:`json`
    (its decoder imports :mod:`re`): what both ``changed`` paths print.

    Each level is joined from its items' texts, a string item quoted in place: most of a
    report is string leaves (paths, commits)."""
    try:
        from _json import encode_basestring_ascii as quote
    except ImportError:  # an interpreter without the C accelerator
        from json.encoder import py_encode_basestring_ascii as quote

    def emit(value: object, indent: str) -> str:
        if isinstance(value, str):
            return quote(value)
        if value is None:
            return "null"
        if value is True:
            return "true"
        if value is False:
            return "false"
        if isinstance(value, int):
            return int.__repr__(value)
        inner = indent + "  "
        if isinstance(value, dict):
            if not value:
                return "{}"
            parts = []
            for key, item in value.items():
                if not isinstance(key, str):
                    raise TypeError(f"a JSON key must be a string, not {key!r}")
                text = quote(item) if type(item) is str else emit(item, inner)
                parts.append(f"{quote(key)}: {text}")
            return "{\n" + inner + (",\n" + inner).join(parts) + "\n" + indent + "}"
        if isinstance(value, list | tuple):
            if not value:
                return "[]"
            items = [quote(v) if type(v) is str else emit(v, inner) for v in value]
            return "[\n" + inner + (",\n" + inner).join(items) + "\n" + indent + "]"
        raise TypeError(f"not a report value: {value!r}")

    return emit(data, "") + "\n"
