"""``superbuild changed``: submodule and manifest changes between two commits."""

from __future__ import annotations

import argparse
from typing import Any

from superbuild import ci
from superbuild.changes import detect, resolve_range
from superbuild.commands import print_json, superproject, warn
from superbuild.errors import EXIT_FAILED


def run(args: argparse.Namespace) -> int:
    repo = superproject(args)
    if args.since_last_success:
        return _since_last_success(args)
    rng = resolve_range(repo, args.base, args.head)
    warn(*rng.warnings)
    changeset = detect(repo, rng)
    if args.why:
        print(changeset.why(args.why))
    elif args.format == "json":
        print_json(changeset.to_json())
    elif args.format == "lines":
        _lines(changeset.affected)
    elif args.format == "github":
        _github(ci.github_output(changeset.affected, changeset.waves))
    else:
        from superbuild.ui import show_changes

        show_changes(changeset)
    return EXIT_FAILED if args.exit_code and changeset.affected else 0


def _since_last_success(args: argparse.Namespace) -> int:
    """The build state's answer: packages not built green at their current build key."""
    from superbuild import planning
    from superbuild.commands.planargs import print_notes, request_from_args

    found = planning.plan(superproject(args), request_from_args(args))
    print_notes(found.notes)
    assert isinstance(found, planning.Plan)  # only retry-failed finds nothing to plan
    affected = found.packages
    if args.why:
        print(found.why(args.why))
    elif args.format == "json":
        data: dict[str, Any] = {
            "base": None,
            "head": found.product.commit or "",
            "changes": [],
            "manifest_changes": [],
            "affected": affected,
            "waves": found.waves,
            "unmanaged": [],
            "since_last_success": found.reasons,
        }
        print_json(data)
    elif args.format == "lines":
        _lines(affected)
    elif args.format == "github":
        _github(ci.github_output(affected, found.waves))
    else:
        from superbuild.ui import show_rebuilds

        show_rebuilds(found)
    return EXIT_FAILED if args.exit_code and affected else 0


def _lines(affected: list[str]) -> None:
    for name in affected:
        print(name)


def _github(lines: list[str]) -> None:
    if ci.append_github_output(lines) is None:
        warn("GITHUB_OUTPUT is not set: printing the outputs only")
    for line in lines:
        print(line)
