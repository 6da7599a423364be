"""The ``superbuild`` command line: pick the verb, import its module, map errors to exit codes.

Exit codes: 0 ok, 1 a check or build failed, 2 bad input or usage (or a missing tool),
3 an unexpected error (a bug), 130 interrupted.  Each verb is a module of
:mod:`superbuild.commands` with ``add_arguments(parser)`` and ``run(args) -> int``; only
the chosen verb's module is imported, so that ``superbuild changed --format json``
starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType

from superbuild import __version__
from superbuild.commands import add_repo
from superbuild.errors import EXIT_BUG, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, SuperbuildError

PROG = "superbuild"

#: verb -> (module of superbuild.commands, one-line help), in the order of ``--help``.
VERBS: dict[str, tuple[str, str]] = {
    "changed": ("changed", "which submodules, manifests and packages changed"),
    "graph": ("graph", "the dependency graph of --head"),
    "plan": ("plan", "what a build would do, wave by wave, without building"),
    "build": ("build", "build the selected packages in dependency order"),
    "init": ("init", "propose manifests/ for an existing superproject, from its specs"),
    "status": ("status", "each package: recorded commit, checkout, last build"),
    "release": ("release", "compose, list, diff and publish releases (yum repositories)"),
    "clean": ("clean", "remove the logs and scratch of old runs"),
    "hook": ("hook", "install, uninstall or run the git pre-push hook"),
    "mark-green": ("green", "record --head as the last green commit of its branch (a git ref)"),
}


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line, pointing to the right help, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def verb_module(verb: str) -> ModuleType:
    """The module of ``verb`` (imported now)."""
    return importlib.import_module(f"superbuild.commands.{VERBS[verb][0]}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``only``, the options of that one verb alone.

    Every verb is listed either way; the modules of the other verbs are not imported.
    """
    parser = _Parser(
        prog=PROG,
        description="Build a product made of many git submodules: what changed, in what order, built in parallel.",
        epilog="Exit codes: 0 ok, 1 a check or build failed, 2 bad input or usage, 3 a bug, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_repo(parser)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    verbs.required = True
    for verb, (_module, help_) in VERBS.items():
        if only not in (None, verb):
            verbs.add_parser(verb, help=help_)
            continue
        module = verb_module(verb)
        p = verbs.add_parser(
            verb,
            help=help_,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_repo(p)
        module.add_arguments(p)
    return parser


def _innermost(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> argparse.ArgumentParser:
    """The parser of the (sub-)verb ``args`` ran: ``superbuild hook run``'s, not ``superbuild``'s."""
    while True:
        action = next(
            (a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None
        )
        chosen = getattr(args, action.dest, None) if action is not None else None
        if action is None or chosen is None:
            return parser
        parser = action.choices[chosen]


@contextlib.contextmanager
def error_handler() -> Iterator[list[int]]:
    """Turn exceptions into one-line messages and exit codes (stored in the yielded list)."""
    code = [0]
    try:
        yield code
    except SuperbuildError as exc:
        for line in exc.lines:
            from superbuild.text import safe_text

            print(f"{PROG}: error: {safe_text(line)}", file=sys.stderr)
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
        from superbuild.errors import disk_full

        if (full := disk_full(exc)) is not None:
            # Not a bug: the machine's disk is full (exit 1, like a build that fails).
            from superbuild.text import safe_text

            print(f"{PROG}: error: {safe_text(full)}", file=sys.stderr)
            code[0] = EXIT_FAILED
            if os.environ.get("SUPERBUILD_DEBUG"):
                _report_bug(exc)
            return
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


def _first_word(argv: Sequence[str]) -> str | None:
    """The first word of a command line that is not an option or -C's value."""
    words = iter(argv)
    for word in words:
        if word == "--":
            return next(words, None)
        if word == "-C":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def _verb_of(argv: Sequence[str]) -> str | None:
    """The verb of a command line, if it names one."""
    word = _first_word(argv)
    return word if word in VERBS else None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verb = _verb_of(argv)
    parser = build_parser(only=verb)
    word = _first_word(argv)
    if verb is None and word is not None:
        import difflib

        close = difflib.get_close_matches(word, VERBS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (verbs: {', '.join(VERBS)})"
        parser.error(f"unknown verb {word!r}{hint}")
    args, extra = parser.parse_known_args(argv)
    if extra:
        # An option the verb does not know: point to the verb's help, not the top one.
        _innermost(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
    start = os.getcwd()  # noqa: PTH109 - a str is all chdir needs
    with error_handler() as code:
        module = verb_module(args.verb)
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
            code[0] = module.run(args)
        finally:
            os.chdir(start)
    return code[0]
