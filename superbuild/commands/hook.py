"""The git pre-push hook (docs/hooks.md): install it, uninstall it, or run its checks
(what git calls, with the refs to push on stdin).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from superbuild import hooks
from superbuild.commands import add_repo, superproject
from superbuild.errors import EXIT_FAILED, EXIT_OK, UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    hook = p.add_subparsers(dest="hook_action", metavar="ACTION")  # parsers of p's class
    hook.required = True
    h = hook.add_parser(
        "install",
        help="install the pre-push hook (honours core.hooksPath)",
        description="Install the pre-push hook (honours core.hooksPath); a hook superbuild "
        "did not write is moved aside only with --force (uninstall puts it back).",
    )
    add_repo(h)
    h.add_argument("--force", action="store_true", help="replace a hook superbuild did not write")
    h = hook.add_parser(
        "uninstall",
        help="remove the pre-push hook superbuild installed",
        description="Remove the pre-push hook superbuild installed, and put back the hook "
        "that was there before; a hook superbuild did not write is left alone.",
    )
    add_repo(h)
    h = hook.add_parser(
        "run",
        help="run the pre-push checks (git calls this; reads stdin)",
        description="Run the pre-push checks on the refs git gives on stdin (one "
        "'<local ref> <local sha> <remote ref> <remote sha>' line each). "
        "SUPERBUILD_SKIP_HOOK=1 skips them once.",
    )
    add_repo(h)
    h.add_argument("remote", nargs="?", default="", help="the remote's name (from git)")
    h.add_argument("url", nargs="?", default="", help="the remote's URL (from git)")
    h.add_argument(
        "--remote-check",
        action="store_true",
        help="ask each submodule's remote (git ls-remote) instead of remote-tracking refs",
    )


PREFIX = "superbuild:"


def _say(text: str) -> None:
    # Everything goes to stderr: git shows it next to its own push messages.
    from superbuild.text import safe_text

    print(f"{PREFIX} {safe_text(text)}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    action: Callable[[argparse.Namespace], int] = _ACTIONS[args.hook_action]
    return action(args)


def _install(args: argparse.Namespace) -> int:
    repo = superproject(args)
    done = hooks.install(repo, force=args.force)
    if done.backup is not None:
        _say(f"moved the previous hook to {done.backup} (uninstall puts it back)")
    verb = "updated" if done.updated else "installed"
    _say(f"{verb} the pre-push hook: {done.path} (runs {sys.executable} -m superbuild)")
    return EXIT_OK


def _uninstall(args: argparse.Namespace) -> int:
    repo = superproject(args)
    path, found, restored = hooks.uninstall(repo)
    if found == "absent":
        _say(f"no pre-push hook at {path}: nothing to remove")
    elif found == "foreign":
        _say(f"{path} was not written by superbuild: left alone")
    else:
        _say(f"removed the pre-push hook {path}")
        if restored is not None:
            _say(f"restored the hook that was there before superbuild's: {restored}")
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    if os.environ.get(hooks.SKIP_VARIABLE) == "1":
        _say(f"{hooks.SKIP_VARIABLE}=1: pre-push checks skipped")
        return EXIT_OK
    # Read every ref line before anything else runs (see superbuild.hooks.protocol).
    interactive = sys.stdin is None or sys.stdin.isatty()
    data = b"" if interactive else sys.stdin.buffer.read()
    refs = hooks.parse_refs(data)
    repo = superproject(args)
    remote = args.remote or os.environ.get("PRE_COMMIT_REMOTE_NAME", "")
    if not refs:
        refs = hooks.pre_commit_refs(repo, os.environ)
    if not refs and interactive:
        raise UsageError(
            "superbuild hook run reads the refs to push on stdin, one "
            "'<local ref> <local sha> <remote ref> <remote sha>' line each, as git gives "
            "its pre-push hook: install it with superbuild hook install"
        )
    report = hooks.check_push(repo, remote, refs, remote_check=args.remote_check)
    for line in report.warnings:
        _say(f"warning: {line}")
    for line in report.refusals:
        _say(f"refused: {line}")
    if report.refusals:
        count = len(report.refusals)
        _say(
            f"push refused ({count} problem{'' if count == 1 else 's'}; {report.summary()}): "
            f"fix them, or bypass once with {hooks.SKIP_VARIABLE}=1 git push (or --no-verify)"
        )
        return EXIT_FAILED
    _say(f"pre-push ok: {report.summary()}")
    return EXIT_OK


_ACTIONS: dict[str, Callable[[argparse.Namespace], int]] = {
    "install": _install,
    "uninstall": _uninstall,
    "run": _run,
}
