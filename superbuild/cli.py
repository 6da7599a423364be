"""The ``superbuild`` command line: parse arguments, call the library, map errors to exit codes.

Exit codes: 0 ok, 1 a check or build failed, 2 bad input or usage (or a missing tool),
3 an unexpected error (a bug), 130 interrupted.  Verbs import their modules lazily so
that ``superbuild changed --format json`` starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence

from superbuild import __version__
from superbuild.errors import EXIT_BUG, EXIT_INTERRUPTED, SuperbuildError

PROG = "superbuild"


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_repo(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-C",
        dest="repo",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="run as if started in DIR (the superproject); default: the current directory",
    )


def _add_range(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--base",
        metavar="REV",
        help="compare against the merge-base of REV and --head (default: head's first parent); "
        "'green': the last green commit of this branch (superbuild mark-green)",
    )
    p.add_argument(
        "--since-last-success",
        action="store_true",
        help="affected = packages whose recorded commit differs from their last successful "
        "build (the build state), plus their dependents",
    )
    p.add_argument(
        "--head", metavar="REV", default="HEAD", help="the commit to analyse (default: HEAD)"
    )


def _add_selection(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("package selection (as in colcon)")
    group.add_argument(
        "--all", action="store_true", help="every package, not only the affected ones"
    )
    group.add_argument(
        "--packages-select", nargs="+", default=[], metavar="P", help="only these packages"
    )
    group.add_argument(
        "--packages-up-to",
        nargs="+",
        default=[],
        metavar="P",
        help="these packages and everything they require, transitively",
    )
    group.add_argument(
        "--packages-above",
        nargs="+",
        default=[],
        metavar="P",
        help="these packages and everything that requires them, transitively",
    )
    group.add_argument(
        "--packages-skip",
        nargs="+",
        default=[],
        metavar="P",
        help="leave these packages out (their dependents still build)",
    )


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``only``, the options of that one verb alone.

    Every verb is listed either way; defining the options of the other nine costs a few
    milliseconds that ``superbuild changed`` on every push need not pay.
    """
    parser = _Parser(
        prog=PROG,
        description="Build a product made of many git submodules: what changed, in what order, built in parallel.",
        epilog="Exit codes: 0 ok, 1 a check or build failed, 2 bad input or usage, 3 a bug, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_repo(parser)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    verbs.required = True

    p = verbs.add_parser("changed", help="which submodules, manifests and packages changed")
    if only in (None, "changed"):
        _add_repo(p)
        _add_range(p)
        p.add_argument(
            "--format",
            choices=["text", "json", "github", "lines"],
            default="text",
            help="text (people), json, github ($GITHUB_OUTPUT packages= and waves=), "
            "lines (one affected package per line)",
        )
        p.add_argument("--why", metavar="PACKAGE", help="explain why PACKAGE is affected")
        p.add_argument(
            "--exit-code", action="store_true", help="exit 1 when a package is affected, else 0"
        )

    p = verbs.add_parser("graph", help="the dependency graph of --head")
    if only in (None, "graph"):
        _add_repo(p)
        p.add_argument(
            "--head", metavar="REV", default="HEAD", help="the commit to read (default: HEAD)"
        )
        p.add_argument("--format", choices=["text", "json", "dot", "mermaid"], default="text")

    p = verbs.add_parser("plan", help="what a build would do, wave by wave, without building")
    if only in (None, "plan"):
        _add_repo(p)
        _add_range(p)
        _add_selection(p)
        p.add_argument("--format", choices=["text", "json"], default="text")

    p = verbs.add_parser("build", help="build the selected packages in dependency order")
    if only in (None, "build"):
        _add_repo(p)
        _add_range(p)
        _add_selection(p)
        p.add_argument(
            "-j",
            "--jobs",
            type=int,
            metavar="N",
            help="packages built at a time (default: settings jobs, else the CPU count)",
        )
        p.add_argument(
            "--builder",
            choices=["rpmbuild", "mock"],
            help="rpm pipeline: what builds binary RPMs "
            "(default: the manifest or settings, else mock if installed, else rpmbuild)",
        )
        p.add_argument(
            "--output",
            metavar="DIR",
            help="the output repository (default: settings output, else .superbuild/output)",
        )
        mode = p.add_mutually_exclusive_group()
        mode.add_argument(
            "--keep-going",
            action="store_true",
            help="after a failure, build what does not depend on it (the default)",
        )
        mode.add_argument(
            "--fail-fast", action="store_true", help="stop everything at the first failure"
        )
        p.add_argument("--report", metavar="FILE", help="write a JSON report to FILE")
        p.add_argument("--junit", metavar="FILE", help="write a JUnit XML report to FILE")
        p.add_argument("--dry-run", action="store_true", help="print the plan and build nothing")
        p.add_argument(
            "--retry-failed",
            action="store_true",
            help="rebuild what the last run did not finish (failed, skipped, cancelled)",
        )
        p.add_argument(
            "--executor",
            choices=["local", "dask"],
            help="where jobs run (default: $SUPERBUILD_EXECUTOR, else executor: in superbuild.yaml, else local)",
        )
        p.add_argument(
            "--scheduler-address",
            metavar="ADDR",
            help="dask: the scheduler to connect to, e.g. tcp://10.0.0.5:8786 "
            "(default: $SUPERBUILD_SCHEDULER_ADDRESS, else scheduler_address: in superbuild.yaml, "
            "else an embedded LocalCluster)",
        )

    p = verbs.add_parser("status", help="each package: recorded commit, checkout, last build")
    if only in (None, "status"):
        _add_repo(p)
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = verbs.add_parser("hook", help="install, uninstall or run the git pre-push hook")
    if only in (None, "hook"):
        _add_repo(p)
        hook = p.add_subparsers(dest="hook_action", metavar="ACTION", parser_class=_Parser)
        hook.required = True
        h = hook.add_parser("install", help="install the pre-push hook (honours core.hooksPath)")
        _add_repo(h)
        h.add_argument(
            "--force", action="store_true", help="replace a hook superbuild did not write"
        )
        h = hook.add_parser("uninstall", help="remove the pre-push hook superbuild installed")
        _add_repo(h)
        h = hook.add_parser("run", help="run the pre-push checks (git calls this; reads stdin)")
        _add_repo(h)
        h.add_argument("remote", nargs="?", default="", help="the remote's name (from git)")
        h.add_argument("url", nargs="?", default="", help="the remote's URL (from git)")
        h.add_argument(
            "--remote-check",
            action="store_true",
            help="ask each submodule's remote (git ls-remote) instead of remote-tracking refs",
        )

    p = verbs.add_parser(
        "mark-green", help="record --head as the last green commit of its branch (a git ref)"
    )
    if only in (None, "mark-green"):
        _add_repo(p)
        p.add_argument(
            "--head", metavar="REV", default="HEAD", help="the green commit (default: HEAD)"
        )
        p.add_argument("--branch", metavar="NAME", help="the branch (default: the current branch)")
        p.add_argument("--push", metavar="REMOTE", help="also push the ref to REMOTE")

    return parser


@contextlib.contextmanager
def error_handler() -> Iterator[list[int]]:
    """Turn exceptions into one-line messages and exit codes (stored in the yielded list)."""
    code = [0]
    try:
        yield code
    except SuperbuildError as exc:
        for line in exc.lines:
            print(f"{PROG}: error: {line}", file=sys.stderr)
        code[0] = exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        code[0] = EXIT_INTERRUPTED
    except BrokenPipeError:
        # `superbuild ... | head`: stop quietly, like other Unix tools.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115, PTH123 - replaces a closed stream
        code[0] = 0
    except Exception as exc:
        code[0] = EXIT_BUG
        _report_bug(exc)


def _report_bug(exc: BaseException) -> None:
    import tempfile
    import traceback

    text = f"superbuild {__version__}, python {sys.version.split()[0]}\n" + "".join(
        traceback.format_exception(exc)
    )
    if os.environ.get("SUPERBUILD_DEBUG"):
        print(text, file=sys.stderr)
        return
    fd, path = tempfile.mkstemp(prefix="superbuild-crash-", suffix=".log")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    print(
        f"{PROG}: unexpected error ({type(exc).__name__}: {exc}); this is a bug: "
        f"the traceback is in {path}",
        file=sys.stderr,
    )


def _verb_of(argv: Sequence[str]) -> str | None:
    """The verb of a command line (the first word that is not an option or -C's value)."""
    words = iter(argv)
    for word in words:
        if word == "-C":
            next(words, None)
        elif not word.startswith("-"):
            return word if word in _VERBS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=_verb_of(argv))
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = _VERBS[args.verb]
    start = os.getcwd()  # noqa: PTH109 - a str is all chdir needs
    with error_handler() as code:
        repo = getattr(args, "repo", None)
        if repo:
            # -C DIR: as if started in DIR (as git -C), so relative paths such as
            # --report FILE are relative to DIR too.
            try:
                os.chdir(repo)
            except OSError as exc:
                raise SuperbuildError(f"-C {repo}: {exc.strerror}") from None
            args.repo = "."
        try:
            code[0] = handler(args)
        finally:
            os.chdir(start)
    return code[0]


def _changed(args: argparse.Namespace) -> int:
    from superbuild.commands.changed import run

    return run(args)


def _graph(args: argparse.Namespace) -> int:
    from superbuild.commands.graph import run

    return run(args)


def _plan(args: argparse.Namespace) -> int:
    from superbuild.commands.plan import run

    return run(args)


def _build(args: argparse.Namespace) -> int:
    from superbuild.commands.build import run

    return run(args)


def _status(args: argparse.Namespace) -> int:
    from superbuild.commands.status import run

    return run(args)


def _hook(args: argparse.Namespace) -> int:
    from superbuild.commands.hook import run

    return run(args)


def _mark_green(args: argparse.Namespace) -> int:
    from superbuild.commands.green import run

    return run(args)


_VERBS: dict[str, Callable[[argparse.Namespace], int]] = {
    "status": _status,
    "hook": _hook,
    "mark-green": _mark_green,
    "build": _build,
    "changed": _changed,
    "graph": _graph,
    "plan": _plan,
}
