"""The rpm pipeline's source stage: spec, tarball and other sources, from git objects."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from superbuild import git as g
from superbuild import proc
from superbuild.pipelines.api import BuildContext
from superbuild.pipelines.rpm.spec import (
    QUERY_FORMAT,
    SpecError,
    SpecQuery,
    parse_spec_query,
    set_version,
)
from superbuild.pipelines.source import check_source_repo, git_env, source_unavailable
from superbuild.pipelines.stage import Stage, build_env

_TARBALL_SUFFIXES = (".tar.gz", ".tgz")


@dataclass(frozen=True)
class Source:
    """What the source stage found."""

    commit: str  # the full object id
    spec_name: str  # file name of the spec
    spec_text: str  # after the version override
    query: SpecQuery
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
    if pkg.version:
        try:
            text = set_version(text, pkg.version)
        except SpecError as exc:
            st.fail(f"cannot set version {pkg.version}: {exc}")
    spec_file = top / "SPECS" / entry.path
    spec_file.write_text(text, encoding="utf-8", errors="surrogateescape")

    cmd = ["rpmspec", "-q", "--srpm", "--define", f"_topdir {top}"]
    cmd += ["--qf", QUERY_FORMAT, os.fspath(spec_file)]
    st.note(f"$ {shlex.join(cmd)}")
    result = proc.run(cmd, env=build_env(ctx), check=False, timeout=st.remaining())
    st.log.write(result.stderr)
    if not result.ok:
        st.log.write(result.stdout)
        st.fail(f"rpmspec cannot parse {entry.path} (exit {result.returncode})")
    query = parse_spec_query(result.stdout.decode("utf-8", "surrogateescape"))
    st.note(f"# name {query.name}, version {query.version}")

    # Other Source/Patch files come from the spec's directory in git.
    blobs = {e.path: e.oid for e in tree if e.kind == "blob"}
    extra = [s for s in query.sources if s in blobs and s != entry.path]
    missing = [s for s in query.sources if s not in blobs]
    tarball_name = f"{query.name}-{query.version}.tar.gz"
    archives = [s for s in missing if s.endswith(_TARBALL_SUFFIXES)]
    if tarball_name not in missing and len(archives) == 1:
        tarball_name = archives[0]
    if extra:
        data = g.read_blobs(repo, [blobs[s] for s in extra])
        for name in extra:
            (top / "SOURCES" / name).write_bytes(data[blobs[name]])
            st.note(f"# source {name} from git")

    tarball = top / "SOURCES" / tarball_name
    st.run(
        [
            "git",
            "-C",
            os.fspath(repo),
            "archive",
            "--format=tar.gz",
            f"--prefix={query.name}-{query.version}/",
            "-o",
            os.fspath(tarball),
            commit,
        ],
        env=git_env(),
        what="git archive",
    )
    return Source(commit, entry.path, text, query, tarball)


# ------------------------------------------------------------------ srpm
