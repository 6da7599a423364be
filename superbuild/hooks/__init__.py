"""The git pre-push hook (docs/hooks.md).

- :mod:`~superbuild.hooks.install`: the hook script, install and uninstall;
- :mod:`~superbuild.hooks.protocol`: what git (or pre-commit) tells the hook, and the
  commits a push publishes;
- :mod:`~superbuild.hooks.check`: :func:`check_push`, the checks and their :class:`Report`;
- :mod:`~superbuild.hooks.verify`: a package's ``verify`` on an export of the commit.
"""

from __future__ import annotations

from superbuild.hooks.check import Report, check_push
from superbuild.hooks.install import (
    HOOK_NAME,
    MARKER,
    SKIP_VARIABLE,
    Installed,
    hook_script,
    hooks_dir,
    install,
    is_ours,
    uninstall,
)
from superbuild.hooks.protocol import RefUpdate, parse_refs, pre_commit_refs

__all__ = [
    "HOOK_NAME",
    "MARKER",
    "SKIP_VARIABLE",
    "Installed",
    "RefUpdate",
    "Report",
    "check_push",
    "hook_script",
    "hooks_dir",
    "install",
    "is_ours",
    "parse_refs",
    "pre_commit_refs",
    "uninstall",
]
