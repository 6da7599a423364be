"""Propose the manifests of an existing superproject, from its components' specs.

Reads HEAD's gitlinks and, for each component, its spec at the recorded commit from
git objects (no checkout needed when the submodule's repository is there): Name,
Version, Provides, Requires and BuildRequires of every subpackage, with rpm's own
parser.  A requirement another component provides becomes a requires: edge, with a
comment saying whether it is build-time or run-time.  Without --write it prints the
manifests; with --write it writes them into manifests/ (never replacing a file unless
--force) and prints the next commands.  See docs/adopting.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from superbuild.commands import plural, print_json, superproject, warn
from superbuild.errors import UsageError

NEXT_STEPS = (
    "git add manifests && git commit -m 'superbuild manifests'",
    "superbuild plan --all",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--write",
        action="store_true",
        help="write the proposed manifests into manifests/ (default: print them)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="with --write: replace manifest files that already exist",
    )
    p.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="text (the manifests, for people) or json (see docs/formats.md)",
    )


def _targets(repo: Path, files: list[str], force: bool) -> list[Path]:
    """The files to write, checked before any is: in a work tree, inside it, and new
    (unless ``force``)."""
    if not (repo / ".git").exists():
        raise UsageError(f"--write needs a work tree: {repo} is a bare repository")
    top = repo.resolve()
    targets = []
    existing = []
    for file in files:
        target = repo / file
        # A manifests/ folder (or a group folder) that is a symlink could lead outside.
        resolved = target.parent.resolve() / target.name
        if not resolved.is_relative_to(top) or target.is_symlink():
            raise UsageError(
                f"{file}: leads outside {repo} (a symbolic link on the way): "
                "not written; remove the link"
            )
        if target.exists() and not force:
            existing.append(file)
        targets.append(target)
    if existing:
        raise UsageError.many(
            f"{file} exists: not replaced (nothing was written; --force replaces it)"
            for file in existing
        )
    return targets


def run(args: argparse.Namespace) -> int:
    from superbuild.adopt import propose
    from superbuild.fileio import write_text_atomic

    if args.force and not args.write:
        raise UsageError("--force only applies with --write")
    repo = superproject(args)
    proposal = propose(repo)
    written: list[str] = []
    if args.write:
        files = sorted(proposal.manifests)
        for file, target in zip(files, _targets(repo, files, args.force), strict=True):
            target.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(target, proposal.manifests[file])
            written.append(file)
    if args.format == "json":
        data = proposal.to_json()
        data["manifests"] = proposal.manifests
        data["written"] = written
        data["next"] = list(NEXT_STEPS) if written else []
        print_json(data)
        warn(*proposal.notes)
        return 0
    from superbuild.text import safe_text

    edges = sum(len(c.requires) for c in proposal.components)
    if not args.write:
        for file, text in proposal.manifests.items():
            print(f"# ---- {file}")
            print(safe_text(text), end="")
            print()
    warn(*proposal.notes)
    summary = (
        f"{plural(len(proposal.components), 'component')}, {plural(edges, 'requires edge')}, "
        f"{plural(len(proposal.waves), 'wave')} (commit {proposal.commit[:12]})"
    )
    if not args.write:
        print(f"{summary}: superbuild init --write writes these manifests", file=sys.stderr)
        return 0
    for file in written:
        print(f"wrote {file}")
    print(f"{summary}; next:")
    for step in NEXT_STEPS:
        print(f"  {step}")
    return 0
