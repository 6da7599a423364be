"""The rpm pipeline's build stages: the SRPM (``rpmbuild -bs`` on the host, or
``mock --buildsrpm`` in the target's chroot), the binary RPMs (rpmbuild or mock), rpmsign."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from superbuild import proc
from superbuild.errors import SuperbuildError, ToolMissingError
from superbuild.pipelines.api import JobInputs, Workspace
from superbuild.pipelines.rpm.options import RpmOptions, options_of
from superbuild.pipelines.rpm.spec import SpecInputs
from superbuild.pipelines.stage import Stage, build_env

#: Lines of mock's build.log appended to rpm.log when mock fails.
MOCK_LOG_TAIL = 100
#: mock: the folder (under the work dir) made a repository of the dependencies' RPMs.
DEPS_REPO = "deps-repo"
#: mock: the result folders (under the work dir) of ``--buildsrpm`` and ``--rebuild``.
MOCK_SRPM_RESULT = "mock-srpm"
MOCK_RESULT = "mock-result"


def write_spec(spec: SpecInputs, st: Stage, top: Path) -> Path:
    """The stamped spec written to ``top/SPECS``."""
    spec_file = top / "SPECS" / spec.file_name
    spec_file.write_text(spec.text, encoding="utf-8", errors="surrogateescape")
    st.note(f"# {spec.name} {spec.version}-{spec.release}")
    return spec_file


def make_srpm(inputs: JobInputs, spec: SpecInputs, ws: Workspace, st: Stage, top: Path) -> Path:
    """``rpmbuild -bs`` on the host of the spec (stamped by the source stage)."""
    spec_file = write_spec(spec, st, top)
    st.run(
        ["rpmbuild", "-bs", *_defines(inputs, ws, top), os.fspath(spec_file)],
        env=build_env(inputs),
        what="rpmbuild -bs",
    )
    srpms = sorted((top / "SRPMS").glob("*.src.rpm"))
    if len(srpms) != 1:
        st.fail(f"rpmbuild -bs produced {len(srpms)} source RPMs, expected one")
    return srpms[0]


def make_srpm_mock(
    inputs: JobInputs, options: RpmOptions, spec: SpecInputs, ws: Workspace, st: Stage, *, top: Path
) -> Path:
    """``mock --buildsrpm`` in the target's chroot, so its macros (``%dist``, ``%rhel``...)
    decide the SRPM; ``--no-cleanup-after`` keeps the chroot for :func:`rebuild_mock`."""
    spec_file = write_spec(spec, st, top)
    result_dir = _fresh(ws.work_dir / MOCK_SRPM_RESULT)
    cmd = [
        *_mock_base(inputs, options),
        "--buildsrpm",
        "--spec",
        os.fspath(spec_file),
        "--sources",
        os.fspath(top / "SOURCES"),
        "--resultdir",
        os.fspath(result_dir),
        "--uniqueext",
        chroot_tag(inputs),
        "--no-cleanup-after",
        *options.defines(),
    ]
    _run_mock(
        st,
        cmd,
        inputs,
        result_dir=result_dir,
        log_dir=ws.log_dir,
        prefix="mock-srpm-",
        what="mock --buildsrpm",
    )
    srpms = sorted(result_dir.glob("*.src.rpm"))
    if len(srpms) != 1:
        st.fail(f"mock --buildsrpm produced {len(srpms)} source RPMs in {result_dir}, expected one")
    return srpms[0]


def rebuild_rpmbuild(
    inputs: JobInputs, ws: Workspace, st: Stage, top: Path, srpm: Path
) -> list[Path]:
    """``rpmbuild --rebuild --nodeps`` (see the package docstring for why ``--nodeps``)."""
    st.run(
        ["rpmbuild", "--rebuild", "--nodeps", *_defines(inputs, ws, top), os.fspath(srpm)],
        env=build_env(inputs),
        what="rpmbuild --rebuild",
    )
    rpms = sorted((top / "RPMS").rglob("*.rpm"))
    if not rpms:
        st.fail("rpmbuild produced no binary RPMs")
    return rpms


def rebuild_mock(
    inputs: JobInputs, options: RpmOptions, ws: Workspace, st: Stage, srpm: Path
) -> tuple[list[Path], Path]:
    """``mock --rebuild --no-clean`` (the chroot :func:`make_srpm_mock` left): the binary
    RPMs and the SRPM mock rebuilt in its chroot."""
    result_dir = _fresh(ws.work_dir / MOCK_RESULT)
    cmd = [
        *_mock_base(inputs, options),
        "--rebuild",
        os.fspath(srpm),
        "--resultdir",
        os.fspath(result_dir),
        "--uniqueext",
        chroot_tag(inputs),
        "--no-clean",
        *options.defines(),
    ]
    for repo in () if inputs.remote else options.extra_repos:
        if (repo / "repodata" / "repomd.xml").is_file():
            cmd += ["--addrepo", repo.resolve().as_uri()]
        else:
            st.note(f"# not adding {repo}: no repodata yet (refresh_metadata makes it)")
    if inputs.dependency_files:
        # Packages of this run that this one needs, shipped by the coordinator.
        deps = ws.work_dir / DEPS_REPO
        if deps.exists():
            shutil.rmtree(deps)
        deps.mkdir()
        for blob in inputs.dependency_files:
            blob.write(deps)
        st.note(f"# {len(inputs.dependency_files)} RPM(s) of this run in {deps}")
        st.run(["createrepo_c", "--quiet", os.fspath(deps)], what="createrepo_c")
        cmd += ["--addrepo", deps.as_uri()]
    _run_mock(
        st, cmd, inputs, result_dir=result_dir, log_dir=ws.log_dir, prefix="mock-", what="mock"
    )
    rpms = sorted(p for p in result_dir.glob("*.rpm") if not p.name.endswith(".src.rpm"))
    if not rpms:
        st.fail(f"mock produced no binary RPMs in {result_dir}")
    rebuilt = sorted(result_dir.glob("*.src.rpm"))
    return rpms, rebuilt[0] if len(rebuilt) == 1 else srpm


def sign(inputs: JobInputs, options: RpmOptions, st: Stage, files: list[Path]) -> None:
    """``rpmsign --addsign`` with the settings' key."""
    gpg = shutil.which("gpg") or shutil.which("gpg2")
    if gpg is None:
        raise ToolMissingError(f"gpg not found: {proc.INSTALL_HINTS['gpg']}")
    cmd = ["rpmsign", "--addsign", *options.defines()]
    cmd += ["--define", f"_gpg_name {options.sign_key}"]
    cmd += ["--define", f"__gpg {gpg}"]
    if options.gpg_home:
        cmd += ["--define", f"_gpg_path {options.gpg_home}"]
    st.run([*cmd, *map(os.fspath, files)], env=build_env(inputs), what="rpmsign")


def chroot_tag(inputs: JobInputs) -> str:
    """mock's ``--uniqueext``: one chroot per package and target (``superbuild-NAME``,
    ``superbuild-NAME@el9``), so that two targets sharing a config never share a root."""
    name = inputs.package.name
    return f"superbuild-{name}" if inputs.target is None else f"superbuild-{name}@{inputs.target}"


def _mock_base(inputs: JobInputs, options: RpmOptions) -> list[str]:
    return ["mock", "-r", options.mock_config or inputs.package.mock_config or "default"]


def _fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def _run_mock(
    st: Stage,
    cmd: list[str],
    inputs: JobInputs,
    *,
    result_dir: Path,
    log_dir: Path,
    prefix: str,
    what: str,
) -> None:
    """Run mock; its logs are kept as ``<prefix><name>.log``, its build.log's tail on failure."""
    try:
        st.run(cmd, env=build_env(inputs), what=what)
    except SuperbuildError:
        _append_tail(st, result_dir / "build.log")
        raise
    finally:
        _keep_mock_logs(result_dir, log_dir, prefix)


def _defines(inputs: JobInputs, ws: Workspace, top: Path) -> list[str]:
    topdir = ["--define", f"_topdir {top}", "--define", f"_tmppath {ws.work_dir / 'tmp'}"]
    return [*options_of(inputs.options).defines(), *topdir]


def _append_tail(st: Stage, log: Path) -> None:
    try:
        lines = log.read_bytes().splitlines()[-MOCK_LOG_TAIL:]
    except OSError:
        return
    st.note(f"# ---- last {len(lines)} lines of {log} ----")
    st.log.write(b"".join(line + b"\n" for line in lines))
    st.log.flush()


def _keep_mock_logs(result_dir: Path, log_dir: Path, prefix: str) -> None:
    for log in sorted(result_dir.glob("*.log")):
        with contextlib.suppress(OSError):
            shutil.copyfile(log, log_dir / f"{prefix}{log.name}")
