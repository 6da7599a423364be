"""Record --head as the last green commit of its branch, in git itself
(refs/superbuild/green/<branch>), so that --base green finds it; --push shares it with
ephemeral CI machines.
"""

from __future__ import annotations

import argparse

from superbuild.ci import mark_green
from superbuild.commands import add_head, superproject


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_head(p, "the green commit")
    p.add_argument("--branch", metavar="NAME", help="the branch (default: the current branch)")
    p.add_argument("--push", metavar="REMOTE", help="also push the ref to REMOTE")


def run(args: argparse.Namespace) -> int:
    marked = mark_green(superproject(args), args.head, branch=args.branch, push=args.push)
    print(f"{marked.ref} -> {marked.commit}")
    if marked.pushed_to:
        print(f"pushed {marked.ref} to {marked.pushed_to}")
    return 0
