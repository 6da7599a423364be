"""``superbuild changed``: submodule and manifest changes between two commits."""

from __future__ import annotations

import argparse

from superbuild.changes import detect, resolve_range
from superbuild.commands import print_json, superproject


def run(args: argparse.Namespace) -> int:
    repo = superproject(args)
    changeset = detect(repo, resolve_range(repo, args.base, args.head))
    if args.why:
        print(changeset.why(args.why))
        return 0
    if args.format == "json":
        print_json(changeset.to_json())
        return 0
    from superbuild.ui import show_changes

    show_changes(changeset)
    return 0
