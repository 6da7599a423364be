"""Record --head as the last green commit of its branch, in git itself
(refs/superbuild/green/<branch>), so that --base green finds it; --push shares it with
ephemeral CI machines.
"""

from __future__ import annotations

import argparse

from superbuild import git as g
from superbuild.changes import current_branch, green_ref
from superbuild.commands import add_head, superproject
from superbuild.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_head(p, "the green commit")
    p.add_argument("--branch", metavar="NAME", help="the branch (default: the current branch)")
    p.add_argument("--push", metavar="REMOTE", help="also push the ref to REMOTE")


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
