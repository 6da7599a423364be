"""Install and uninstall the git pre-push hook.

``superbuild hook install`` writes :func:`hook_script` (the same text as ``hooks/pre-push``
in the source tree, with the interpreter filled in) into the hooks directory git uses
(``git rev-parse --git-path hooks``: honours ``core.hooksPath``).  A hook is ours when it
carries :data:`MARKER`: install replaces only ours (``--force`` keeps another one aside),
uninstall removes only ours and puts the kept one back.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from superbuild import git as g
from superbuild.errors import SuperbuildError
from superbuild.fileio import write_text_atomic

HOOK_NAME = "pre-push"
#: The line that makes a hook file ours: install replaces it, uninstall removes it.
MARKER = "# superbuild-managed-hook: pre-push"
#: Where ``install --force`` keeps a hook superbuild did not write (uninstall restores it).
BACKUP_SUFFIX = ".before-superbuild"
#: ``SUPERBUILD_SKIP_HOOK=1`` skips the checks (as ``git push --no-verify`` does).
SKIP_VARIABLE = "SUPERBUILD_SKIP_HOOK"

_PYTHON_LINE = "INSTALL_PYTHON="

_TEMPLATE = """\
#!/bin/sh
# superbuild-managed-hook: pre-push
# The git pre-push hook of superbuild (docs/hooks.md): refuses a push whose superproject
# commits record unpublished submodule commits, invalid manifests or failing `verify`s.
# `superbuild hook install` writes this file with INSTALL_PYTHON set to the interpreter
# superbuild runs with (so an unactivated virtualenv works); `superbuild hook uninstall`
# removes it.  Bypass once: SUPERBUILD_SKIP_HOOK=1 git push ...  (or git push --no-verify)
INSTALL_PYTHON=''

if [ "${SUPERBUILD_SKIP_HOOK:-}" = 1 ]; then
    echo "superbuild: SUPERBUILD_SKIP_HOOK=1: pre-push checks skipped" >&2
    exit 0
fi
if [ -n "$INSTALL_PYTHON" ] && [ -x "$INSTALL_PYTHON" ]; then
    exec "$INSTALL_PYTHON" -m superbuild hook run "$@"
fi
if command -v superbuild >/dev/null 2>&1; then
    if [ -n "$INSTALL_PYTHON" ]; then
        echo "superbuild: $INSTALL_PYTHON not found: using superbuild from PATH" \\
            "(reinstall the hook: superbuild hook install)" >&2
    fi
    exec superbuild hook run "$@"
fi
echo "superbuild: cannot run the pre-push hook: ${INSTALL_PYTHON:-python} not found and" \\
    "superbuild is not on PATH: reinstall it (superbuild hook install)," \\
    "or bypass once: SUPERBUILD_SKIP_HOOK=1 git push" >&2
exit 1
"""


def hook_script(python: str | None = None) -> str:
    """The hook's text; ``python``: the interpreter it runs superbuild with (None: PATH)."""
    value = shlex.quote(python) if python else "''"
    lines = [
        f"{_PYTHON_LINE}{value}" if line.startswith(_PYTHON_LINE) else line
        for line in _TEMPLATE.split("\n")
    ]
    return "\n".join(lines)


def hooks_dir(repo: Path) -> Path:
    """The directory git runs hooks from (``core.hooksPath`` or ``$GIT_DIR/hooks``)."""
    out = g.git(repo, "rev-parse", "--git-path", "hooks").stdout
    return repo / g.decode_path(out.rstrip(b"\n"))


def is_ours(path: Path) -> bool:
    """True when ``path`` is a hook superbuild wrote (it carries :data:`MARKER`)."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return MARKER.encode() in (line.rstrip(b"\r") for line in data.split(b"\n"))


@dataclass(frozen=True, slots=True)
class Installed:
    path: Path
    updated: bool  # an older hook of ours was replaced
    backup: Path | None  # where a foreign hook went (``--force``)


def install(repo: Path, *, force: bool = False, python: str | None = None) -> Installed:
    """Write the pre-push hook; a hook superbuild did not write needs ``force``.

    ``python`` defaults to the running interpreter (``sys.executable``, unresolved: a
    virtualenv's ``bin/python`` symlink is what makes the venv's packages importable).
    """
    if not force and not _has_manifests(repo):
        raise SuperbuildError(
            f"{repo} has no manifests/ folder at HEAD, so it is not a superbuild superproject "
            "(the hook would refuse every push): run this in the superproject, "
            "or rerun with --force to install anyway"
        )
    target = hooks_dir(repo) / HOOK_NAME
    backup: Path | None = None
    exists = target.exists() or target.is_symlink()
    ours = exists and is_ours(target)
    if exists and not ours:
        if not force:
            raise SuperbuildError(
                f"{target} exists and was not written by superbuild: "
                f"rerun with --force to replace it (it is kept as {HOOK_NAME}{BACKUP_SUFFIX})"
            )
        backup = target.with_name(HOOK_NAME + BACKUP_SUFFIX)
        target.replace(backup)
    write_text_atomic(target, hook_script(python or sys.executable), mode=0o755, make_parents=True)
    return Installed(target, ours, backup)


def _has_manifests(repo: Path) -> bool:
    found = g.git(repo, "ls-tree", "-z", "HEAD", "--", "manifests", check=False)
    return found.returncode == 0 and b" tree " in found.stdout


def uninstall(repo: Path) -> tuple[Path, Literal["removed", "absent", "foreign"], Path | None]:
    """Remove our hook (never another one): (hook path, what was found, restored backup)."""
    target = hooks_dir(repo) / HOOK_NAME
    if not (target.exists() or target.is_symlink()):
        return target, "absent", None
    if not is_ours(target):
        return target, "foreign", None
    target.unlink()
    backup = target.with_name(HOOK_NAME + BACKUP_SUFFIX)
    if backup.exists() or backup.is_symlink():
        backup.replace(target)
        return target, "removed", target
    return target, "removed", None
