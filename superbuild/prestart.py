"""Start the one slow git command of a verb before the verb's code is imported.

``superbuild status`` spends most of its time in one ``git status`` of the superproject
(a submodule's dirtiness is asked in that submodule).  Started from
:func:`superbuild.__main__.entrypoint` before argparse, the process machinery and the
manifests' parser are imported, the imports run beside it on the other core instead of
before it.  The verb then :func:`take` s the process it would have started (the same
command in the same folder) or starts its own; whatever is not taken is stopped and
reaped by :func:`discard` when the command ends.

Only :mod:`os` is imported here; the child gets stdin from /dev/null, its own process
group and the environment of :func:`superbuild.gitenv.git_env`.
"""

from __future__ import annotations

import os

#: The ``git status`` of ``superbuild status`` (:func:`superbuild.status.submodule_flags`).
STATUS_ARGS = (
    "status",
    "--porcelain=v2",
    "-z",
    "--ignore-submodules=none",
    "--untracked-files=no",
    "--no-renames",
)


class Started:
    """A git process started for a verb: pid, the read ends of its stdout and stderr,
    its argv, and when it started (``time.monotonic``)."""

    __slots__ = ("argv", "err", "out", "pid", "started")

    def __init__(self, pid: int, out: int, err: int, argv: tuple[str, ...], started: float):
        self.pid, self.out, self.err, self.argv, self.started = pid, out, err, argv, started


#: (the folder, the git arguments) -> the process started for them.
_STARTED: dict[tuple[str, tuple[str, ...]], Started] = {}


def start(top: str, args: tuple[str, ...]) -> None:
    """Start ``git -C top args`` (``top``: a real path) unless it is started already."""
    import time

    from superbuild.gitenv import git_env

    key = (top, args)
    if key in _STARTED:
        return
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    argv = ("git", "-C", top, *args)
    try:
        pid = os.posix_spawnp(
            "git",
            argv,
            git_env(),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, out_w, 1),
                (os.POSIX_SPAWN_DUP2, err_w, 2),
                (os.POSIX_SPAWN_CLOSE, out_r),
                (os.POSIX_SPAWN_CLOSE, err_r),
            ],
            setpgroup=0,
        )
    except OSError:
        os.close(out_r)
        os.close(err_r)
        return  # no git to start: the verb starts its own and reports why
    finally:
        os.close(out_w)
        os.close(err_w)
    _STARTED[key] = Started(pid, out_r, err_r, argv, time.monotonic())


def take(top: str, args: tuple[str, ...]) -> Started | None:
    """The process started for ``git -C top args``, now the caller's to read and reap."""
    return _STARTED.pop((os.path.realpath(top), args), None)


def discard() -> None:
    """Stop and reap every process started here that no verb took."""
    if not _STARTED:
        return
    import signal

    for started in _STARTED.values():
        os.close(started.out)
        os.close(started.err)
        try:
            os.killpg(started.pid, signal.SIGKILL)
        except ProcessLookupError:
            os.kill(started.pid, signal.SIGKILL)  # a zombie: not reaped yet, still ours
        os.waitpid(started.pid, 0)
    _STARTED.clear()


def toplevel(start: str) -> str | None:
    """The real path of the work tree containing ``start``, as
    :func:`superbuild.git.find_toplevel` finds it; None for a bare repository or none."""
    from superbuild.gitenv import repository_top

    found = repository_top(start)
    return found[0] if found is not None and not found[1] else None


def status_argv(argv: list[str]) -> str | None:
    """The folder of a plain ``superbuild [-C DIR] status [--json]`` command line, or None
    for anything else (another verb, --help, an unknown option)."""
    folder = "."
    words = iter(argv)
    verb = False
    for word in words:
        if word == "status" and not verb:
            verb = True
        elif word == "--json" and verb:
            continue
        elif word == "-C":
            value = next(words, "")
            if not value or folder != ".":
                return None
            folder = value
        else:
            return None
    return folder if verb else None


def before_status(argv: list[str]) -> None:
    """Start the ``git status`` of a ``superbuild status`` command line, if it is one."""
    folder = status_argv(argv)
    if folder is None or os.environ.get("SUPERBUILD_NO_FAST_PATH"):
        return
    top = toplevel(folder)
    if top is not None:
        start(top, STATUS_ARGS)
