"""``superbuild mark-green``: remember the last green commit of a branch, in git itself."""

from __future__ import annotations

import argparse

from superbuild.ci import mark_green
from superbuild.commands import superproject


def run(args: argparse.Namespace) -> int:
    marked = mark_green(superproject(args), args.head, branch=args.branch, push=args.push)
    print(f"{marked.ref} -> {marked.commit}")
    if marked.pushed_to:
        print(f"pushed {marked.ref} to {marked.pushed_to}")
    return 0
