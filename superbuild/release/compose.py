"""``release create``, ``list``, ``show``, ``delete`` and ``gc``: the releases of a superproject.

A release is a folder ``.superbuild/releases/<name>/`` (:func:`superbuild.layout.releases_root`)::

    release.json                   what it is made of (docs/releases.md)
    packages.txt                   the same, one line per RPM
    <target>/<repo>/<arch>/*.rpm   + repodata/ (repomd.xml.asc when signed)
    <target>/<repo>-srpms/*.src.rpm + repodata/

(the two folder templates come from ``releases:`` in superbuild.yaml).  Every RPM is a
hard link into the pool (:mod:`superbuild.release.pool`), so a release costs the files no
earlier release has, plus its metadata.  A release is assembled in a hidden folder next
to the final one (``.tmp-p<pid>t<start>-<name>``), synced, and renamed into place: a
reader sees a whole release or none, and the next command removes what a killed one
left.  Releases never change once made; ``delete`` renames a release away before
removing it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from superbuild import __version__, layout, proc
from superbuild.errors import SuperbuildError, UsageError
from superbuild.outrepo import rpm_arch
from superbuild.package import split_job_id
from superbuild.release import DEFAULT_TARGET
from superbuild.release.evr import EVR, compare
from superbuild.release.pool import link_or_copy, pool_file

FORMAT = 1
RELEASE_FILE = "release.json"
PACKAGES_FILE = "packages.txt"
LOCK_FILE = ".lock"
#: A release name: a folder name any client URL can carry.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
#: Longest a ``createrepo_c`` or ``gpg`` of a release may run.
TOOL_TIMEOUT_S = 600.0
_TMP_RE = re.compile(r"^\.tmp-p(\d+)t([^-]+)-")


class ReleaseError(SuperbuildError):
    """A release cannot be made, found or changed (exit 2): the line says what to do."""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class RpmFile:
    """One RPM of a release."""

    file: str  # the file name
    path: str  # relative to the release
    name: str
    epoch: int
    version: str
    release: str
    arch: str
    sha256: str
    size: int

    @property
    def nevra(self) -> str:
        epoch = f"{self.epoch}:" if self.epoch else ""
        return f"{self.name}-{epoch}{self.version}-{self.release}.{self.arch}"

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "path": self.path,
            "nevra": self.nevra,
            "name": self.name,
            "epoch": self.epoch,
            "version": self.version,
            "release": self.release,
            "arch": self.arch,
            "sha256": self.sha256,
            "size": self.size,
        }


@dataclass(frozen=True)
class Downgrade:
    package: str
    target: str
    old: str
    new: str

    def to_json(self) -> dict[str, str]:
        return {"package": self.package, "target": self.target, "from": self.old, "to": self.new}


@dataclass
class Created:
    """What ``release create`` made."""

    name: str
    path: Path
    packages: int
    files: int
    bytes_total: int
    bytes_added: int
    base: str | None
    downgrades: list[Downgrade] = field(default_factory=list)


# --------------------------------------------------------------------------- helpers


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name) or name in (".", ".."):
        raise UsageError(
            f"invalid release name {name!r}: letters, digits and . _ + - (at most 100), "
            "starting with a letter or digit"
        )
    return name


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """One command at a time changes ``root`` (an ``flock`` on ``root/.lock``)."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def temp_name(name: str) -> str:
    """The hidden name a folder is assembled (or removed) under: its owner in it."""
    return f".tmp-{proc.owner_tag()}-{name}"


def remove_dead_temps(root: Path) -> list[Path]:
    """Remove what killed commands left in ``root`` (hidden folders of dead owners)."""
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in root.iterdir():
            found = _TMP_RE.match(entry.name)
            if found and not proc.owner_alive(int(found.group(1)), found.group(2)):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed.append(entry)
    return removed


def fsync_tree(top: Path) -> None:
    """Flush every file and folder under ``top`` (and ``top``) to disk."""
    for dirpath, _dirnames, filenames in os.walk(top):
        for name in filenames:
            fd = os.open(Path(dirpath) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_release(root: Path, name: str) -> dict[str, Any]:
    """The ``release.json`` of release ``name`` (:class:`ReleaseError` if there is none)."""
    check_name(name)
    path = root / name / RELEASE_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        known = [r["name"] for r in releases(root)]
        import difflib

        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ReleaseError(
            f"no release {name!r}{hint}: superbuild release list shows the releases"
        ) from None
    except (OSError, ValueError) as exc:
        raise ReleaseError(f"{path}: cannot be read ({exc}): the release is damaged") from None
    return data


def releases(root: Path) -> list[dict[str, Any]]:
    """Every release's ``release.json``, oldest first (a damaged one is left out)."""
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in root.iterdir():
            if entry.name.startswith(".") or not NAME_PATTERN.match(entry.name):
                continue
            with contextlib.suppress(OSError, ValueError):
                data = json.loads((entry / RELEASE_FILE).read_text())
                if isinstance(data, dict) and data.get("name") == entry.name:
                    found.append(data)
    return sorted(found, key=lambda d: (d.get("created_at", ""), d["name"]))


def _evr(data: Mapping[str, Any]) -> EVR:
    return EVR(int(data.get("epoch") or 0), str(data["version"]), str(data["release"]))


def package_evr(pkg: Mapping[str, Any]) -> EVR | None:
    """A release package's EVR: its source RPM's (None when it has no RPM)."""
    return _evr(pkg) if pkg.get("version") is not None else None


def evr_text(pkg: Mapping[str, Any]) -> str:
    evr = package_evr(pkg)
    return str(evr) if evr is not None else "-"


# --------------------------------------------------------------------------- create


_QUERY = "%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\n"


def _headers(files: Sequence[Path]) -> list[tuple[str, int, str, str, str]]:
    """NAME, EPOCH, VERSION, RELEASE, ARCH of each RPM file (one ``rpm -qp``)."""
    if not files:
        return []
    result = proc.run(
        ["rpm", "-qp", "--nosignature", "--nodigest", "--qf", _QUERY, *map(os.fspath, files)],
        timeout=TOOL_TIMEOUT_S,
        what="rpm -qp (reading the pooled RPMs)",
    )
    lines = result.stdout.decode("utf-8", "replace").splitlines()
    if len(lines) != len(files):
        raise ReleaseError(f"rpm -qp gave {len(lines)} headers for {len(files)} RPM files")
    found = []
    for line in lines:
        name, epoch, version, release, arch = line.split("\t")
        found.append((name, int(epoch or 0), version, release, arch))
    return found


def _folder(template: str, target: str, repo: str) -> str:
    return template.format(target=target, repo=repo)


def _overlapping(folders: Sequence[str]) -> tuple[str, str] | None:
    ordered = sorted(set(folders))
    for a in ordered:
        for b in ordered:
            if a != b and b.startswith(a + "/"):
                return a, b
    return None


def create(
    repo: Path,
    name: str,
    *,
    head: str = "HEAD",
    targets: Sequence[str] = (),
    base: str | None = None,
    allow_downgrade: bool = False,
) -> Created:
    """Compose release ``name`` of the builds recorded for superproject commit ``head``.

    Every package of the product at ``head``, for every target, must have a successful
    build whose build key is the key ``head`` gives it (:func:`superbuild.state.build_inputs`,
    as ``plan --since-last-success`` computes it); the missing ones raise one line.
    Holds the releases' lock throughout: ``gc`` cannot take a pool file meanwhile.
    """
    check_name(name)
    layout.state_dir(repo)  # its .gitignore, before releases/ is made in it
    root = layout.releases_root(repo)
    with locked(root):
        remove_dead_temps(root)
        return _create(repo, root, name, head, targets, base, allow_downgrade=allow_downgrade)


def _create(  # noqa: PLR0917 - the arguments of create, checked
    repo: Path,
    root: Path,
    name: str,
    head: str,
    wanted: Sequence[str],
    base: str | None,
    *,
    allow_downgrade: bool,
) -> Created:
    from superbuild.changes import load_head, resolve_range
    from superbuild.state import BuildState, build_inputs

    if (root / name).exists():
        raise ReleaseError(
            f"release {name!r} exists: releases never change (superbuild release delete "
            f"{name} first, or choose another name)"
        )
    rng = resolve_range(repo, None, head)
    product, links = load_head(repo, rng)
    settings = product.settings
    chosen = _targets(wanted, product.target_names)
    # (package, release target, inputs) of every build the release takes.
    inputs = [
        (pkg_name, target or DEFAULT_TARGET, now)
        for job, now in build_inputs(product, links).items()
        for pkg_name, target in [split_job_id(job)]
        if (target or DEFAULT_TARGET) in chosen
    ]
    with BuildState.read(repo) as state:
        builds = state.successes(i.key for *_, i in inputs) if state is not None else {}
    missing = [(n, t) for n, t, i in inputs if i.key not in builds]
    if missing:
        names = " ".join(sorted({n for n, _ in missing}))
        raise ReleaseError(
            f"no successful build of {len(missing)} package(s) at {rng.head[:12]}: {names} "
            f"(build them first: superbuild build --head {head} --all --packages-select {names})"
        )
    pool = layout.pool_root(repo)
    entries: list[tuple[str, str, dict[str, Any], list[tuple[Path, str, str, int]]]] = []
    absent = []
    for pkg_name, target, now in sorted(inputs, key=lambda i: (chosen.index(i[1]), i[0])):
        built = builds[now.key]
        rpms = []
        for f in built.files:
            if not f.path.endswith(".rpm"):
                continue  # files of other pipelines are not part of a release
            src = pool_file(pool, f.sha256)
            if not src.is_file():
                absent.append(pkg_name)
            rpms.append((src, f.path, f.sha256, f.size))
        entries.append(
            (
                target,
                pkg_name,
                {
                    "path": product.entries[pkg_name].path,
                    "repo": product.entries[pkg_name].repo,
                    "commit": built.build.commit,
                    "build_key": now.key,
                    "run_id": built.build.run_id,
                },
                rpms,
            )
        )
    if absent:
        names = " ".join(sorted(set(absent)))
        raise ReleaseError(
            f"the pool has lost files of {names} (removed by hand?): rebuild them "
            f"(superbuild build --head {head} --all --packages-select {names})"
        )
    headers = iter(_headers([src for *_, rpms in entries for src, *_ in rpms]))
    packages: list[dict[str, Any]] = []
    folders: dict[tuple[str, str, str], str] = {}
    for target, pkg_name, facts, rpms in entries:
        files = []
        source: dict[str, Any] | None = None
        for _src, rel, sha, size in rpms:
            rpm_name, epoch, version, release, arch = next(headers)
            is_source = rpm_arch(Path(rel)) in ("src", "nosrc")
            kind = "source" if is_source else "binary"
            template = settings.release_source if is_source else settings.release_binary
            folder = folders.setdefault(
                (target, facts["repo"], kind), _folder(template, target, facts["repo"])
            )
            file = Path(rel).name
            where = f"{folder}/{file}" if is_source else f"{folder}/{arch}/{file}"
            arch = "src" if is_source else arch
            record = RpmFile(file, where, rpm_name, epoch, version, release, arch, sha, size)
            files.append(record.to_json())
            if is_source:
                source = record.to_json()
        evr = (
            {k: source[k] for k in ("epoch", "version", "release")}
            if source
            else {"epoch": None, "version": None, "release": None}
        )
        packages.append(
            {
                "name": pkg_name,
                "target": target,
                **facts,
                **evr,
                "rpms": sorted(files, key=lambda r: r["path"]),
            }
        )
    overlap = _overlapping(list(folders.values()))
    if overlap:
        raise ReleaseError(
            f"release repositories {overlap[0]!r} and {overlap[1]!r} overlap (one inside the "
            "other): change repo: in the manifests or releases: in superbuild.yaml"
        )
    seen: dict[str, str] = {}
    for pkg in packages:
        for rpm in pkg["rpms"]:
            other = seen.setdefault(rpm["path"], pkg["name"])
            if other != pkg["name"]:
                raise ReleaseError(
                    f"{rpm['path']} is made by both {other} and {pkg['name']}: two packages "
                    "make the same RPM; rename one"
                )

    existing = releases(root)
    base_data = _base(root, existing, base)
    downgrades = _downgrades(base_data, packages) if base_data else []
    if downgrades and not allow_downgrade:
        raise ReleaseError(
            *(
                f"{d.package} ({d.target}) would go from {d.old} in release "
                f"{base_data['name'] if base_data else '?'} down to {d.new}: bump Epoch: "
                f"in its spec (or pass --allow-downgrade to record the downgrade)"
                for d in downgrades
            )
        )
    known = {rpm["sha256"] for data in existing for p in data["packages"] for rpm in p["rpms"]}
    added = {
        rpm["sha256"]: rpm["size"]
        for p in packages
        for rpm in p["rpms"]
        if rpm["sha256"] not in known
    }
    total = sum(rpm["size"] for p in packages for rpm in p["rpms"])
    data = {
        "format": FORMAT,
        "name": name,
        # Microseconds: the newest release is the base of the next, even within a second.
        "created_at": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
        "superbuild_version": __version__,
        "superproject_commit": rng.head,
        "targets": list(chosen),
        "base": base_data["name"] if base_data else None,
        "allow_downgrade": allow_downgrade,
        "downgrades": [d.to_json() for d in downgrades],
        "repositories": [
            {"target": t, "repo": r, "kind": k, "path": folder}
            for (t, r, k), folder in sorted(folders.items())
        ],
        "bytes": total,
        "bytes_added": sum(added.values()),
        "packages": sorted(packages, key=lambda p: (p["target"], p["name"])),
    }
    tmp = root / temp_name(name)
    try:
        _assemble(repo, tmp, data, entries, sign_key=settings.sign_key, gpg_home=settings.gpg_home)
        fsync_tree(tmp)
        os.rename(tmp, root / name)  # noqa: PTH104 - the name is free: checked under the lock
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Created(
        name,
        root / name,
        len(packages),
        sum(len(p["rpms"]) for p in packages),
        total,
        data["bytes_added"],
        data["base"],
        downgrades,
    )


def _targets(wanted: Sequence[str], defined: Sequence[str]) -> list[str]:
    """The targets of a release: ``--target`` values, else every target of the product
    (``defined``: superbuild.yaml's ``targets:``; none: the implicit target, named
    :data:`DEFAULT_TARGET` in a release)."""
    known = list(defined) or [DEFAULT_TARGET]
    for target in wanted:
        if target not in known:
            where = "superbuild.yaml targets:" if defined else "no targets: in superbuild.yaml"
            raise UsageError(
                f"unknown target {target!r}: this product has only {', '.join(known)} ({where})"
            )
    return list(dict.fromkeys(wanted)) or known


def _base(root: Path, existing: list[dict[str, Any]], base: str | None) -> dict[str, Any] | None:
    if base is not None:
        return read_release(root, base)
    return existing[-1] if existing else None


def _downgrades(base: Mapping[str, Any], packages: Sequence[Mapping[str, Any]]) -> list[Downgrade]:
    old = {(p["target"], p["name"]): p for p in base["packages"]}
    found = []
    for pkg in packages:
        before = old.get((pkg["target"], pkg["name"]))
        if before is None:
            continue
        a, b = package_evr(before), package_evr(pkg)
        if a is not None and b is not None and compare(b, a) < 0:
            found.append(Downgrade(pkg["name"], pkg["target"], str(a), str(b)))
    return found


def _assemble(
    repo: Path,
    tmp: Path,
    data: dict[str, Any],
    entries: Sequence[tuple[str, str, dict[str, Any], list[tuple[Path, str, str, int]]]],
    *,
    sign_key: str | None,
    gpg_home: str | None,
) -> None:
    """Write the release into the hidden folder ``tmp``: links, metadata, signatures."""
    tmp.mkdir()
    sources = {sha: src for *_, rpms in entries for src, _rel, sha, _size in rpms}
    for pkg in data["packages"]:
        for rpm in pkg["rpms"]:
            dest = tmp / rpm["path"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            link_or_copy(sources[rpm["sha256"]], dest)
    for repository in data["repositories"]:
        (tmp / repository["path"]).mkdir(parents=True, exist_ok=True)
    session = proc.Session()
    session.start_watchdog("_SUPERBUILD_RELEASE")
    with proc.session_watchdog(session):
        for repository in data["repositories"]:
            folder = tmp / repository["path"]
            session.run(
                ["createrepo_c", "--quiet", os.fspath(folder)],
                timeout=TOOL_TIMEOUT_S,
                what=f"createrepo_c on {repository['path']}",
            )
            if sign_key:
                repomd = folder / "repodata" / "repomd.xml"
                env = {**os.environ, "GNUPGHOME": gpg_home} if gpg_home else None
                session.run(
                    [
                        *("gpg", "--batch", "--yes", "--detach-sign", "--armor"),
                        *("--local-user", sign_key, "--output", f"{repomd}.asc", repomd),
                    ],
                    cwd=repo,
                    env=env,
                    timeout=TOOL_TIMEOUT_S,
                    what=f"gpg --detach-sign of {repository['path']}/repodata/repomd.xml",
                )
    (tmp / RELEASE_FILE).write_text(json.dumps(data, indent=2) + "\n")
    (tmp / PACKAGES_FILE).write_text(packages_text(data))


def packages_text(data: Mapping[str, Any]) -> str:
    """The readable list: one line per RPM (target, repository path, NEVRA, package,
    source commit)."""
    lines = [
        f"# release {data['name']} of superproject commit {data['superproject_commit']}",
        "# target\tpath\tnevra\tpackage\tcommit",
    ]
    for pkg in data["packages"]:
        for rpm in pkg["rpms"]:
            lines.append(
                f"{pkg['target']}\t{rpm['path']}\t{rpm['nevra']}\t{pkg['name']}\t{pkg['commit']}"
            )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- delete, gc


def delete(repo: Path, name: str) -> None:
    """Remove release ``name``: renamed away first, so it vanishes whole."""
    root = layout.releases_root(repo)
    read_release(root, name)
    with locked(root):
        gone = root / temp_name(name)
        os.rename(root / name, gone)  # noqa: PTH104
        fsync_dir(root)
        shutil.rmtree(gone, ignore_errors=True)


@dataclass(frozen=True)
class Collected:
    files: int
    bytes: int
    kept: int


def gc(repo: Path) -> Collected:
    """Remove the pool files no release and no package's latest successful build uses.

    Holds the build lock (a build adds to the pool before it records the files) and the
    releases' lock (a release being made links from the pool).
    """
    from superbuild.release.pool import contents
    from superbuild.state import BuildLock, BuildState

    layout.state_dir(repo)
    root = layout.releases_root(repo)
    with BuildLock(repo, "release gc"), locked(root):
        remove_dead_temps(root)
        used = {rpm["sha256"] for d in releases(root) for p in d["packages"] for rpm in p["rpms"]}
        with BuildState.read(repo) as state:
            if state is not None:
                used |= state.latest_contents()
        files = size = kept = 0
        pool = layout.pool_root(repo)
        for sha, path in contents(pool).items():
            if sha in used:
                kept += 1
                continue
            size += path.stat().st_size
            path.unlink()
            files += 1
        _remove_dead_pool_temps(pool)
    return Collected(files, size, kept)


def _remove_dead_pool_temps(pool: Path) -> None:
    """Temporary names a killed build left in the pool (``.<sha>.<pid>.<rand>.tmp``)."""
    with contextlib.suppress(FileNotFoundError):
        for sub in pool.iterdir():
            for entry in sub.glob(".*.tmp") if sub.is_dir() else ():
                parts = entry.name.split(".")
                if len(parts) > 3 and parts[2].isdigit() and not proc.pid_alive(int(parts[2])):
                    entry.unlink(missing_ok=True)
