"""Exceptions and exit codes.

Every problem a user can fix is a :class:`SuperbuildError`: the CLI prints its
message (one line per problem, no traceback) and exits with its ``exit_code``.
"""

from __future__ import annotations

from collections.abc import Iterable

EXIT_OK = 0
EXIT_FAILED = 1  # a check or a build failed
EXIT_USAGE = 2  # bad input, bad usage, missing tool
EXIT_BUG = 3  # an unexpected error: a bug in superbuild
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM


class SuperbuildError(RuntimeError):
    """A problem the user can fix; ``lines`` holds one line per problem."""

    exit_code = EXIT_USAGE

    def __init__(self, *lines: str) -> None:
        self.lines: tuple[str, ...] = tuple(lines) or ("unknown error",)
        super().__init__("\n".join(self.lines))

    @classmethod
    def many(cls, lines: Iterable[str]) -> SuperbuildError:
        return cls(*lines)


class UsageError(SuperbuildError):
    """Bad command-line usage (unknown package name, conflicting options...)."""


class ManifestError(SuperbuildError):
    """A manifest or the settings file is invalid."""


class CycleError(ManifestError):
    """The dependency graph has a cycle."""


class GitError(SuperbuildError):
    """A git command failed or a revision does not exist."""


class ToolMissingError(SuperbuildError):
    """A program superbuild needs is not installed."""


class Interrupted(SuperbuildError):
    """The run was interrupted by Ctrl-C or SIGTERM (exit 130)."""

    exit_code = EXIT_INTERRUPTED


#: errno values that mean the file system is full (a quota is full too).
_FULL = (28, 122)  # ENOSPC, EDQUOT (Linux)


def disk_full(exc: BaseException | None) -> str | None:
    """The one line for a full file system, if ``exc`` (or what it was raised from) is one.

    Names the file being written when the error carries it, and what to do.  Used to stop
    a whole run on the first full disk: every later job would fail the same way, and a
    half-written output is what the run must not leave.
    """
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError) and exc.errno in _FULL:
            where = exc.filename if isinstance(exc.filename, str) else None
            target = f" writing {where}" if where else ""
            return f"no space left on device{target}: free space on that file system and run again"
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None
