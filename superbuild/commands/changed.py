"""``superbuild changed``: submodule and manifest changes between two commits."""

from __future__ import annotations

import argparse
import json
import os

from superbuild.changes import ChangeSet, detect, resolve_range
from superbuild.commands import print_json, superproject, warn
from superbuild.errors import EXIT_FAILED


def github_output(changeset: ChangeSet) -> list[str]:
    """``key=value`` lines for ``$GITHUB_OUTPUT`` (values are one-line JSON)."""
    return [
        f"packages={json.dumps(changeset.affected)}",
        f"waves={json.dumps(changeset.waves)}",
        f"any={'true' if changeset.affected else 'false'}",
    ]


def run(args: argparse.Namespace) -> int:
    repo = superproject(args)
    rng = resolve_range(repo, args.base, args.head)
    warn(*rng.warnings)
    changeset = detect(repo, rng)
    if args.why:
        print(changeset.why(args.why))
    elif args.format == "json":
        print_json(changeset.to_json())
    elif args.format == "lines":
        for name in changeset.affected:
            print(name)
    elif args.format == "github":
        lines = github_output(changeset)
        target = os.environ.get("GITHUB_OUTPUT")
        if target:
            with open(target, "a", encoding="utf-8") as fh:  # noqa: PTH123 - append
                fh.write("".join(f"{line}\n" for line in lines))
        else:
            warn("GITHUB_OUTPUT is not set: printing the outputs only")
        for line in lines:
            print(line)
    else:
        from superbuild.ui import show_changes

        show_changes(changeset)
    if args.exit_code and changeset.affected:
        return EXIT_FAILED
    return 0
