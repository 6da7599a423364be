"""``superbuild mark-green``: remember the last green commit of a branch, in git itself."""

from __future__ import annotations

import argparse

from superbuild import git as g
from superbuild.changes import current_branch, green_ref
from superbuild.commands import superproject
from superbuild.errors import UsageError


def run(args: argparse.Namespace) -> int:
    repo = superproject(args)
    head = g.rev_commit(repo, args.head, "--head revision")
    branch = args.branch or current_branch(repo)
    if not branch:
        raise UsageError("mark-green: cannot tell the branch (detached HEAD): pass --branch NAME")
    ref = green_ref(branch)
    if g.git(repo, "check-ref-format", ref, check=False).returncode != 0:
        raise UsageError(f"mark-green: {branch!r} is not a valid branch name")
    g.git(repo, "update-ref", "-m", "superbuild mark-green", ref, head)
    print(f"{ref} -> {head}")
    if args.push:
        g.git(repo, "push", "-q", args.push, f"+{ref}:{ref}", what=f"git push {args.push} {ref}")
        print(f"pushed {ref} to {args.push}")
    return 0
