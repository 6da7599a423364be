"""``superbuild changed``: submodule and manifest changes between two commits."""

from __future__ import annotations

import argparse
from pathlib import Path

from superbuild import ci
from superbuild.changes import ChangeSet, detect, resolve_range
from superbuild.commands import print_json, superproject, warn
from superbuild.errors import EXIT_FAILED, UsageError


def since_last_success(repo: Path, head: str) -> ChangeSet:
    """The build state's answer: packages not built green at their current build key."""
    from superbuild.changes import load_head
    from superbuild.manifest import Product
    from superbuild.state import affected_since_last_success

    product, links = load_head(repo, resolve_range(repo, None, head))
    found = affected_since_last_success(repo, product, links)
    return ChangeSet(
        base=None,
        head=product.commit or "",
        changes=[],
        manifest_changes=[],
        affected=found.affected,
        waves=found.waves,
        unmanaged=[],
        product=product,
        base_product=Product(None, {}),
        reasons=found.reasons,
        links=links,
    )


def run(args: argparse.Namespace) -> int:
    repo = superproject(args)
    if args.since_last_success:
        if args.base:
            raise UsageError("--since-last-success cannot be combined with --base")
        changeset = since_last_success(repo, args.head)
    else:
        rng = resolve_range(repo, args.base, args.head)
        warn(*rng.warnings)
        changeset = detect(repo, rng)
    if args.why:
        print(changeset.why(args.why))
    elif args.format == "json":
        data = changeset.to_json()
        if args.since_last_success:
            data["since_last_success"] = changeset.reasons
        print_json(data)
    elif args.format == "lines":
        for name in changeset.affected:
            print(name)
    elif args.format == "github":
        lines = ci.github_output(changeset)
        if ci.append_github_output(lines) is None:
            warn("GITHUB_OUTPUT is not set: printing the outputs only")
        for line in lines:
            print(line)
    else:
        from superbuild.ui import show_changes

        show_changes(changeset)
    if args.exit_code and changeset.affected:
        return EXIT_FAILED
    return 0
