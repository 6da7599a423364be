"""The rpm pipeline's source stage: spec, tarball and other sources, from git objects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from superbuild import git as g
from superbuild.pipelines.api import BuildContext
from superbuild.pipelines.rpm.archive import archive_format, make_archive, supported_suffixes
from superbuild.pipelines.rpm.options import options_of
from superbuild.pipelines.rpm.spec import SpecError, SpecFacts, read_spec, with_version
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


def read_source(ctx: BuildContext, st: Stage, top: Path) -> Source:
    pkg = ctx.package
    repo = ctx.source_repo
    check_source_repo(ctx)
    specs = [f"{ctx.commit}^{{commit}}"]
    if pkg.spec:
        specs.append(f"{ctx.commit}:{pkg.spec}")
    found = g.resolve(repo, specs)
    if found[0] is None:
        raise source_unavailable(ctx, "no such commit")
    commit = found[0][0]
    st.note(f"# {pkg.name}: {pkg.path} at {commit}")

    if pkg.spec:
        if len(found) < 2 or found[1] is None or found[1][1] != "blob":
            st.fail(f"spec {pkg.spec} (from {pkg.manifest}) is not in {pkg.path} at {commit[:12]}")
        spec_path = PurePosixPath(pkg.spec.strip("/"))
        spec_dir = "" if str(spec_path.parent) == "." else str(spec_path.parent)
        tree = g.ls_tree(repo, f"{commit}:{spec_dir}" if spec_dir else commit, recursive=False)
        entry = next((e for e in tree if e.path == spec_path.name and e.kind == "blob"), None)
        if entry is None:
            st.fail(f"spec {pkg.spec} (from {pkg.manifest}) is not in {pkg.path} at {commit[:12]}")
    else:
        tree = g.ls_tree(repo, commit, recursive=False)
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

    text = g.read_blobs(repo, [entry.oid])[entry.oid].decode("utf-8", "surrogateescape")
    macros = options_of(ctx.options).macros
    try:
        if pkg.version:
            text = with_version(text, pkg.version, macros)
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
    if archive_format(archive_name) is None:
        st.fail(
            f"Source0 {archive_name} is not in {pkg.path} at {commit[:12]} and is not an "
            f"archive superbuild can make (it makes {supported_suffixes()}): commit it, "
            f"or rename Source0 ({pkg.manifest})"
        )
    extra = [
        s.file_name for s in facts.sources if s.file_name in blobs and s.file_name != entry.path
    ]
    if extra:
        data = g.read_blobs(repo, [blobs[name] for name in extra])
        for name in extra:
            (top / "SOURCES" / name).write_bytes(data[blobs[name]])
            st.note(f"# source {name} from git")

    tarball = top / "SOURCES" / archive_name
    if archive_name not in blobs:
        archive_top = None if facts.creates_dir else facts.archive_dir
        make_archive(repo, commit, tarball, archive_top, st)
        st.note(f"# archive {archive_name}, top folder {archive_top or '(none: %setup -c)'}")
    return Source(commit, entry.path, text, facts, tarball)


# ------------------------------------------------------------------ srpm
