"""Remove the logs (.superbuild/logs/<run>) and scratch (.superbuild/work/<run>) of old
runs, keeping the newest N (--keep N, else keep_runs: in superbuild.yaml, else 20).

It takes the build lock, as superbuild build does: it never runs next to a build.
The build state (last builds, build keys) and the output repository are kept.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from superbuild.cleanup import DEFAULT_KEEP_RUNS, clean
from superbuild.commands import plural, superproject
from superbuild.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--keep",
        type=int,
        metavar="N",
        help=f"runs to keep, newest first (default: settings keep_runs, else {DEFAULT_KEEP_RUNS})",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print what would be removed, remove nothing"
    )


def keep_runs(repo: Path) -> int:
    """Settings ``keep_runs:`` at HEAD (the default before the first commit)."""
    from superbuild import git as g
    from superbuild.changes import load_head, resolve_range

    if g.resolve(repo, ["HEAD^{commit}"]) == [None]:
        return DEFAULT_KEEP_RUNS
    product, _links = load_head(repo, resolve_range(repo, None, "HEAD"))
    return product.settings.keep_runs


def run(args: argparse.Namespace) -> int:
    from superbuild.state import BuildLock

    repo = superproject(args)
    keep = args.keep if args.keep is not None else keep_runs(repo)
    if keep < 0:
        raise UsageError(f"--keep must be at least 0, not {keep}")
    with BuildLock(repo, "clean"):
        done = clean(repo, keep, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for path in done.paths:
        print(f"{verb} {path}")
    print(
        f"{verb} {plural(len(done.runs), 'run')}, kept {plural(len(done.kept), 'run')}",
        file=sys.stderr,
    )
    return 0
