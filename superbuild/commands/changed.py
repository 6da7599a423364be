"""Which submodules (gitlinks) and manifests changed between base and head, which
packages that affects and in what order they build.  Needs no submodule checkout.

Range: --base REV..--head REV (default: head's first parent..HEAD), or
--since-last-success (the build state).  --why PACKAGE explains one package.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from superbuild import ci
from superbuild.changes import borrowed_notes, detect, resolve_range
from superbuild.commands import add_range, print_json, superproject, warn
from superbuild.errors import EXIT_FAILED

if TYPE_CHECKING:
    from superbuild.manifest import Product


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_range(p)
    p.add_argument(
        "--format",
        choices=["text", "json", "github", "lines"],
        default="text",
        help="text (people), json, github ($GITHUB_OUTPUT packages=, waves= and any=), "
        "lines (one affected package per line)",
    )
    p.add_argument(
        "--why",
        metavar="PACKAGE",
        help="explain why PACKAGE is affected (with --format json: as JSON)",
    )
    p.add_argument(
        "--exit-code", action="store_true", help="exit 1 when a package is affected, else 0"
    )


def why_json(
    product: Product, affected: list[str], reasons: dict[str, str], name: str
) -> dict[str, Any]:
    """``--why PACKAGE --format json``: the chain from PACKAGE to what changed, and why."""
    product.get(name)  # unknown package -> error
    is_affected = name in affected
    chain = product.graph.chain_to(name, reasons, within=affected) if is_affected else None
    return {
        "package": name,
        "affected": is_affected,
        "chain": chain or [],
        "reason": reasons[chain[-1]] if chain else None,
    }


def run(args: argparse.Namespace) -> int:
    repo = superproject(args)
    if args.since_last_success:
        return _since_last_success(args)
    rng = resolve_range(repo, args.base, args.head, args.manifests_from, offer=True)
    warn(*rng.warnings)
    changeset = detect(repo, rng)
    for note in borrowed_notes(changeset.product, changeset.base_product):
        print(note, file=sys.stderr)
    if args.why and args.format == "json":
        print_json(why_json(changeset.product, changeset.affected, changeset.reasons, args.why))
    elif args.why:
        print(changeset.why(args.why))
    elif args.format == "json":
        from superbuild.changecore import dumps  # the lean path prints with it too

        sys.stdout.write(dumps(changeset.to_json()))
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
    if args.why and args.format == "json":
        print_json(why_json(found.product, affected, found.reasons, args.why))
    elif args.why:
        print(found.why(args.why))
    elif args.format == "json":
        data: dict[str, Any] = {
            "base": None,
            "head": found.product.commit or "",
            "manifests": {"head": found.product.manifests, "base": None},
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
