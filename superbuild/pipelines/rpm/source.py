"""The rpm pipeline's source stage: spec, tarball and other sources, from git objects."""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from superbuild import git as g
from superbuild.errors import GitError
from superbuild.pipelines.api import BuildContext
from superbuild.pipelines.rpm.archive import (
    archive_format,
    lfs_candidates,
    make_archive,
    supported_suffixes,
)
from superbuild.pipelines.rpm.options import options_of
from superbuild.pipelines.rpm.spec import (
    SpecError,
    SpecFacts,
    has_version,
    prep_applies,
    read_spec,
    with_patches,
    with_release,
    with_version,
)
from superbuild.pipelines.rpm.upstream import (
    is_ancestor,
    make_patches,
    run_archive_command,
    top_folders,
    upstream_tag,
)
from superbuild.pipelines.rpm.versions import DEFAULT_TEMPLATE, VersionError, describe, version_of
from superbuild.pipelines.source import check_source_repo, source_unavailable
from superbuild.pipelines.stage import Stage


@dataclass(frozen=True)
class Source:
    """What the source stage found."""

    commit: str  # the full object id
    spec_name: str  # file name of the spec
    spec_text: str  # after the version override
    facts: SpecFacts
    tarball: Path
    archive_top: str | None  # None: files at the archive's root (%setup -c)
    #: "committed", "archive command", "upstream TAG_OR_GLOB + patches" or "git archive".
    archive_from: str


def read_source(ctx: BuildContext, st: Stage, top: Path, *, dry: bool = False) -> Source:
    """The source stage.  ``dry``: read and check the spec and say which archive it
    would make (``plan --verbose``), writing no source file and running no command."""
    pkg = ctx.package
    repo = ctx.source_repo
    check_source_repo(ctx)
    # One listing of the commit (every file, with sizes) serves the spec's folder here
    # and the archive's nested submodules and Git LFS pointers later; one read gets the
    # spec and the files sized like a pointer.
    commit, listing = _listing(ctx)
    st.note(f"# {pkg.name}: {pkg.path} at {commit}")

    if pkg.spec:
        spec_path = PurePosixPath(pkg.spec.strip("/"))
        spec_dir = "" if str(spec_path.parent) == "." else str(spec_path.parent)
        tree = _folder(listing, spec_dir)
        entry = next((e for e in tree if e.path == spec_path.name and e.kind == "blob"), None)
        if entry is None:
            st.fail(f"spec {pkg.spec} (from {pkg.manifest}) is not in {pkg.path} at {commit[:12]}")
    else:
        tree = _folder(listing, "")
        candidates = [e for e in tree if e.kind == "blob" and e.path.endswith(".spec")]
        if not candidates:
            st.fail(
                f"no *.spec file at the top of {pkg.path} at {commit[:12]}: "
                f"add one or set spec: in {pkg.manifest}"
            )
        if len(candidates) > 1:
            names = ", ".join(sorted(e.path for e in candidates))
            st.fail(
                f"several spec files at the top of {pkg.path} ({names}): "
                f"choose one with spec: in {pkg.manifest}"
            )
        entry = candidates[0]

    # The pointer-sized files only matter to a git archive of this commit (not to an
    # archive command's or an upstream tag's archive).
    archived_here = not (dry or pkg.archive_command or pkg.archive_upstream)
    pointers = lfs_candidates(listing) if archived_here else []
    contents = g.read_blobs(repo, [entry.oid, *pointers])
    text = contents[entry.oid].decode("utf-8", "surrogateescape")
    macros = options_of(ctx.options).macros
    try:
        if pkg.version and not has_version(text, pkg.version):
            text = with_version(text, pkg.version, macros)
        elif pkg.version_describe:
            text = with_version(text, _described_version(ctx, st, commit), macros)
        if pkg.release:
            text = with_release(text, pkg.release, macros)
        facts = read_spec(text, macros)
    except SpecError as exc:
        st.fail(f"rpm cannot read {entry.path} (from {pkg.path} at {commit[:12]}): {exc}")
    st.note(
        f"# rpm reads {entry.path}: {facts.name} {facts.version}-{facts.release}, "
        f"%prep enters {facts.archive_dir}/"
        + (" (created by %setup -c)" if facts.creates_dir else "")
    )

    # Every Source and Patch comes from the spec's folder in git or is the archive made
    # here; anything else fails now, naming the file, not as rpmbuild's "Bad file" later.
    blobs = {e.path: e.oid for e in tree if e.kind == "blob"}
    main = facts.source0
    archive_name = f"{facts.name}-{facts.version}.tar.gz"
    if main is not None and main.file_name not in blobs:
        archive_name = main.file_name
    if pkg.archive_name:
        archive_name = pkg.archive_name
        source_names = [s.file_name for s in facts.sources if s.kind == "Source"]
        if archive_name not in source_names:
            st.fail(
                f"archive.name {archive_name} (from {pkg.manifest}) is not a Source of "
                f"{entry.path} (its Sources: {', '.join(source_names) or 'none'})"
            )
    problems = []
    for source in facts.sources:
        if source.file_name in blobs or source.file_name == archive_name:
            continue
        where = f" ({source.location})" if source.location != source.file_name else ""
        problems.append(f"{source.tag} {source.file_name}{where}")
    if problems:
        st.fail(
            f"{'; '.join(problems)}: neither in {pkg.path} at {commit[:12]} next to "
            f"{entry.path} nor the archive superbuild makes ({archive_name}): commit "
            f"the file(s), or fix the spec ({pkg.manifest})"
        )
    if archive_format(archive_name) is None and not (
        pkg.archive_command and archive_name not in blobs
    ):
        st.fail(
            f"Source0 {archive_name} is not in {pkg.path} at {commit[:12]} and is not an "
            f"archive superbuild can make (it makes {supported_suffixes()}): commit it, "
            f"or rename Source0 ({pkg.manifest})"
        )
    extra = [
        s.file_name for s in facts.sources if s.file_name in blobs and s.file_name != entry.path
    ]
    tarball = top / "SOURCES" / archive_name
    archive_top = None if facts.creates_dir else facts.archive_dir
    if pkg.archive_prefix is not None:
        archive_top = pkg.archive_prefix or None
    if archive_name in blobs:
        archive_from = "committed"
    elif pkg.archive_command:
        archive_from = "archive command"
    elif pkg.archive_upstream:
        archive_from = f"upstream {pkg.archive_upstream} + patches"
    else:
        archive_from = "git archive"
    if dry:
        return Source(commit, entry.path, text, facts, tarball, archive_top, archive_from)
    if extra:
        data = g.read_blobs(repo, [blobs[name] for name in extra if blobs[name] not in contents])
        data.update(contents)
        for name in extra:
            (top / "SOURCES" / name).write_bytes(data[blobs[name]])
            st.note(f"# source {name} from git")

    if archive_name in blobs:
        pass
    elif pkg.archive_command:
        made = run_archive_command(ctx, st, commit, ctx.work_dir)
        _check_top_folder(st, made, archive_top, pkg.manifest)
        shutil.move(made, tarball)
        st.note(f"# archive {archive_name} (from {made.name}), top folder {archive_top}")
    elif pkg.archive_upstream:
        spec_rel = PurePosixPath(pkg.spec.strip("/") if pkg.spec else entry.path)
        packaging = [str(spec_rel), *(str(spec_rel.parent / name) for name in extra)]
        text = _upstream(
            ctx,
            st,
            commit,
            tarball=tarball,
            archive_top=archive_top,
            text=text,
            facts=facts,
            packaging=packaging,
            macros=macros,
        )
    else:
        make_archive(repo, commit, tarball, archive_top, st, listing=(listing, contents))
        st.note(f"# archive {archive_name}, top folder {archive_top or '(none: %setup -c)'}")
    return Source(commit, entry.path, text, facts, tarball, archive_top, archive_from)


def _listing(ctx: BuildContext) -> tuple[str, list[g.TreeEntry]]:
    """(the full commit id, every file of its tree with blob sizes) in one ``ls-tree``;
    a recorded commit that is not there fails as unavailable."""
    repo = ctx.source_repo
    if g.is_oid(ctx.commit):  # a gitlink records the full id: no resolve needed
        try:
            return ctx.commit, g.ls_tree(repo, f"{ctx.commit}^{{commit}}", sizes=True)
        except GitError:
            pass  # the resolve below says whether it is missing
    found = g.resolve(repo, [f"{ctx.commit}^{{commit}}"])
    if found[0] is None:
        raise source_unavailable(ctx, "no such commit")
    return found[0][0], g.ls_tree(repo, found[0][0], sizes=True)


def _folder(listing: list[g.TreeEntry], folder: str) -> list[g.TreeEntry]:
    """The entries directly in ``folder`` ("": the top) of a recursive listing, their
    paths relative to it."""
    prefix = f"{folder}/" if folder else ""
    return [
        e._replace(path=e.path[len(prefix) :])
        for e in listing
        if e.path.startswith(prefix) and "/" not in e.path[len(prefix) :]
    ]


def _described_version(ctx: BuildContext, st: Stage, commit: str) -> str:
    """``version: describe``: the rpm Version of the nearest matching tag (versions.py)."""
    pkg = ctx.package
    template = pkg.version_describe or DEFAULT_TEMPLATE
    described = describe(ctx.source_repo, commit, template)
    if described is None:
        glob = template.replace("{version}", "*")
        st.fail(
            f"version: describe (from {pkg.manifest}): no tag matching {glob!r} is reachable "
            f"from {commit[:12]} in {pkg.path}: tag a release, fetch the tags "
            "(git fetch --tags), or set version:"
        )
    try:
        version = version_of(described, template, pkg.version_snapshot)
    except VersionError as exc:
        st.fail(f"version: describe (from {pkg.manifest}): {exc}")
    st.note(
        f"# git describe: {described.tag} + {described.distance} commit(s) -> Version {version}"
    )
    return version


def _check_top_folder(st: Stage, archive: Path, top: str | None, manifest: str) -> None:
    """The archive a command made has the top folder ``%prep`` enters (or none for -c)."""
    try:
        folders = top_folders(archive)
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        st.fail(f"the archive command wrote {archive.name}, which is not an archive: {exc}")
    if top is not None and folders != {top}:
        st.fail(
            f"the archive command wrote {archive.name} whose top folder is "
            f"{', '.join(sorted(folders)) or '(none)'} but %prep enters {top}/: fix %setup -n "
            f"in the spec or set archive.prefix in {manifest}"
        )


def _upstream(
    ctx: BuildContext,
    st: Stage,
    commit: str,
    *,
    tarball: Path,
    archive_top: str | None,
    text: str,
    facts: SpecFacts,
    packaging: list[str],
    macros: tuple[tuple[str, str], ...],
) -> str:
    """GEAR style: the pristine tarball of the upstream tag, the commits after it as
    patches in SOURCES and in the spec; returns the spec text with the Patch tags."""
    pkg = ctx.package
    repo = ctx.source_repo
    pattern = pkg.archive_upstream or ""
    found = upstream_tag(repo, commit, pattern)
    if found is None:
        st.fail(
            f"archive.upstream {pattern!r} (from {pkg.manifest}): no such tag is reachable "
            f"from {commit[:12]} in {pkg.path}: tag the upstream release or fetch its tags"
        )
    tag, base = found
    if not is_ancestor(repo, base, commit):
        st.fail(
            f"archive.upstream tag {tag} (from {pkg.manifest}) is not an ancestor of "
            f"{commit[:12]} in {pkg.path}: the local fixes must be commits on top of it"
        )
    make_archive(repo, base, tarball, archive_top, st)
    st.note(f"# pristine archive {tarball.name} of tag {tag} ({base})")
    patch_dir = ctx.work_dir / "upstream-patches"
    if patch_dir.exists():
        shutil.rmtree(patch_dir)
    patch_dir.mkdir(parents=True)
    single = (
        f"{facts.name}-{facts.version}-local.patch" if pkg.archive_patches == "single" else None
    )
    names = make_patches(repo, base, commit, exclude=packaging, single_name=single, dest=patch_dir)
    taken = {s.file_name for s in facts.sources}
    clash = [name for name in names if name in taken]
    if clash:
        st.fail(
            f"generated patch {', '.join(clash)} has the name of a Source or Patch of the "
            f"spec: rename it ({pkg.manifest})"
        )
    for name in names:
        shutil.move(patch_dir / name, tarball.parent / name)
        st.note(f"# patch {name} ({tag}..{commit[:12]})")
    shutil.rmtree(patch_dir, ignore_errors=True)
    if not names:
        return text
    try:
        text = with_patches(text, names, macros)
        missing = prep_applies(text, names, macros)
    except SpecError as exc:
        st.fail(f"cannot add the generated patches to the spec: {exc}")
    if missing:
        st.fail(
            f"the spec's %prep does not apply the generated patches ({', '.join(missing)}): "
            f"use %autosetup -p1, or %autopatch -p1 after %setup ({pkg.manifest})"
        )
    return text


# ------------------------------------------------------------------ srpm
