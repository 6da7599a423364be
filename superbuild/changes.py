"""Change detection: which submodules and manifests changed between two commits.

The cost on a warm run is one ``cat-file --batch-check`` (resolves head, base and the
manifests' object ids), one ``ls-tree`` (the gitlinks of head, to validate manifest
paths), one ``diff-tree -r -z`` and a cache read; ``.gitmodules`` is read only when a
range both adds and deletes gitlinks (to recognise moves).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from superbuild import changecore
from superbuild import git as g
from superbuild.ci import GREEN, resolve_green
from superbuild.errors import GitError, ManifestError, UsageError
from superbuild.manifest import (
    MANIFESTS_DIR,
    SETTINGS_FILE,
    Product,
    load_product,
)
from superbuild.submodules import initialized

if TYPE_CHECKING:
    from superbuild.changecore import Direction

# The core (superbuild.changecore) keeps these; this module keeps their names.
Change = changecore.Change
gitlink_changes = changecore.gitlink_changes


class ChangeSet:
    """What changed between ``base`` and ``head``, and what that affects."""

    def __init__(
        self,
        *,
        base: str | None,
        head: str,
        changes: list[Change],
        manifest_changes: list[str],
        affected: list[str],
        waves: list[list[str]],
        unmanaged: list[str],
        product: Product,
        base_product: Product,
        reasons: dict[str, str] | None = None,
        links: dict[str, str] | None = None,
    ) -> None:
        self.base = base
        self.head = head
        self.changes = changes
        self.manifest_changes = manifest_changes
        self.affected = affected
        self.waves = waves
        self.unmanaged = unmanaged
        self.product = product
        self.base_product = base_product
        self.reasons = reasons or {}  # directly changed package -> why
        self.links = links or {}  # head's gitlinks: path -> commit

    def to_json(self) -> dict[str, Any]:
        analysis = changecore.Analysis(
            self.changes, self.manifest_changes, self.reasons, self.unmanaged, self.waves
        )
        return changecore.report(
            self.base, self.head, self.changes, analysis, self.manifests_json()
        )

    def manifests_json(self) -> dict[str, str | None]:
        """Whose ``manifests/`` judged each side (``--manifests-from``), null: none did."""
        return {
            "head": self.product.manifests,
            "base": self.base_product.manifests if self.base is not None else None,
        }

    def why(self, name: str) -> str:
        """The chain from a changed submodule or manifest to ``name``."""
        self.product.get(name)  # unknown package -> error
        if name not in self.affected:
            return (
                f"{name} is not affected between {g.short_oid(self.base, '(root)')} "
                f"and {g.short_oid(self.head)}"
            )
        chain = self.product.graph.chain_to(name, self.reasons, within=self.affected)
        assert chain is not None
        return " <- ".join(chain) + f" ({self.reasons[chain[-1]]})"


class Range(NamedTuple):
    base: str | None
    head: str
    head_ids: tuple[str | None, str | None]  # manifests tree, settings blob
    base_ids: tuple[str | None, str | None] | None  # None: unknown yet (explicit base)
    warnings: tuple[str, ...] = ()
    #: ``--manifests-from``: the commit whose manifests judge a commit that has none,
    #: and the ids of its manifests tree and settings blob.
    manifests_from: str | None = None
    from_ids: tuple[str | None, str | None] = (None, None)
    #: The verb offers ``--manifests-from``: the "no manifests" error names it.
    offer: bool = False


#: The end of the "no manifests/ folder" error where ``--manifests-from`` is offered.
MANIFESTS_FROM_HINT = (
    "; or judge it by the manifests of a commit that has them: --manifests-from REV "
    "(see docs/adopting.md)"
)


def _ids(found: list[tuple[str, str] | None], i: int) -> tuple[str | None, str | None]:
    tree, settings = found[i], found[i + 1]
    return (
        tree[0] if tree and tree[1] == "tree" else None,
        settings[0] if settings and settings[1] == "blob" else None,
    )


def resolve_range(
    repo: Path,
    base: str | None,
    head: str = "HEAD",
    manifests_from: str | None = None,
    *,
    offer: bool = False,
) -> Range:
    """Resolve ``--base``/``--head``: base is merge-base(base, head), else head's first parent.

    ``manifests_from`` (``--manifests-from REV``) is resolved in the same git process;
    ``offer``: the verb has that option (its "no manifests" error names it).
    """
    for option, rev in (("--head", head), ("--base", base), ("--manifests-from", manifests_from)):
        if rev is not None and (not rev or rev.startswith("-")):
            raise UsageError(f"invalid {option} revision {rev!r}")
    specs = [
        f"{head}^{{commit}}",
        f"{head}^{{commit}}:{MANIFESTS_DIR}",
        f"{head}^{{commit}}:{SETTINGS_FILE}",
        f"{head}^{{commit}}^1^{{commit}}",
        f"{head}^{{commit}}^1:{MANIFESTS_DIR}",
        f"{head}^{{commit}}^1:{SETTINGS_FILE}",
    ]
    warnings: tuple[str, ...] = ()
    if base == GREEN:
        green, warning = resolve_green(repo)
        base = green
        warnings = (warning,) if warning else ()
    if base is not None:
        specs.append(f"{base}^{{commit}}")
    at = len(specs)
    if manifests_from is not None:
        specs += [
            f"{manifests_from}^{{commit}}",
            f"{manifests_from}^{{commit}}:{MANIFESTS_DIR}",
            f"{manifests_from}^{{commit}}:{SETTINGS_FILE}",
        ]
    found = g.resolve(repo, specs)
    if found[0] is None:
        raise GitError(
            f"unknown --head revision {head!r}: no such commit in {repo} "
            "(check the name, or fetch it: git fetch origin)"
        )
    head_oid = found[0][0]
    borrowed: dict[str, Any] = {"offer": offer}
    if manifests_from is not None:
        hit = found[at]
        if hit is None:
            raise GitError(
                f"unknown --manifests-from revision {manifests_from!r}: no such commit in "
                f"{repo} (check the name, or fetch it: git fetch origin)"
            )
        source = hit[0]
        from_ids = _ids(found, at + 1)
        if from_ids[0] is None:
            raise ManifestError(
                f"--manifests-from {manifests_from}: commit {source[:12]} has no "
                f"{MANIFESTS_DIR}/ folder either: name a commit that has them (the first "
                "that does, or HEAD)"
            )
        borrowed.update(manifests_from=source, from_ids=from_ids)
    if base is None:
        parent = found[3][0] if found[3] else None
        return Range(
            parent,
            head_oid,
            _ids(found, 1),
            _ids(found, 4) if parent else (None, None),
            warnings,
            **borrowed,
        )
    if found[6] is None:
        raise GitError(
            f"unknown --base revision {base!r}: no such commit in {repo} "
            "(check the name, or fetch it: git fetch origin)"
        )
    base_oid = g.merge_base(repo, found[6][0], head_oid)
    return Range(base_oid, head_oid, _ids(found, 1), None, warnings, **borrowed)


def cache_dir(repo: Path) -> Path:
    return g.git_dir(repo) / "superbuild"


def load_head(repo: Path, rng: Range) -> tuple[Product, dict[str, str]]:
    """The product at head, validated (manifest paths must be gitlinks), and its gitlinks."""
    links = g.gitlinks(repo, rng.head)
    return _head_product(repo, rng, links), links


def _head_product(repo: Path, rng: Range, links: Mapping[str, str]) -> Product:
    """Head's own manifests, validated against its gitlinks; with none, ``--manifests-from``'s."""
    if rng.head_ids[0] is None and rng.manifests_from is not None:
        return borrow(repo, rng, rng.head, links)
    return load_product(
        repo,
        rng.head,
        cache_dir=cache_dir(repo),
        tree_ids=rng.head_ids,
        links=links,
        missing_hint=MANIFESTS_FROM_HINT if rng.offer else "",
    )


def borrow(repo: Path, rng: Range, commit: str, links: Mapping[str, str] | None) -> Product:
    """``rng.manifests_from``'s product as the product of ``commit`` (which has no manifests).

    The borrowed manifests are validated as they are at their own commit.  Given
    ``links`` (``commit``'s gitlinks), packages whose path is no gitlink there (a
    submodule added later) are left out, named in ``left_out``: ``commit`` predates them.
    The base side of a range passes no links: there, the manifests only name packages.
    """
    assert rng.manifests_from is not None
    source = rng.manifests_from
    try:
        found = load_product(repo, source, cache_dir=cache_dir(repo), tree_ids=rng.from_ids)
    except ManifestError as exc:
        raise ManifestError(
            *(f"--manifests-from {source[:12]}: {line}" for line in exc.lines)
        ) from None
    entries = found.entries
    left_out: list[str] = []
    if links is not None:
        left_out = sorted(n for n, e in entries.items() if e.path not in links)
        entries = {n: e for n, e in entries.items() if e.path in links}
    targets = {
        t: {n: e for n, e in es.items() if n in entries} for t, es in found.target_entries.items()
    }
    product = Product(commit, entries, found.settings_data, targets)
    product.manifests = source
    product.left_out = tuple(left_out)
    return product


def borrowed_notes(product: Product, base: Product | None = None) -> list[str]:
    """What ``--manifests-from`` did, one line each (for stderr)."""
    notes = []
    for side, found in (("", product), ("base ", base)):
        if found is None or found.commit is None or found.manifests in (found.commit, None):
            continue
        assert found.manifests is not None
        notes.append(
            f"{side}commit {found.commit[:12]} has no {MANIFESTS_DIR}/: judged by the "
            f"manifests of {found.manifests[:12]} (--manifests-from)"
        )
        if found.left_out:
            notes.append(
                f"packages of {found.manifests[:12]} whose path is not a submodule in "
                f"{found.commit[:12]} (added later), left out: {', '.join(found.left_out)}"
            )
    return notes


def detect(repo: Path, rng: Range) -> ChangeSet:
    """Compare the trees of ``rng.base`` and ``rng.head``."""
    # The gitlink listing (for validation) and the diff run side by side: two git
    # processes on two cores instead of one after the other.
    links: dict[str, str] = {}
    errors: list[BaseException] = []

    def list_links() -> None:
        try:
            links.update(g.gitlinks(repo, rng.head))
        except BaseException as exc:  # re-raised below, in this thread
            errors.append(exc)

    lister = threading.Thread(target=list_links)
    lister.start()
    try:
        raw = g.diff_trees(repo, rng.base, rng.head)
    finally:
        lister.join()
    if errors:
        raise errors[0]
    product = _head_product(repo, rng, links)
    base_product = _load_base(repo, rng, product)
    result = _changeset(repo, rng, raw, product, base_product)
    result.links = links
    result.changes = with_directions(repo, result.changes)
    return result


def direction(sub_repo: Path, old: str, new: str) -> Direction:
    """How a gitlink moved, judged in the submodule's own history.

    ``forward``: new descends from old; ``backward``: new is an ancestor of old (a
    revert of the bump); ``sideways``: neither (e.g. after a force-push in the
    submodule); ``unknown``: the submodule is not initialized or lacks a commit.
    """
    if not initialized(sub_repo):
        return "unknown"
    result = g.git(sub_repo, "merge-base", old, new, check=False)
    if result.returncode == 1:
        return "sideways"  # both commits exist, no common history
    if result.returncode != 0:
        return "unknown"
    base = result.stdout.decode().strip()
    if base == old:
        return "forward"
    if base == new:
        return "backward"
    return "sideways"


def with_directions(repo: Path, changes: list[Change]) -> list[Change]:
    """Fill ``direction`` for modified and moved submodules, concurrently.

    Only initialized submodules cost a process; the others are ``unknown`` at once.
    """
    todo = changecore.pending_directions(changes)
    if not todo:
        return changes

    def judge(change: Change) -> Direction:
        assert change.old_commit and change.new_commit
        sub = repo / change.path
        if not initialized(sub) and change.old_path:
            sub = repo / change.old_path
        return direction(sub, change.old_commit, change.new_commit)

    live = [
        c
        for c in todo
        if initialized(repo / c.path) or (c.old_path and initialized(repo / c.old_path))
    ]
    found: dict[str, Direction] = {c.path: "unknown" for c in todo}
    if live:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(8, len(live))) as pool:
            for change, verdict in zip(live, pool.map(judge, live), strict=True):
                found[change.path] = verdict
    return changecore.with_directions(changes, found)


def _load_base(repo: Path, rng: Range, head_product: Product) -> Product:
    if rng.base is None:
        return Product(None, {})
    ids = rng.base_ids
    if ids is None:
        found = g.resolve(repo, [f"{rng.base}:{MANIFESTS_DIR}", f"{rng.base}:{SETTINGS_FILE}"])
        ids = _ids(found, 0)
    if ids[0] is None and rng.manifests_from is not None:
        return borrow(repo, rng, rng.base, None)
    if ids == rng.head_ids and head_product.manifests == rng.head:
        return Product(
            rng.base, head_product.entries, head_product.settings_data, head_product.target_entries
        )
    return load_product(repo, rng.base, strict=False, cache_dir=cache_dir(repo), tree_ids=ids)


def _changeset(
    repo: Path, rng: Range, raw: list[g.RawChange], product: Product, base_product: Product
) -> ChangeSet:
    names = None
    if changecore.moves_possible(raw) and rng.base is not None:
        names = (g.submodule_names(repo, rng.base), g.submodule_names(repo, rng.head))
    found = changecore.analyse(raw, product.side(), base_product.side(), product.graph, names)
    return ChangeSet(
        base=rng.base,
        head=rng.head,
        changes=found.changes,
        manifest_changes=found.manifest_changes,
        affected=found.affected,
        waves=found.waves,
        unmanaged=found.unmanaged,
        product=product,
        base_product=base_product,
        reasons=found.reasons,
    )
