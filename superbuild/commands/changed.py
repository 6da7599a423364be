"""Which submodules (gitlinks) and manifests changed between base and head, which
packages that affects and in what order they build.  Needs no submodule checkout.

Range: --base REV..--head REV (default: head's first parent..HEAD), or
--since-last-success (the build state).  --why PACKAGE explains one package.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from superbuild.changes import ChangeSet, detect, resolve_range
from superbuild.commands import add_range, print_json, superproject, warn
from superbuild.errors import EXIT_FAILED, UsageError


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


def github_output(changeset: ChangeSet) -> list[str]:
    """``key=value`` lines for ``$GITHUB_OUTPUT`` (values are one-line JSON)."""
    return [
        f"packages={json.dumps(changeset.affected)}",
        f"waves={json.dumps(changeset.waves)}",
        f"any={'true' if changeset.affected else 'false'}",
    ]


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


def why_json(changeset: ChangeSet, name: str) -> dict[str, Any]:
    """``--why PACKAGE --format json``: the chain from PACKAGE to what changed, and why."""
    changeset.product.get(name)  # unknown package -> error
    affected = name in changeset.affected
    chain = (
        changeset.product.graph.chain_to(name, changeset.reasons, within=changeset.affected)
        if affected
        else None
    )
    return {
        "package": name,
        "affected": affected,
        "chain": chain or [],
        "reason": changeset.reasons[chain[-1]] if chain else None,
    }


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
    if args.why and args.format == "json":
        print_json(why_json(changeset, args.why))
    elif args.why:
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

        show_changes(changeset, since_last_success=args.since_last_success)
    if args.exit_code and changeset.affected:
        return EXIT_FAILED
    return 0
