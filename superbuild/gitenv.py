"""The environment of superbuild's own git commands, and the repository a folder is in:
imports only :mod:`os`, so the lean paths can start git before they import anything else."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # no typing import: this module is on changed's lean path
if TYPE_CHECKING:
    from collections.abc import Mapping

# Variables git sets for hooks or that point git at another repository.  Strip them so
# that ``git -C <submodule>`` talks to the submodule even when run from a hook.
_KEEP_GIT_VARS = frozenset(
    {
        "GIT_EXEC_PATH",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_SSL_CAINFO",
        "GIT_SSL_NO_VERIFY",
        "GIT_CONFIG_COUNT",
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_NOSYSTEM",
        "GIT_CONFIG_SYSTEM",
        "GIT_HTTP_PROXY_AUTHMETHOD",
        "GIT_ALLOW_PROTOCOL",
        "GIT_ASKPASS",
        "GIT_TERMINAL_PROMPT",
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_AUTHOR_DATE",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "GIT_COMMITTER_DATE",
        "GIT_TRACE",
    }
)


def git_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of superbuild's own git commands: ``base`` (default ``os.environ``)
    without the variables that point git at another repository (``GIT_DIR``,
    ``GIT_WORK_TREE``, ``GIT_INDEX_FILE``... as a hook gets them), keeping those that
    configure it (:data:`_KEEP_GIT_VARS`, ``GIT_CONFIG_KEY_<n>``), with ``LC_ALL=C``."""
    env = dict(os.environ if base is None else base)
    for key in list(env):
        if key.startswith("GIT_") and not (
            key in _KEEP_GIT_VARS
            or key.startswith("GIT_CONFIG_KEY_")
            or key.startswith("GIT_CONFIG_VALUE_")
        ):
            del env[key]
    env["LC_ALL"] = "C"
    return env


def repository_top(start: str) -> tuple[str, bool] | None:
    """(the real path of the repository containing ``start``, whether it is bare), or None.

    The nearest folder upwards with a ``.git`` (folder or file), or with the layout of a
    bare repository (``HEAD`` and ``objects/``: CI mirrors).
    """
    here = os.path.realpath(start)
    while True:
        if os.path.exists(os.path.join(here, ".git")):
            return here, False
        if os.path.isfile(os.path.join(here, "HEAD")) and os.path.isdir(
            os.path.join(here, "objects")
        ):
            return here, True
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent
