"""Change detection: which submodules and manifests changed between two commits.

The cost on a warm run is one ``cat-file --batch-check`` (resolves head, base and the
manifests' object ids), one ``ls-tree`` (the gitlinks of head, to validate manifest
paths), one ``diff-tree -r -z`` and a cache read; ``.gitmodules`` is read only when a
range both adds and deletes gitlinks (to recognise moves).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from superbuild import changecore
from superbuild import git as g
from superbuild.changecore import Side
from superbuild.ci import GREEN, resolve_green
from superbuild.errors import GitError, UsageError
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
        return changecore.report(self.base, self.head, self.changes, analysis)

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


def _ids(found: list[tuple[str, str] | None], i: int) -> tuple[str | None, str | None]:
    tree, settings = found[i], found[i + 1]
    return (
        tree[0] if tree and tree[1] == "tree" else None,
        settings[0] if settings and settings[1] == "blob" else None,
    )


def resolve_range(repo: Path, base: str | None, head: str = "HEAD") -> Range:
    """Resolve ``--base``/``--head``: base is merge-base(base, head), else head's first parent."""
    for option, rev in (("--head", head), ("--base", base)):
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
    found = g.resolve(repo, specs)
    if found[0] is None:
        raise GitError(
            f"unknown --head revision {head!r}: no such commit in {repo} "
            "(check the name, or fetch it: git fetch origin)"
        )
    head_oid = found[0][0]
    if base is None:
        parent = found[3][0] if found[3] else None
        return Range(
            parent,
            head_oid,
            _ids(found, 1),
            _ids(found, 4) if parent else (None, None),
            warnings,
        )
    if found[6] is None:
        raise GitError(
            f"unknown --base revision {base!r}: no such commit in {repo} "
            "(check the name, or fetch it: git fetch origin)"
        )
    base_oid = g.merge_base(repo, found[6][0], head_oid)
    return Range(base_oid, head_oid, _ids(found, 1), None, warnings)


def cache_dir(repo: Path) -> Path:
    return g.git_dir(repo) / "superbuild"


def load_head(repo: Path, rng: Range) -> tuple[Product, dict[str, str]]:
    """The product at head, validated (manifest paths must be gitlinks), and its gitlinks."""
    links = g.gitlinks(repo, rng.head)
    product = load_product(
        repo, rng.head, cache_dir=cache_dir(repo), tree_ids=rng.head_ids, links=links
    )
    return product, links


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
    product = load_product(
        repo, rng.head, cache_dir=cache_dir(repo), tree_ids=rng.head_ids, links=links
    )
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
    if ids == rng.head_ids:
        return Product(rng.base, head_product.entries, head_product.settings_data)
    return load_product(repo, rng.base, strict=False, cache_dir=cache_dir(repo), tree_ids=ids)


def side(product: Product) -> Side:
    """A product as :func:`superbuild.changecore.analyse` reads it."""
    return Side(product._by_path, {n: (e.blob, e.digest) for n, e in product.entries.items()})


def _changeset(
    repo: Path, rng: Range, raw: list[g.RawChange], product: Product, base_product: Product
) -> ChangeSet:
    names = None
    if changecore.moves_possible(raw) and rng.base is not None:
        names = (g.submodule_names(repo, rng.base), g.submodule_names(repo, rng.head))
    found = changecore.analyse(raw, side(product), side(base_product), product.graph, names)
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
