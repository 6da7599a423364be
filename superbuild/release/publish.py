"""``release publish NAME DEST``: put a release where clients read it, atomically.

``DEST/<name>/`` is assembled under a hidden name in ``DEST`` (hard links when ``DEST``
is on the pool's filesystem, copies otherwise), synced, and renamed into place; then
``DEST/current`` is switched to it by making a new symlink under a temporary name and
renaming it over the old one.  A yum client reading ``DEST/current/...`` sees the old
release or the new one, never half of either; a killed publish leaves only a hidden
folder, which the next publish removes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from superbuild import layout
from superbuild.release.compose import (
    ReleaseError,
    fsync_dir,
    fsync_tree,
    locked,
    read_release,
    remove_dead_temps,
    temp_name,
)
from superbuild.release.pool import link_or_copy

CURRENT = "current"


def _copy_tree(src: Path, dest: Path) -> None:
    """Copy (hard link where possible) the tree ``src`` to ``dest``, stopping at the first
    error (``shutil.copytree`` goes on and raises every failure in one message)."""
    for top, _dirs, files in os.walk(src):
        here = dest / Path(top).relative_to(src)
        here.mkdir()
        for name in files:
            link_or_copy(Path(top) / name, here / name)


def publish(repo: Path, name: str, dest: Path) -> Path:
    """Publish release ``name`` to ``dest`` (created if absent); ``dest/name``.

    Publishing a release that ``dest`` already has only switches ``current`` to it.
    """
    root = layout.releases_root(repo)
    read_release(root, name)
    with locked(root):  # a delete meanwhile would take files from under the copy
        return _publish(root, name, dest)


def _publish(root: Path, name: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    final = dest / name
    remove_dead_temps(dest)
    if final.exists() and not (final / "release.json").is_file():
        raise ReleaseError(f"{final} exists and is not a release: move it away")
    if not final.exists():
        tmp = dest / temp_name(name)
        try:
            _copy_tree(root / name, tmp)
            fsync_tree(tmp)
            os.rename(tmp, final)  # noqa: PTH104 - refuses to replace a folder
            fsync_dir(dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    link = dest / temp_name(CURRENT)
    link.unlink(missing_ok=True)
    link.symlink_to(name)
    try:
        link.replace(dest / CURRENT)
    except OSError as exc:
        link.unlink(missing_ok=True)
        raise ReleaseError(
            f"{dest / CURRENT}: cannot be replaced by a symlink ({exc.strerror}): move it away"
        ) from None
    fsync_dir(dest)
    return final
