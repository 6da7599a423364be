"""Releases (docs/releases.md): immutable trees of signed yum repositories, one per target
and manifest ``repo:``, made of the builds recorded for a superproject commit; hard
links into a content-addressed pool, so a release costs only what changed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from superbuild.commands import add_head, add_repo, plural, print_json, superproject, warn
from superbuild.errors import disk_full
from superbuild.release.compose import ReleaseError

_FORMATS = ("text", "json")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="release_action", metavar="ACTION")
    sub.required = True
    c = sub.add_parser(
        "create",
        help="compose release NAME of the builds recorded for --head",
        description="Compose release NAME: for every package of the product at --head, the "
        "successful build whose build key matches that commit (build them first); exit 2 "
        "when any is missing, or when a package would go down in version from the previous "
        "release (or --base NAME) without --allow-downgrade.",
    )
    add_repo(c)
    c.add_argument("name", metavar="NAME", help="the release's name (a folder name)")
    add_head(c, "the superproject commit to release")
    c.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="T",
        help="only this target (repeatable; default: every target)",
    )
    c.add_argument(
        "--base",
        metavar="NAME",
        help="the release downgrades are checked against (default: the newest release)",
    )
    c.add_argument(
        "--allow-downgrade",
        action="store_true",
        help="accept packages older than in the base release (recorded in release.json)",
    )
    c = sub.add_parser("list", help="the releases, oldest first", description="The releases.")
    add_repo(c)
    c.add_argument("--format", choices=_FORMATS, default="text")
    c = sub.add_parser(
        "show",
        help="every package of release NAME",
        description="Every RPM of release NAME: target, repository path, NEVRA, package, "
        "source commit; --format json prints its release.json.",
    )
    add_repo(c)
    c.add_argument("name", metavar="NAME")
    c.add_argument("--format", choices=_FORMATS, default="text")
    c = sub.add_parser(
        "diff",
        help="what changed from release A to release B",
        description="Added, removed, upgraded, downgraded and rebuilt packages per target, "
        "in rpm's version order; --log adds each changed component's commits.",
    )
    add_repo(c)
    c.add_argument("old", metavar="A")
    c.add_argument("new", metavar="B")
    c.add_argument("--format", choices=_FORMATS, default="text")
    c.add_argument(
        "--log",
        action="store_true",
        help="the commits of each changed component (git log --oneline OLD..NEW in its "
        "submodule, when checked out)",
    )
    c = sub.add_parser(
        "publish",
        help="copy release NAME to DEST atomically and point DEST/current to it",
        description="Copy release NAME to DEST/NAME (under a temporary name, then renamed) "
        "and switch the DEST/current symlink to it atomically.",
    )
    add_repo(c)
    c.add_argument("name", metavar="NAME")
    c.add_argument("dest", metavar="DEST", help="the directory clients read")
    c = sub.add_parser(
        "delete",
        help="remove release NAME, then the pool files nothing uses",
        description="Remove release NAME, then the pool files no release and no latest "
        "build uses (release gc).",
    )
    add_repo(c)
    c.add_argument("name", metavar="NAME")
    c = sub.add_parser(
        "gc",
        help="remove the pool files no release and no latest build uses",
        description="Remove the files of .superbuild/pool that no release and no package's "
        "latest successful build uses.",
    )
    add_repo(c)


def run(args: argparse.Namespace) -> int:
    repo = superproject(args)
    try:
        return _run(repo, args)
    except OSError as exc:
        if disk_full(exc) is not None:
            raise  # the full disk's own line, exit 1, as for every verb (superbuild.cli)
        # A read-only DEST, a missing folder...: one line naming the file, not a traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        raise ReleaseError(
            f"release {args.release_action}: {where}{exc.strerror or exc} (nothing was "
            "changed: releases and publications are written whole or not at all)"
        ) from None


def _run(repo: Path, args: argparse.Namespace) -> int:
    action = args.release_action
    if action == "create":
        return _create(repo, args)
    if action == "list":
        return _list(repo, args)
    if action == "show":
        return _show(repo, args)
    if action == "diff":
        return _diff(repo, args)
    if action == "publish":
        from superbuild.release.publish import publish

        final = publish(repo, args.name, Path(args.dest))
        print(
            f"published release {args.name} to {final} ({Path(args.dest) / 'current'} -> {args.name})"
        )
        return 0
    if action == "delete":
        from superbuild.release.compose import delete

        delete(repo, args.name)
        print(f"deleted release {args.name}")
        return _gc(repo)
    return _gc(repo)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _create(repo: Path, args: argparse.Namespace) -> int:
    from superbuild.release.compose import create

    made = create(
        repo,
        args.name,
        head=args.head,
        targets=args.target,
        base=args.base,
        allow_downgrade=args.allow_downgrade,
    )
    for d in made.downgrades:
        warn(f"{d.package} ({d.target}) goes down from {d.old} to {d.new} (--allow-downgrade)")
    print(
        f"release {made.name}: {plural(made.packages, 'package')}, {plural(made.files, 'RPM')}, "
        f"{_size(made.bytes_total)}; added {made.bytes_added} bytes "
        f"({_size(made.bytes_added)}) not in an earlier release; in {made.path}"
    )
    return 0


def _list(repo: Path, args: argparse.Namespace) -> int:
    from superbuild import layout
    from superbuild.release.compose import releases

    found = releases(layout.releases_root(repo))
    rows = [
        {
            "name": d["name"],
            "created_at": d["created_at"],
            "superproject_commit": d["superproject_commit"],
            "targets": d["targets"],
            "packages": len(d["packages"]),
            "bytes": d["bytes"],
            "bytes_added": d["bytes_added"],
        }
        for d in found
    ]
    if args.format == "json":
        print_json(rows)
        return 0
    if not rows:
        print("no releases (superbuild release create NAME makes one)")
    for r in rows:
        print(
            f"{r['name']}\t{r['created_at'][:19]}\t{r['superproject_commit'][:12]}\t"
            f"{plural(r['packages'], 'package')}\t{_size(r['bytes'])}"
        )
    return 0


def _show(repo: Path, args: argparse.Namespace) -> int:
    from superbuild import layout
    from superbuild.release.compose import packages_text, read_release

    data = read_release(layout.releases_root(repo), args.name)
    if args.format == "json":
        print_json(data)
    else:
        print(packages_text(data), end="")
    return 0


def _diff(repo: Path, args: argparse.Namespace) -> int:
    from superbuild import layout
    from superbuild.release.compose import read_release
    from superbuild.release.diff import add_logs, diff, render

    root = layout.releases_root(repo)
    changes = diff(read_release(root, args.old), read_release(root, args.new))
    if args.log:
        add_logs(repo, changes)
    if args.format == "json":
        print_json(changes)
    else:
        print("\n".join(render(changes)))
    return 0


def _gc(repo: Path) -> int:
    from superbuild.release.compose import gc

    done = gc(repo)
    print(
        f"pool: removed {plural(done.files, 'file')} ({_size(done.bytes)}), "
        f"kept {plural(done.kept, 'file')}"
    )
    return 0
