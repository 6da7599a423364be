"""Remove what old runs leave in ``.superbuild/``: logs (``logs/<run>``) and scratch
(``work/<run>``).

Both functions must run holding the build lock (:class:`superbuild.state.BuildLock`), so
that no running build loses its files: ``superbuild build`` calls
:func:`remove_stale_scratch` once it holds the lock, ``superbuild clean`` takes the lock
around :func:`clean`.  Run ids start with their start time (``YYYYmmdd-HHMMSS-xxxxxx``),
so the newest runs sort last.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from superbuild import layout, proc
from superbuild.package import Settings

#: Runs whose logs and scratch ``superbuild clean`` keeps (settings ``keep_runs:``).
DEFAULT_KEEP_RUNS: int = Settings.keep_runs


def _runs_in(folder: Path) -> dict[str, Path]:
    """The run folders directly under ``folder`` (not ``latest`` nor hidden entries)."""
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return {}
    return {
        p.name: p
        for p in entries
        if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
    }


def _remove(paths: Iterable[Path]) -> list[Path]:
    removed = []
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            removed.append(path)
    return removed


def remove_stale_scratch(repo: Path, running: str | None = None) -> list[Path]:
    """Delete the scratch folders (``.superbuild/work/<run>``) of runs that are not running.

    Call it holding the build lock: then only ``running`` (the caller's own run, if it has
    one yet) can be running, and every other scratch folder was left by a run that was
    killed (a run removes its own scratch when it ends).  Returns the folders removed.
    """
    stale = [p for run, p in sorted(_runs_in(layout.work_root(repo)).items()) if run != running]
    removed = _remove(stale)
    remove_dead_temp()  # and the temporary folders of processes that are gone
    return removed


#: A temporary folder superbuild names with its owner (:func:`superbuild.proc.owner_tag`):
#: ``superbuild-spec-p<pid>t<start>-XXXX``, ``superbuild-NAME-p<pid>t<start>-XXXX``.
_OWNED_TEMP = re.compile(r"superbuild-.+-p(\d+)t(\d+|x)-[A-Za-z0-9_]+")


def remove_dead_temp(root: Path | None = None) -> list[Path]:
    """Delete the temporary folders (in ``root``, the system's temporary folder by
    default) that a superbuild process named with its owner and that outlived it (a
    SIGKILLed build); only this user's, only folders.  Returns the folders removed."""
    top = Path(tempfile.gettempdir() if root is None else root)
    try:
        entries = list(top.iterdir())
    except OSError:
        return []
    dead = []
    for entry in entries:
        found = _OWNED_TEMP.fullmatch(entry.name)
        if found is None or proc.owner_alive(int(found[1]), found[2]):
            continue
        try:
            info = entry.lstat()
        except OSError:
            continue
        if entry.is_dir() and not entry.is_symlink() and info.st_uid == os.getuid():
            dead.append(entry)
    return _remove(dead)


@dataclass
class Cleaned:
    """What :func:`clean` removed (or, with ``dry_run``, would remove)."""

    runs: list[str] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def clean(repo: Path, keep: int, *, dry_run: bool = False) -> Cleaned:
    """Remove the logs and scratch of every run but the newest ``keep`` (call it holding
    the build lock).  ``logs/latest`` goes too when the run it names is removed.
    """
    if keep < 0:
        raise ValueError(f"keep must be at least 0, not {keep}")
    logs = _runs_in(layout.logs_root(repo))
    work = _runs_in(layout.work_root(repo))
    runs = sorted(set(logs) | set(work))
    cut = max(len(runs) - keep, 0)
    old, kept = runs[:cut], runs[cut:]
    paths = [d[run] for run in old for d in (logs, work) if run in d]
    done = Cleaned(runs=old, paths=paths, kept=kept)
    if dry_run:
        return done
    _remove(paths)
    latest = layout.logs_root(repo) / layout.LATEST
    if latest.is_symlink() and not latest.exists():
        latest.unlink()
    return done
