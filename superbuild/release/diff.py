"""``release diff A B``: what changed between two releases, per target and package.

Each package of either release is one of: ``added`` (only in B), ``removed`` (only in
A), ``upgraded`` / ``downgraded`` (its EVR, the source RPM's, went up or down in rpm's
order, :mod:`superbuild.release.evr`), ``rebuilt`` (same EVR, other bytes), or unchanged
(counted, not listed).  With ``log``, the commits of each changed component between its
two recorded commits (``git log --oneline OLD..NEW`` in its submodule, when that
history is there).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from superbuild import git as g
from superbuild.errors import GitError
from superbuild.release.compose import evr_text, package_evr
from superbuild.release.evr import compare

KINDS = ("added", "removed", "upgraded", "downgraded", "rebuilt")


def _files(pkg: Mapping[str, Any]) -> set[str]:
    return {rpm["sha256"] for rpm in pkg["rpms"]}


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The changes from release ``old`` to ``new`` (their ``release.json`` data)."""
    a = {(p["target"], p["name"]): p for p in old["packages"]}
    b = {(p["target"], p["name"]): p for p in new["packages"]}
    targets: dict[str, dict[str, list[dict[str, Any]]]] = {}
    unchanged = 0
    for key in sorted(set(a) | set(b)):
        target, name = key
        before, after = a.get(key), b.get(key)
        if before is None:
            kind = "added"
        elif after is None:
            kind = "removed"
        else:
            evr_a, evr_b = package_evr(before), package_evr(after)
            order = compare(evr_b, evr_a) if evr_a and evr_b else 0
            if order > 0:
                kind = "upgraded"
            elif order < 0:
                kind = "downgraded"
            elif _files(before) != _files(after):
                kind = "rebuilt"
            else:
                unchanged += 1
                continue
        targets.setdefault(target, {k: [] for k in KINDS})[kind].append(
            {
                "package": name,
                "path": (after or before or {}).get("path"),
                "old": evr_text(before) if before else None,
                "new": evr_text(after) if after else None,
                "old_commit": before["commit"] if before else None,
                "new_commit": after["commit"] if after else None,
            }
        )
    return {"from": old["name"], "to": new["name"], "targets": targets, "unchanged": unchanged}


def add_logs(repo: Path, changes: dict[str, Any]) -> None:
    """Add ``log`` (the ``git log --oneline`` lines, or None when the history is not
    there) to every change whose component moved between two commits."""
    for kinds in changes["targets"].values():
        for kind in KINDS:
            for change in kinds[kind]:
                old, new, path = change["old_commit"], change["new_commit"], change["path"]
                if not (old and new and path) or old == new:
                    continue
                change["log"] = commit_log(repo, path, old, new)


def commit_log(repo: Path, path: str, old: str, new: str) -> list[str] | None:
    """``git log --oneline old..new`` in the checked-out submodule at ``path``, or None
    (not checked out, or without one of the commits)."""
    if g.unsafe_path(path) or not (repo / path / ".git").exists():
        return None
    submodule = repo / path
    if not (g.is_oid(old) and g.is_oid(new)):
        return None
    try:
        result = g.git(
            submodule, "log", "--oneline", "--no-decorate", f"{old}..{new}", "--", check=False
        )
    except GitError:
        return None
    if result.returncode != 0:
        return None
    return result.stdout.decode("utf-8", "replace").splitlines()


def render(changes: Mapping[str, Any]) -> list[str]:
    """The text of a diff: one line per change, grouped by target and kind."""
    lines = [f"release {changes['from']} -> {changes['to']}"]
    for target, kinds in sorted(changes["targets"].items()):
        lines.append(f"target {target}:")
        for kind in KINDS:
            for c in kinds[kind]:
                if kind == "added":
                    what = f"{c['new']}"
                elif kind == "removed":
                    what = f"{c['old']}"
                elif kind == "rebuilt":
                    what = f"{c['new']} (same version, new build)"
                else:
                    what = f"{c['old']} -> {c['new']}"
                lines.append(f"  {kind:<10} {c['package']} {what}")
                for entry in c.get("log") or ():
                    lines.append(f"               {entry}")
                if "log" in c and c["log"] is None:
                    lines.append("               (history not available: check the submodule out)")
    if not changes["targets"]:
        lines.append("no changes")
    lines.append(f"{changes['unchanged']} unchanged")
    return lines
