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
    has the tag; query it with ``rpm -qp --qf '%{VCS}'``).  Then, with ``builder:
    rpmbuild``, ``rpmbuild -bs`` on the host in a private ``_topdir``; with ``builder:
    mock``, the SRPM is built in the target's chroot, so that the target's macros
    (``%dist``, ``%rhel``, ``%python3_pkgversion``) decide what goes into it::

        mock -r CONFIG --buildsrpm --spec SPEC --sources SOURCES --resultdir DIR
             --uniqueext superbuild-NAME --no-cleanup-after [--define 'NAME VALUE' ...]

    ``--no-cleanup-after`` keeps the chroot for the rpm stage's ``--no-clean`` rebuild:
    one chroot init per package.  mock's logs are kept as ``mock-srpm-<name>.log``.
    ``n`` is wrong in a shallow clone: CI must fetch full history.

``rpm``
    ``builder: rpmbuild`` runs ``rpmbuild --rebuild --nodeps``.  ``--nodeps`` is
    deliberate: the host's rpm database (empty on Debian, unrelated to the target on
    others) cannot satisfy BuildRequires, so this builder is for local and test builds
    whose build dependencies are on the host.  BuildRequires are honoured by
    ``builder: mock``, which resolves them in its chroot::

        mock -r CONFIG --rebuild SRPM --resultdir DIR --uniqueext superbuild-NAME --no-clean
             [--addrepo file:///OUTPUT/rpms ...]

    ``--addrepo`` adds this run's output repository so that dependents build against
    packages just built (only once it has ``repodata/``: call
    :func:`superbuild.outrepo.refresh_metadata` after each wave).  On a remote worker
    the coordinator ships instead the RPMs of this run that the package requires
    (:attr:`~superbuild.pipelines.JobInputs.repo_rpms`); they become a repository in
    ``<work>/deps-repo`` (``createrepo_c``) added with ``--addrepo`` too.  ``--uniqueext`` gives
    each package its own chroot so parallel builds do not queue on one root lock (mock
    shares the root cache between them); with targets it is ``superbuild-NAME@TARGET``,
    one chroot per package and target.  ``--no-clean`` reuses the chroot that the srpm
    stage's ``--buildsrpm`` cleaned first and left: every package build still starts
    from a clean chroot, initialised once.
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

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from superbuild import git as g
from superbuild import outrepo
from superbuild.errors import SuperbuildError
from superbuild.pipelines.api import (
    BuildContext,
    BuildProducts,
    JobInputs,
    Pipeline,
    Runner,
    Workspace,
)
from superbuild.pipelines.rpm import builders
from superbuild.pipelines.rpm.options import RpmOptions, default_builder, options_of
from superbuild.pipelines.rpm.source import Source, read_source
from superbuild.pipelines.rpm.spec import (
    SpecError,
    SpecFacts,
    SpecInputs,
    read_spec,
    release_suffix,
    stamped_facts,
    with_provenance,
)
from superbuild.pipelines.source import inputs_for
from superbuild.pipelines.stage import Stage
from superbuild.pipelines.transport import Blob

if TYPE_CHECKING:
    from superbuild.package import Package, Settings

#: Resource a worker must offer to run mock builds (``dask worker --resources mock=1``).
MOCK_RESOURCE = "mock"


class RpmPipeline(Pipeline):
    """Build source and binary RPMs from a spec file in the package's repository."""

    name: str = "rpm"
    stages: tuple[str, ...] = ("source", "srpm", "rpm", "sign", "collect")

    def options(
        self, package: Package, settings: Settings, *, builder: str | None, output: Path
    ) -> RpmOptions:
        """``--builder``, else the manifest's (or settings default) ``builder:``, else mock
        if installed, else rpmbuild; the signing key from the settings."""
        chosen = builder or package.builder or default_builder()
        try:
            return RpmOptions(
                builder=chosen,
                mock_config=package.mock_config,
                # Dependents built by mock read this run's repository (--addrepo).
                extra_repos=(output / outrepo.RPMS_DIR,) if chosen == "mock" else (),
                sign_key=settings.sign_key,
                gpg_home=settings.gpg_home,
                macros=package.rpm_macros,
            )
        except SuperbuildError as exc:
            raise SuperbuildError(f"{package.name}: {exc}") from None

    def resources(self, ctx: BuildContext) -> Mapping[str, int]:
        return {MOCK_RESOURCE: 1} if options_of(ctx.options).builder == "mock" else {}

    def needs_dependency_artifacts(self, ctx: BuildContext) -> bool:
        # mock resolves BuildRequires in its chroot: it needs this run's RPMs of the
        # requirements; rpmbuild --nodeps reads nothing of them.
        return options_of(ctx.options).builder == "mock"

    def coordinator_tools(self, ctx: BuildContext) -> tuple[str, ...]:
        # The spec is read with librpm; the output repository gets createrepo_c metadata.
        return ("git", "python3-rpm", "createrepo_c")

    def build_tools(self, ctx: BuildContext) -> tuple[str, ...]:
        options = options_of(ctx.options)
        tools = ["mock"] if options.builder == "mock" else ["rpmbuild"]
        if options.sign_key:
            tools += ["rpmsign", "gpg"]
        return tuple(tools)

    def check_received(
        self, ctx: BuildContext, inputs: JobInputs, products: BuildProducts
    ) -> str | None:
        """Each package file a worker sent is a readable RPM (``rpm -qp``) named after its
        own header; exactly one source RPM, whose name, version and release are those of
        the spec prepared here (mock: the release may end in the chroot's own ``%dist``,
        it still carries the commit stamp), and whose ``VCS`` is the commit; every binary
        RPM names that source RPM and carries the same version and ``VCS``."""
        spec = inputs.payload
        if not isinstance(spec, SpecInputs):
            return "rpm inputs carry no spec"
        headers = {}
        for path in products.packages:
            header = _query(path)
            if isinstance(header, str):
                return header
            headers[path.name] = header
        sources = [n for n, h in headers.items() if h["SOURCERPM"] == "(none)"]
        if len(sources) != 1:
            return f"expected one source RPM, got {len(sources)} ({', '.join(sources) or 'none'})"
        srpm = sources[0]
        top = headers[srpm]
        mock = options_of(inputs.options).builder == "mock"
        stamp = f"g{spec.commit[:7]}."
        release_ok = top["RELEASE"] == spec.release or (mock and stamp in top["RELEASE"])
        if (top["NAME"], top["VERSION"]) != (spec.name, spec.version) or not release_ok:
            got = f"{top['NAME']}-{top['VERSION']}-{top['RELEASE']}"
            return (
                f"{srpm} is {got}, not {spec.name}-{spec.version}-{spec.release} as the "
                "spec prepared here says"
            )
        for name, header in headers.items():
            if header["VCS"] not in ("(none)", spec.commit) or (
                name == srpm and header["VCS"] != spec.commit
            ):
                return f"{name} says VCS {header['VCS']}, not the commit {spec.commit}"
            if name != srpm and (header["SOURCERPM"], header["VERSION"]) != (
                srpm,
                top["VERSION"],
            ):
                return f"{name} was not built from {srpm} ({header['SOURCERPM']})"
        return None

    def published(self, ctx: BuildContext) -> None:
        """mock dependents read this run's repository (``--addrepo``): refresh its metadata."""
        if options_of(ctx.options).builder == "mock":
            outrepo.refresh_metadata(ctx.output)

    def preview(self, ctx: BuildContext) -> Mapping[str, str]:
        """The NEVR, the archive and its top folder the source stage would give."""
        from superbuild.proc import Session

        top = ctx.work_dir / "input"
        (top / "SOURCES").mkdir(parents=True, exist_ok=True)
        ctx.log_dir.mkdir(parents=True, exist_ok=True)
        with Stage.of(ctx, "source", Session().run_logged, {}) as st:
            source = read_source(ctx, st, top, dry=True)
            _, _, stamped = _stamp(ctx, st, source)
        epoch = f"{stamped.epoch}:" if stamped.epoch else ""
        return {
            "spec": source.spec_name,
            "nevr": f"{stamped.name}-{epoch}{stamped.version}-{stamped.release}",
            "archive": source.tarball.name,
            "top_folder": source.archive_top or "",
            "archive_from": source.archive_from,
        }

    def prepare(self, ctx: BuildContext, runner: Runner, durations: dict[str, float]) -> JobInputs:
        """The source stage (coordinator): spec, tarball and other sources from git."""
        options_of(ctx.options)
        top = ctx.work_dir / "input"
        if top.exists():
            shutil.rmtree(top)
        for sub in ("SOURCES", "SPECS"):
            (top / sub).mkdir(parents=True)
        try:
            with Stage.of(ctx, "source", runner, durations) as st:
                source = read_source(ctx, st, top)
                text, count, stamped = _stamp(ctx, st, source)
                st.note(f"# Release {source.facts.release!r} -> {stamped.release!r}")
            sources = [Blob.read(p) for p in sorted((top / "SOURCES").iterdir()) if p.is_file()]
        finally:
            shutil.rmtree(top, ignore_errors=True)
        spec = SpecInputs(
            commit=source.commit,
            file_name=source.spec_name,
            text=text,
            commit_count=count,
            name=stamped.name,
            version=stamped.version,
            release=stamped.release,
        )
        return inputs_for(ctx, durations, sources=sources, payload=spec)

    def build(
        self,
        inputs: JobInputs,
        ws: Workspace,
        runner: Runner,
        durations: dict[str, float],
    ) -> BuildProducts:
        """The srpm, rpm and sign stages (anywhere), from the prepared spec and sources."""
        spec = inputs.payload
        if not isinstance(spec, SpecInputs):
            raise SuperbuildError(f"{inputs.package.name}: rpm inputs carry no spec")
        options = options_of(inputs.options)
        pkg = inputs.package
        srpm_top = ws.work_dir / "rpmbuild-srpm"
        rpm_top = ws.work_dir / "rpmbuild-rpm"
        mock_dirs = (ws.work_dir / builders.MOCK_SRPM_RESULT, ws.work_dir / builders.MOCK_RESULT)
        for top in (srpm_top, rpm_top, *mock_dirs, ws.work_dir / "tmp"):
            if top.exists():
                shutil.rmtree(top)
        for sub in ("SOURCES", "SPECS", "SRPMS"):
            (srpm_top / sub).mkdir(parents=True)
        (ws.work_dir / "tmp").mkdir()
        for blob in inputs.sources:
            blob.write(srpm_top / "SOURCES")

        with Stage.in_workspace(ws, pkg, "srpm", runner, durations) as st:
            if options.builder == "mock":
                srpm = builders.make_srpm_mock(inputs, options, spec, ws, st, top=srpm_top)
            else:
                srpm = builders.make_srpm(inputs, spec, ws, st, srpm_top)
        with Stage.in_workspace(ws, pkg, "rpm", runner, durations) as st:
            if options.builder == "mock":
                rpms, srpm = builders.rebuild_mock(inputs, options, ws, st, srpm)
            else:
                rpms = builders.rebuild_rpmbuild(inputs, ws, st, rpm_top, srpm)
        if options.sign_key:
            with Stage.in_workspace(ws, pkg, "sign", runner, durations) as st:
                builders.sign(inputs, options, st, [*rpms, srpm])

        version, release = spec.version, spec.release
        stem = srpm.name[: -len(".src.rpm")]
        if stem.startswith(f"{spec.name}-") and stem.count("-") >= 2:
            version, release = stem[len(spec.name) + 1 :].rsplit("-", 1)
        return BuildProducts(
            package=pkg.name,
            packages=[*rpms, srpm],
            version=version,
            release=release,
        )


#: What :func:`_query` reads of an RPM header (tab-separated, one line).
_QUERY_TAGS = ("NAME", "EPOCHNUM", "VERSION", "RELEASE", "ARCH", "SOURCERPM", "VCS")


def _query(path: Path) -> dict[str, str] | str:
    """The header tags of ``path`` that :meth:`RpmPipeline.check_received` compares, or
    a one-line reason it is not a readable RPM named after its own header."""
    from superbuild import proc

    queryformat = "\t".join(f"%{{{tag}}}" for tag in _QUERY_TAGS)
    found = proc.run(
        ["rpm", "-qp", "--nosignature", "--queryformat", queryformat, path],
        check=False,
        timeout=120,
    )
    values = found.stdout.decode("utf-8", "replace").split("\t")
    if not found.ok or len(values) != len(_QUERY_TAGS):
        return f"{path.name} is not a readable RPM ({proc.reason_line(found.stderr)})"
    header = dict(zip(_QUERY_TAGS, values, strict=True))
    arch = "src" if header["SOURCERPM"] == "(none)" else header["ARCH"]
    own = f"{header['NAME']}-{header['VERSION']}-{header['RELEASE']}.{arch}.rpm"
    if path.name != own:
        return f"{path.name} holds {own}"
    return header


def _stamp(ctx: BuildContext, st: Stage, source: Source) -> tuple[str, int, SpecFacts]:
    """The spec with its provenance (``n`` = commits up to the recorded one), and what rpm
    reads from it: the same for a build and for ``plan --verbose``."""
    count = int(g.git(ctx.source_repo, "rev-list", "--count", source.commit).stdout)
    st.note(f"# {count} commits up to {source.commit}")
    macros = options_of(ctx.options).macros
    try:
        text = with_provenance(source.spec_text, source.commit, count, macros, ctx.rebuild)
        suffix = release_suffix(source.commit, count, ctx.rebuild)
        known = stamped_facts(source.spec_text, source.facts, suffix)
        return text, count, known or read_spec(text, macros)
    except SpecError as exc:
        st.fail(f"cannot give {source.spec_name} its provenance: {exc}")


PIPELINE = RpmPipeline()
