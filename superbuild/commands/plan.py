"""What a build would do, wave by wave, without building.

With no selection option: the packages affected by the range (as superbuild changed).
The selection options follow colcon; several narrow together (their intersection).
"""

from __future__ import annotations

import argparse
from typing import Any

from superbuild import planning
from superbuild.commands import add_range, add_selection, add_targets, print_json, superproject
from superbuild.commands.planargs import print_notes, request_from_args
from superbuild.package import job_id
from superbuild.planning import NoPlan, Plan


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_range(p)
    add_selection(p)
    add_targets(p)
    p.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="text (people) or json (see docs/formats.md)",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also read each package's sources: the NEVR it would build, the archive "
        "and its top folder (or the problem the build would stop at)",
    )


def plan_json(plan: Plan, previews: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "head": plan.product.commit,
        "base": plan.changeset.base if plan.changeset else None,
        "manifests": (
            plan.changeset.manifests_json()
            if plan.changeset
            else {"head": plan.product.manifests, "base": None}
        ),
        "selection": plan.origin,
        "waves": plan.waves,
        "packages": [
            {
                "package": name,
                "path": plan.product.packages[name].path,
                "commit": plan.commits[name],
                "requires": list(plan.product.graph.requires[name]),
                # Only with named targets: a product without them keeps its format.
                **({"targets": list(plan.targets_of(name))} if plan.product.target_names else {}),
            }
            for name in plan.packages
        ],
        "skipped": plan.skipped,
        "targets": plan.target_names,
        "jobs": [
            {"job": job_id(name, target), "package": name, "target": target}
            for name, target in plan.jobs
        ],
    }
    if previews is not None:
        for entry in data["jobs"]:
            entry["preview"] = previews.get(entry["job"], {})
        for entry in data["packages"]:
            first = job_id(entry["package"], plan.targets_of(entry["package"])[0])
            entry["preview"] = previews.get(first, {})
    return data


def run(args: argparse.Namespace) -> int:
    found = planning.plan(superproject(args), request_from_args(args))
    print_notes(found.notes)
    if isinstance(found, NoPlan):
        return 0
    previews = None
    if args.verbose:
        from superbuild.build import preview

        previews = preview(superproject(args), found)
    if args.format == "json":
        print_json(plan_json(found, previews))
    else:
        from superbuild.ui import show_plan, show_previews

        show_plan(found)
        if previews is not None:
            show_previews(previews)
    return 0
