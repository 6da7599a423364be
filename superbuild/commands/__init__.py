"""One module per verb: each has ``add_arguments(parser)`` and ``run(args) -> int``.

A verb's module docstring is its help page's description.  The option groups several
verbs share (``-C``, the range options, colcon's package selection) are defined here,
once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from superbuild import git as g


def superproject(args: argparse.Namespace) -> Path:
    """The superproject the command works on (``-C DIR`` or the current directory)."""
    return g.find_toplevel(getattr(args, "repo", None) or ".")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def warn(*lines: str) -> None:
    """Warnings go to stderr, one line each, never mixed into JSON on stdout."""
    for line in lines:
        print(f"superbuild: warning: {line}", file=sys.stderr)


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 package``, ``2 packages``."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


# --------------------------------------------------------------------------- options


def add_repo(p: argparse.ArgumentParser) -> None:
    """``-C DIR``, accepted before and after the verb."""
    p.add_argument(
        "-C",
        dest="repo",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="run as if started in DIR (the superproject); default: the current directory",
    )


def add_head(p: argparse.ArgumentParser, what: str = "the commit to analyse") -> None:
    p.add_argument("--head", metavar="REV", default="HEAD", help=f"{what} (default: HEAD)")


def add_range(p: argparse.ArgumentParser) -> None:
    """``--base``, ``--since-last-success``, ``--head``: which packages are affected."""
    p.add_argument(
        "--base",
        metavar="REV",
        help="compare against the merge-base of REV and --head (default: head's first parent); "
        "'green': the last green commit of this branch (superbuild mark-green)",
    )
    p.add_argument(
        "--since-last-success",
        action="store_true",
        help="affected = packages whose build key (recorded commit, manifest entry, "
        "dependencies' keys) differs from their last successful build (the build state), "
        "plus their dependents",
    )
    add_head(p)
    add_manifests_from(p)


def add_manifests_from(p: argparse.ArgumentParser) -> None:
    """``--manifests-from REV``: history from before the manifests, judged by REV's."""
    p.add_argument(
        "--manifests-from",
        metavar="REV",
        help="judge commits that have no manifests/ folder by REV's manifests (e.g. the "
        "first commit that has them, or HEAD); paths are checked against the analysed commit",
    )


def add_targets(p: argparse.ArgumentParser) -> None:
    """``--target T`` (repeatable): only these targets of superbuild.yaml."""
    p.add_argument(
        "--target",
        action="append",
        metavar="T",
        help="only this target of superbuild.yaml targets: (repeatable; default: every target)",
    )


def add_selection(p: argparse.ArgumentParser) -> None:
    """colcon's package selection options."""
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
