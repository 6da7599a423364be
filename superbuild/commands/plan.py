"""What a build would do, wave by wave, without building.

With no selection option: the packages affected by the range (as superbuild changed).
The selection options follow colcon; several narrow together (their intersection).
"""

from __future__ import annotations

import argparse
from typing import Any

from superbuild.changes import detect, load_head, resolve_range
from superbuild.commands import add_range, add_selection, print_json, superproject, warn
from superbuild.selection import Plan, SelectionOptions, make_plan


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_range(p)
    add_selection(p)
    p.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="text (people) or json (see docs/formats.md)",
    )


def options_from(args: argparse.Namespace) -> SelectionOptions:
    return SelectionOptions(
        all=args.all,
        select=args.packages_select,
        up_to=args.packages_up_to,
        above=args.packages_above,
        skip=args.packages_skip,
    )


def plan_from_args(args: argparse.Namespace) -> Plan:
    """The plan ``plan`` prints and ``build`` runs."""
    from superbuild.commands.build import check_state_options, plan_since_last_success

    repo = superproject(args)
    check_state_options(args)
    if args.since_last_success:
        return plan_since_last_success(repo, args)
    options = options_from(args)
    rng = resolve_range(repo, args.base, args.head)
    warn(*rng.warnings)
    if options.all or (options.narrows and args.base is None):
        product, links = load_head(repo, rng)
        return make_plan(product, options, links)
    changeset = detect(repo, rng)
    return make_plan(changeset.product, options, changeset.links, changeset)


def plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "head": plan.product.commit,
        "base": plan.changeset.base if plan.changeset else None,
        "selection": plan.origin,
        "waves": plan.waves,
        "packages": [
            {
                "package": name,
                "path": plan.product.packages[name].path,
                "commit": plan.commits[name],
                "requires": list(plan.product.graph.requires[name]),
            }
            for name in plan.packages
        ],
        "skipped": plan.skipped,
    }


def run(args: argparse.Namespace) -> int:
    plan = plan_from_args(args)
    if args.format == "json":
        print_json(plan_json(plan))
    else:
        from superbuild.ui import show_plan

        show_plan(plan)
    return 0
