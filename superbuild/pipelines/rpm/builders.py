"""The rpm pipeline's build stages: ``rpmbuild -bs``, then rpmbuild or mock, then rpmsign."""

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


def make_srpm(inputs: JobInputs, spec: SpecInputs, ws: Workspace, st: Stage, top: Path) -> Path:
    """``rpmbuild -bs`` of the spec (stamped with its provenance by the source stage)."""
    spec_file = top / "SPECS" / spec.file_name
    spec_file.write_text(spec.text, encoding="utf-8", errors="surrogateescape")
    st.note(f"# {spec.name} {spec.version}-{spec.release}")
    st.run(
        ["rpmbuild", "-bs", *_defines(inputs, ws, top), os.fspath(spec_file)],
        env=build_env(inputs),
        what="rpmbuild -bs",
    )
    srpms = sorted((top / "SRPMS").glob("*.src.rpm"))
    if len(srpms) != 1:
        st.fail(f"rpmbuild -bs produced {len(srpms)} source RPMs, expected one")
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
    """``mock --rebuild``: the binary RPMs and the SRPM mock rebuilt in its chroot."""
    result_dir = ws.work_dir / "mock-result"
    result_dir.mkdir(parents=True, exist_ok=True)
    config = options.mock_config or inputs.package.mock_config or "default"
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


def _keep_mock_logs(result_dir: Path, log_dir: Path) -> None:
    for log in sorted(result_dir.glob("*.log")):
        with contextlib.suppress(OSError):
            shutil.copyfile(log, log_dir / f"mock-{log.name}")
