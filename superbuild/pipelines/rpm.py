"""The ``rpm`` pipeline: git commit -> source tarball -> source RPM -> binary RPMs.

Stages (each logs to ``<log_dir>/<stage>.log``).  ``source`` and ``collect`` run on the
coordinator (:meth:`RpmPipeline.prepare`, :func:`~superbuild.pipelines.collect_outputs`),
``srpm``, ``rpm`` and ``sign`` wherever the build runs (:meth:`RpmPipeline.build`), from
the spec text and the ``SOURCES`` files alone.

``source`` (coordinator)
    Everything is read from git objects at the recorded commit, never from the work
    tree.  The spec is ``package.spec`` (relative to the repository root) or the only
    ``*.spec`` at the root.  ``rpmspec -q --srpm`` gives Name and Version
    (``package.version`` replaces the spec's Version line).  ``git archive`` makes
    ``NAME-VERSION.tar.gz`` with the prefix ``NAME-VERSION/`` (what ``%setup -q`` and
    ``%autosetup`` expect); if the spec names exactly one other ``*.tar.gz``/``*.tgz``
    source that is not in git (``Source0: .../v%{version}.tar.gz``), the tarball takes
    that name.  The spec's other Source/Patch files are copied from the spec's directory
    in git.  ``n = git rev-list --count <commit>`` is counted here too, for the srpm
    stage.

``srpm``
    The spec gets provenance: ``Release: R`` becomes ``R.<n>.g<sha7>`` where ``n`` is
    the commit count the source stage took, so a descendant commit's build sorts newer
    (``%{?dist}`` stays at the end), and ``VCS: <full commit>`` is set (rpm >= 4.15
    has the tag; query it with ``rpm -qp --qf '%{VCS}'``).  Then ``rpmbuild -bs`` in a
    private ``_topdir``.  ``n`` is wrong in a shallow clone: CI must fetch full history.

``rpm``
    ``builder: rpmbuild`` runs ``rpmbuild --rebuild --nodeps``.  ``--nodeps`` is
    deliberate: the host's rpm database (empty on Debian, unrelated to the target on
    others) cannot satisfy BuildRequires, so this builder is for local and test builds
    whose build dependencies are on the host.  BuildRequires are honoured by
    ``builder: mock``, which resolves them in its chroot::

        mock -r CONFIG --rebuild SRPM --resultdir DIR --uniqueext superbuild-NAME
             [--addrepo file:///OUTPUT/rpms ...]

    ``--addrepo`` adds this run's output repository so that dependents build against
    packages just built (only once it has ``repodata/``: call
    :func:`superbuild.outrepo.refresh_metadata` after each wave).  On a remote worker
    the coordinator ships instead the RPMs of this run that the package requires
    (:attr:`~superbuild.pipelines.JobInputs.repo_rpms`); they become a repository in
    ``<work>/deps-repo`` (``createrepo_c``) added with ``--addrepo`` too.  ``--uniqueext`` gives
    each package its own chroot so parallel builds do not queue on one root lock (mock
    shares the root cache between them).  ``--no-clean`` is not used: every build starts
    from a clean chroot (cheap thanks to the root cache), as reproducible builds need.
    mock's own logs are kept as ``mock-<name>.log``; on failure the tail of its
    ``build.log`` is appended to ``rpm.log``.  With mock the SRPM collected is the one
    mock rebuilt in the chroot, whose Release carries the target's ``%{dist}`` like the
    binary RPMs.

``sign`` (only with a signing key)
    ``rpmsign --addsign`` on every RPM before it is collected.  The key must not need a
    passphrase typed at a terminal (there is none: stdin is /dev/null).  ``%__gpg`` is
    set to the gpg found on PATH because some distributions' rpm macros name a
    ``gpg2`` that is not installed.

``collect`` (coordinator)
    :func:`superbuild.outrepo.collect` copies the RPMs atomically into the output
    repository; the metadata is refreshed by the caller.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from superbuild import git as g
from superbuild import proc
from superbuild.errors import SuperbuildError, ToolMissingError
from superbuild.pipelines import (
    BUILDERS,
    Blob,
    BuildContext,
    BuildProducts,
    JobInputs,
    Runner,
    SpecInputs,
    Stage,
    Workspace,
    build_env,
    check_source_repo,
    git_env,
    inputs_for,
    source_unavailable,
)

#: Lines of mock's build.log appended to rpm.log when mock fails.
MOCK_LOG_TAIL = 100
#: mock: the folder (under the work dir) made a repository of :attr:`JobInputs.repo_rpms`.
DEPS_REPO = "deps-repo"

_SECTIONS = (
    "package|description|prep|build|install|check|clean|files|changelog|pre|post|preun|"
    "postun|pretrans|posttrans|preuntrans|postuntrans|triggerin|triggerun|triggerpostun|"
    "triggerprein|filetriggerin|filetriggerun|filetriggerpostun|transfiletriggerin|"
    "transfiletriggerun|transfiletriggerpostun|verifyscript|generate_buildrequires|conf|"
    "sourcelist|patchlist"
)
_SECTION_RE = re.compile(rf"^%({_SECTIONS})\b", re.MULTILINE)
_TARBALL_SUFFIXES = (".tar.gz", ".tgz")
_DIST = "%{?dist}"


class SpecError(ValueError):
    """The spec cannot be given provenance (no Release or Version line)."""


def _tag_re(tag: str) -> re.Pattern[str]:
    return re.compile(
        rf"^(?P<head>{tag}[ \t]*:[ \t]*)(?P<value>[^\n]*?)[ \t]*$", re.IGNORECASE | re.MULTILINE
    )


_RELEASE_RE = _tag_re("Release")
_VERSION_RE = _tag_re("Version")
_VCS_RE = _tag_re("VCS")


def _preamble_end(text: str) -> int:
    found = _SECTION_RE.search(text)
    return found.start() if found else len(text)


def set_version(text: str, version: str) -> str:
    """Replace the value of the main package's ``Version:`` line."""
    end = _preamble_end(text)
    found = _VERSION_RE.search(text, 0, end)
    if found is None:
        raise SpecError("the spec has no Version: line in its preamble")
    return text[: found.start("value")] + version + text[found.end("value") :]


def release_suffix(commit: str, count: int) -> str:
    """``.<n>.g<sha7>``: appended to the spec's Release (``n`` = commits reachable)."""
    return f".{count}.g{commit[:7]}"


def add_provenance(text: str, commit: str, count: int) -> str:
    """Rewrite a spec so its Release names the commit and it carries ``VCS: <commit>``.

    ``Release: 1%{?dist}`` becomes ``Release: 1.<count>.g<sha7>%{?dist}``; an existing
    ``VCS:`` tag is replaced, otherwise one is added after the Release line.
    """
    end = _preamble_end(text)
    found = _RELEASE_RE.search(text, 0, end)
    if found is None:
        raise SpecError("the spec has no Release: line in its preamble")
    value = found.group("value")
    suffix = release_suffix(commit, count)
    base, dist = (value[: -len(_DIST)], _DIST) if value.endswith(_DIST) else (value, "")
    release = base + suffix + dist
    vcs = _VCS_RE.search(text, 0, end)
    if vcs is not None:
        text = text[: vcs.start("value")] + commit + text[vcs.end("value") :]
        # The VCS line may come before the Release line: search again.
        found = _RELEASE_RE.search(text, 0, _preamble_end(text))
        assert found is not None
        return text[: found.start("value")] + release + text[found.end("value") :]
    pad = " " * max(1, len(found.group("head")) - len("VCS:"))
    line_end = found.end()
    return (
        text[: found.start("value")]
        + release
        + text[found.end("value") : line_end]
        + f"\nVCS:{pad}{commit}"
        + text[line_end:]
    )


@dataclass(frozen=True)
class SpecQuery:
    """What ``rpmspec -q --srpm`` says about a spec."""

    name: str
    version: str
    release: str
    sources: tuple[str, ...]  # file names (basenames) of Source and Patch tags


def parse_spec_query(out: str) -> SpecQuery:
    lines = out.splitlines()
    if len(lines) < 3:
        raise SpecError(f"unexpected rpmspec output: {out[:200]!r}")
    sources = tuple(line[2:] for line in lines[3:] if line[:2] in ("S ", "P "))
    return SpecQuery(lines[0], lines[1], lines[2], sources)


_QUERY_FORMAT = "%{NAME}\\n%{VERSION}\\n%{RELEASE}\\n[S %{SOURCE}\\n][P %{PATCH}\\n]"


@dataclass(frozen=True)
class _Source:
    commit: str  # the full object id
    spec_name: str  # file name of the spec
    spec_text: str  # after the version override
    query: SpecQuery
    tarball: Path


class RpmPipeline:
    """Build source and binary RPMs from a spec file in the package's repository."""

    name: str = "rpm"
    stages: tuple[str, ...] = ("source", "srpm", "rpm", "sign", "collect")

    def prepare(self, ctx: BuildContext, runner: Runner, durations: dict[str, float]) -> JobInputs:
        """The source stage (coordinator): spec, tarball and other sources from git."""
        if ctx.builder not in BUILDERS:
            raise SuperbuildError(
                f"{ctx.package.name}: unknown builder {ctx.builder!r} (known: {', '.join(BUILDERS)})"
            )
        top = ctx.work_dir / "input"
        if top.exists():
            shutil.rmtree(top)
        for sub in ("SOURCES", "SPECS"):
            (top / sub).mkdir(parents=True)
        try:
            with Stage.of(ctx, "source", runner, durations) as st:
                source = self._source(ctx, st, top)
                count_out = g.git(ctx.source_repo, "rev-list", "--count", source.commit).stdout
                count = int(count_out.decode().strip())
                st.note(f"# {count} commits up to {source.commit}")
            sources = [Blob.read(p) for p in sorted((top / "SOURCES").iterdir()) if p.is_file()]
        finally:
            shutil.rmtree(top, ignore_errors=True)
        spec = SpecInputs(
            commit=source.commit,
            file_name=source.spec_name,
            text=source.spec_text,
            commit_count=count,
            name=source.query.name,
            version=source.query.version,
            release=source.query.release,
        )
        return inputs_for(ctx, durations, sources=sources, spec=spec)

    def build(
        self,
        inputs: JobInputs,
        ws: Workspace,
        runner: Runner,
        durations: dict[str, float],
    ) -> BuildProducts:
        """The srpm, rpm and sign stages (worker), from the prepared spec and sources."""
        if inputs.spec is None:
            raise SuperbuildError(f"{inputs.package.name}: rpm inputs carry no spec")
        spec = inputs.spec
        pkg = inputs.package
        srpm_top = ws.work_dir / "rpmbuild-srpm"
        rpm_top = ws.work_dir / "rpmbuild-rpm"
        for top in (srpm_top, rpm_top, ws.work_dir / "mock-result", ws.work_dir / "tmp"):
            if top.exists():
                shutil.rmtree(top)
        for sub in ("SOURCES", "SPECS", "SRPMS"):
            (srpm_top / sub).mkdir(parents=True)
        (ws.work_dir / "tmp").mkdir()
        for blob in inputs.sources:
            blob.write(srpm_top / "SOURCES")

        with ws.stage(pkg, "srpm", runner, durations) as st:
            srpm = self._srpm(inputs, ws, st, srpm_top)
        with ws.stage(pkg, "rpm", runner, durations) as st:
            if inputs.builder == "mock":
                rpms, srpm = self._mock(inputs, ws, st, srpm)
            else:
                rpms = self._rpmbuild(inputs, ws, st, rpm_top, srpm)
        if inputs.sign_key:
            with ws.stage(pkg, "sign", runner, durations) as st:
                self._sign(inputs, st, [*rpms, srpm])

        version, release = spec.version, spec.release
        stem = srpm.name[: -len(".src.rpm")]
        if stem.startswith(f"{spec.name}-") and stem.count("-") >= 2:
            version, release = stem[len(spec.name) + 1 :].rsplit("-", 1)
        return BuildProducts(
            package=pkg.name,
            rpms=[*rpms, srpm],
            version=version,
            release=release,
        )

    # ------------------------------------------------------------------ source

    def _source(self, ctx: BuildContext, st: Stage, top: Path) -> _Source:
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
                st.fail(
                    f"spec {pkg.spec} (from {pkg.manifest}) is not in {pkg.path} at {commit[:12]}"
                )
            spec_path = PurePosixPath(pkg.spec.strip("/"))
            spec_dir = "" if str(spec_path.parent) == "." else str(spec_path.parent)
            tree = g.ls_tree(repo, f"{commit}:{spec_dir}" if spec_dir else commit, recursive=False)
            entry = next((e for e in tree if e.path == spec_path.name and e.kind == "blob"), None)
            if entry is None:
                st.fail(
                    f"spec {pkg.spec} (from {pkg.manifest}) is not in {pkg.path} at {commit[:12]}"
                )
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
        cmd += ["--qf", _QUERY_FORMAT, os.fspath(spec_file)]
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
        return _Source(commit, entry.path, text, query, tarball)

    # ------------------------------------------------------------------ srpm

    def _srpm(self, inputs: JobInputs, ws: Workspace, st: Stage, top: Path) -> Path:
        assert inputs.spec is not None
        spec = inputs.spec
        try:
            text = add_provenance(spec.text, spec.commit, spec.commit_count)
        except SpecError as exc:
            st.fail(str(exc))
        spec_file = top / "SPECS" / spec.file_name
        spec_file.write_text(text, encoding="utf-8", errors="surrogateescape")
        suffix = release_suffix(spec.commit, spec.commit_count)
        st.note(f"# Release {spec.release!r} + {suffix!r}")
        st.run(
            ["rpmbuild", "-bs", *_defines(ws, top), os.fspath(spec_file)],
            env=build_env(inputs),
            what="rpmbuild -bs",
        )
        srpms = sorted((top / "SRPMS").glob("*.src.rpm"))
        if len(srpms) != 1:
            st.fail(f"rpmbuild -bs produced {len(srpms)} source RPMs, expected one")
        return srpms[0]

    # ------------------------------------------------------------------ rpm

    def _rpmbuild(
        self, inputs: JobInputs, ws: Workspace, st: Stage, top: Path, srpm: Path
    ) -> list[Path]:
        st.run(
            ["rpmbuild", "--rebuild", "--nodeps", *_defines(ws, top), os.fspath(srpm)],
            env=build_env(inputs),
            what="rpmbuild --rebuild",
        )
        rpms = sorted((top / "RPMS").rglob("*.rpm"))
        if not rpms:
            st.fail("rpmbuild produced no binary RPMs")
        return rpms

    def _mock(
        self, inputs: JobInputs, ws: Workspace, st: Stage, srpm: Path
    ) -> tuple[list[Path], Path]:
        result_dir = ws.work_dir / "mock-result"
        result_dir.mkdir(parents=True, exist_ok=True)
        config = inputs.mock_config or inputs.package.mock_config or "default"
        cmd = [
            "mock",
            "-r",
            config,
            "--rebuild",
            os.fspath(srpm),
            "--resultdir",
            os.fspath(result_dir),
            "--uniqueext",
            f"superbuild-{inputs.package.name}",
        ]
        for repo in map(Path, inputs.extra_repos):
            if (repo / "repodata" / "repomd.xml").is_file():
                cmd += ["--addrepo", repo.resolve().as_uri()]
            else:
                st.note(f"# not adding {repo}: no repodata yet (refresh_metadata makes it)")
        if inputs.repo_rpms:
            # Packages of this run that this one needs, shipped by the coordinator.
            deps = ws.work_dir / DEPS_REPO
            if deps.exists():
                shutil.rmtree(deps)
            deps.mkdir()
            for blob in inputs.repo_rpms:
                blob.write(deps)
            st.note(f"# {len(inputs.repo_rpms)} RPM(s) of this run in {deps}")
            st.run(["createrepo_c", "--quiet", os.fspath(deps)], what="createrepo_c")
            cmd += ["--addrepo", deps.as_uri()]
        try:
            st.run(cmd, env=build_env(inputs), what="mock")
        except SuperbuildError:
            _append_tail(st, result_dir / "build.log")
            raise
        finally:
            _keep_mock_logs(result_dir, ws.log_dir)
        rpms = sorted(p for p in result_dir.glob("*.rpm") if not p.name.endswith(".src.rpm"))
        if not rpms:
            st.fail(f"mock produced no binary RPMs in {result_dir}")
        rebuilt = sorted(result_dir.glob("*.src.rpm"))
        return rpms, rebuilt[0] if len(rebuilt) == 1 else srpm

    # ------------------------------------------------------------------ sign

    def _sign(self, inputs: JobInputs, st: Stage, files: list[Path]) -> None:
        gpg = shutil.which("gpg") or shutil.which("gpg2")
        if gpg is None:
            raise ToolMissingError(f"gpg not found: {proc.INSTALL_HINTS['gpg']}")
        cmd = ["rpmsign", "--addsign", "--define", f"_gpg_name {inputs.sign_key}"]
        cmd += ["--define", f"__gpg {gpg}"]
        if inputs.gpg_home:
            cmd += ["--define", f"_gpg_path {inputs.gpg_home}"]
        st.run([*cmd, *map(os.fspath, files)], env=build_env(inputs), what="rpmsign")


def _defines(ws: Workspace, top: Path) -> list[str]:
    return ["--define", f"_topdir {top}", "--define", f"_tmppath {ws.work_dir / 'tmp'}"]


def _append_tail(st: Stage, log: Path) -> None:
    try:
        lines = log.read_bytes().splitlines()[-MOCK_LOG_TAIL:]
    except OSError:
        return
    st.note(f"# ---- last {len(lines)} lines of {log} ----")
    st.log.write(b"".join(line + b"\n" for line in lines))
    st.log.flush()


def _keep_mock_logs(result_dir: Path, log_dir: Path) -> None:
    for log in sorted(result_dir.glob("*.log")):
        with contextlib.suppress(OSError):
            shutil.copyfile(log, log_dir / f"mock-{log.name}")
