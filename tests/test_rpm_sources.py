"""Where the SRPM's sources come from, through the real rpm pipeline (git, rpmbuild):
versions from tags, a Release override, ``archive:`` (name/prefix, the project's own
archive command, GEAR-style upstream tarball + patches), nested submodules, Git LFS."""

from __future__ import annotations

import io
import itertools
import os
import shutil
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from superbuild.pipelines.api import PackageBuild, PipelineFailed
from superbuild.pipelines.rpm.versions import Described, VersionError, version_of
from superbuild.pipelines.task import run_package
from tests.rpmtools import (
    commit_files,
    git,
    hello_spec,
    init_repo,
    make_context,
    make_package,
    rpm_payload,
    rpm_query,
    vercmp,
)

pytestmark = pytest.mark.rpm

FILES = {"payload.txt": "p\n", "hello.conf": "c\n"}


def build(
    tmp_path: Path, repo: Path, commit: str, run: str = "run1", **fields: Any
) -> PackageBuild:
    package = make_package(**fields)
    return run_package(make_context(tmp_path, package, commit, repo, run=run))


def outputs(tmp_path: Path, result: PackageBuild) -> tuple[Path, Path]:
    binary, srpm = (tmp_path / "output" / a for a in result.artifacts)
    return binary, srpm


def srpm_sources(srpm: Path) -> list[str]:
    return sorted(
        rpm_query(srpm, "[%{SOURCE}\n]").split() + rpm_query(srpm, "[%{PATCH}\n]").split()
    )


# --------------------------------------------------------------------------- versions


@pytest.mark.parametrize(
    ("tag", "template", "snapshot", "distance", "expected"),
    [
        ("v18.12.0", "{version}", "version", 9, "18.12.0^9.g856aa2d"),
        ("18.12.0", "{version}", "version", 0, "18.12.0"),
        ("v18.12.0", "{version}", "release", 9, "18.12.0"),
        ("1.2.0rc1", "{version}", "version", 0, "1.2.0~rc1"),
        ("v1.2.0-rc.1", "{version}", "version", 3, "1.2.0~rc.1^3.g856aa2d"),
        ("release-2.0", "release-{version}", "version", 0, "2.0"),
    ],
)
def test_version_of_a_described_commit(
    tag: str, template: str, snapshot: str, distance: int, expected: str
) -> None:
    described = Described(tag, distance, "856aa2d" + "0" * 33)
    assert version_of(described, template, snapshot) == expected


def test_versions_sort_as_fedora_says() -> None:
    order = [
        "1.2.0~rc1",
        "1.2.0~rc1^3.g856aa2d",
        "1.2.0",
        "1.2.0^1.gabc1234",
        "1.2.0^9.g0000000",
        "1.2.1",
    ]
    for older, newer in itertools.pairwise(order):
        assert vercmp(older, newer) < 0, (older, newer)


def test_a_tag_rpm_cannot_take_is_refused() -> None:
    with pytest.raises(VersionError, match=r"tag 'v1.0-final' gives version '1.0-final'"):
        version_of(Described("v1.0-final", 0, "0" * 40), "{version}", "version")


def test_version_describe_post_release_snapshot(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "src" / "hello")
    tagged = commit_files(repo, {"hello.spec": hello_spec(), **FILES}, "release")
    git(repo, "tag", "-a", "-m", "18.12.0", "v18.12.0", tagged)
    for n in range(2):
        head = commit_files(repo, {"payload.txt": f"fix {n}\n"}, f"fix {n}")
    at_tag = build(tmp_path, repo, tagged, run="r0", version_describe="{version}")
    after = build(tmp_path, repo, head, run="r1", version_describe="{version}")
    assert at_tag.version == "18.12.0"
    assert after.version == f"18.12.0^2.g{head[:7]}"
    binary, _ = outputs(tmp_path, after)
    assert rpm_query(binary, "%{VERSION}") == f"18.12.0^2.g{head[:7]}"
    old = f"{at_tag.version}-{at_tag.release}"
    assert vercmp(old, f"{after.version}-{after.release}") < 0
    release_mode = build(
        tmp_path, repo, head, run="r2", version_describe="{version}", version_snapshot="release"
    )
    assert release_mode.version == "18.12.0"
    assert release_mode.release == f"1.3.g{head[:7]}"


def test_version_describe_without_a_tag_names_the_fix(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "src" / "hello")
    commit = commit_files(repo, {"hello.spec": hello_spec(), **FILES})
    with pytest.raises(PipelineFailed) as info:
        build(tmp_path, repo, commit, version_describe="v{version}")
    message = str(info.value)
    assert "no tag matching 'v*' is reachable" in message
    assert "manifests/hello.yaml" in message


def test_release_override_replaces_a_placeholder(tmp_path: Path) -> None:
    """RDO distgit specs say ``Release: XXX``; ``release:`` gives the real one."""
    repo = init_repo(tmp_path / "src" / "hello")
    commit = commit_files(repo, {"hello.spec": hello_spec(release="XXX"), **FILES})
    result = build(tmp_path, repo, commit, release="2%{?dist}")
    assert result.release == f"2.1.g{commit[:7]}"


# --------------------------------------------------------------------------- archive: name, prefix


def test_archive_prefix_and_name_override(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "src" / "hello")
    spec = (
        hello_spec()
        .replace(
            "Source0:        %{name}-%{version}.tar.gz", "Source0: notes.txt\nSource2: code.tar.xz"
        )
        .replace("%setup -q\n", "%setup -q -T -b 2 -n src-tree\n")
    )
    commit = commit_files(repo, {"hello.spec": spec, "notes.txt": "n\n", **FILES})
    result = build(tmp_path, repo, commit, archive_name="code.tar.xz", archive_prefix="src-tree")
    binary, srpm = outputs(tmp_path, result)
    assert rpm_payload(binary)["/usr/share/hello/payload.txt"] == b"p\n"
    assert srpm_sources(srpm) == ["code.tar.xz", "hello.conf", "notes.txt"]
    with pytest.raises(PipelineFailed, match=r"archive\.name other\.tar\.gz .* is not a Source"):
        build(tmp_path, repo, commit, run="r2", archive_name="other.tar.gz")


# --------------------------------------------------------------------------- archive: command


SCM_PROJECT = {
    "pyproject.toml": (
        "[build-system]\n"
        'requires = ["setuptools>=64", "setuptools-scm>=8"]\n'
        'build-backend = "setuptools.build_meta"\n'
        "[project]\n"
        'name = "hello-scm"\n'
        'dynamic = ["version"]\n'
        "[tool.setuptools]\n"
        "packages = []\n"
        "[tool.setuptools_scm]\n"
    ),
    "payload.txt": "p\n",
    "hello.conf": "c\n",
}


def scm_spec() -> str:
    """A pbr/setuptools-scm style spec: the sdist's folder carries the version."""
    return (
        hello_spec()
        .replace(
            "Source0:        %{name}-%{version}.tar.gz", "Source0: hello_scm-%{version}.tar.gz"
        )
        .replace("%setup -q\n", "%setup -q -n hello_scm-%{version}\n")
        .replace(
            "install -m 0644 payload.txt",
            "install -m 0644 PKG-INFO %{buildroot}/usr/share/hello/PKG-INFO\ninstall -m 0644 payload.txt",
        )
        .replace("%files\n", "%files\n/usr/share/hello/PKG-INFO\n")
    )


def sdist_command() -> str:
    return f'{sys.executable} -m build --sdist --no-isolation --outdir "$SUPERBUILD_ARCHIVE_DIR" .'


@pytest.fixture
def scm_repo(tmp_path: Path) -> tuple[Path, str, str]:
    pytest.importorskip("setuptools_scm")
    pytest.importorskip("build")
    repo = init_repo(tmp_path / "src" / "hello")
    tagged = commit_files(repo, {**SCM_PROJECT, "hello.spec": scm_spec()}, "project")
    git(repo, "tag", "v1.3.0")
    head = commit_files(repo, {"payload.txt": "p2\n"}, "after the tag")
    return repo, tagged, head


def test_archive_command_runs_with_history_and_tags(
    tmp_path: Path, scm_repo: tuple[Path, str, str]
) -> None:
    """setuptools-scm reads the version from the tags in the clone's history (without
    them the sdist says 0.1.dev1), and superbuild packages the sdist as Source0."""
    repo, tagged, _ = scm_repo
    result = build(
        tmp_path,
        repo,
        tagged,
        version_describe="v{version}",
        archive_command=("sh", "-c", sdist_command()),
    )
    assert result.version == "1.3.0"
    binary, srpm = outputs(tmp_path, result)
    payload = rpm_payload(binary)
    assert payload["/usr/share/hello/payload.txt"] == b"p\n"
    assert b"Version: 1.3.0\n" in payload["/usr/share/hello/PKG-INFO"]
    assert "hello_scm-1.3.0.tar.gz" in srpm_sources(srpm)


def test_archive_command_whose_folder_differs_from_prep_fails_first(
    tmp_path: Path, scm_repo: tuple[Path, str, str]
) -> None:
    """Past the tag setuptools-scm says 1.3.1.dev1+g<sha>, the spec 1.0: caught before
    rpmbuild, naming both folders."""
    repo, _, head = scm_repo
    with pytest.raises(PipelineFailed) as info:
        build(tmp_path, repo, head, archive_command=("sh", "-c", sdist_command()))
    message = str(info.value)
    assert "top folder is hello_scm-1.3.1.dev1+g" in message
    assert "but %prep enters hello_scm-1.0/" in message
    assert not (tmp_path / "logs" / "run1" / "hello" / "srpm.log").exists()


def test_archive_command_must_write_one_file(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "src" / "hello")
    commit = commit_files(repo, {"hello.spec": hello_spec(), **FILES})
    command = ("sh", "-c", 'touch "$SUPERBUILD_ARCHIVE_DIR/a.tar.gz" "$SUPERBUILD_ARCHIVE_DIR/b"')
    with pytest.raises(PipelineFailed, match=r"exactly one file .* it wrote a\.tar\.gz, b"):
        build(tmp_path, repo, commit, archive_command=command)


# --------------------------------------------------------------------------- archive: upstream


GEAR_SPEC = hello_spec().replace("%setup -q\n", "%autosetup -p1\n")


def gear_repo(tmp_path: Path) -> tuple[Path, str]:
    """Upstream 1.0 (tag v1.0), the packaging commit, then three local fixes."""
    repo = init_repo(tmp_path / "src" / "hello")
    commit_files(repo, {"payload.txt": "upstream\n", "README": "r\n"}, "upstream 1.0")
    git(repo, "tag", "v1.0")
    commit_files(repo, {"hello.spec": GEAR_SPEC, "hello.conf": "c\n"}, "packaging")
    head = ""
    for n in range(3):
        text = "upstream\n" + "".join(f"fix {i}\n" for i in range(n + 1))
        head = commit_files(repo, {"payload.txt": text}, f"fix {n}")
    return repo, head


def _tar_member(srpm: Path, archive: str, member: str) -> bytes:
    data = rpm_payload(srpm)["/" + archive]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        found = tar.extractfile(member)
        assert found is not None
        return found.read()


def test_upstream_tarball_and_one_patch_per_local_commit(tmp_path: Path) -> None:
    repo, head = gear_repo(tmp_path)
    result = build(tmp_path, repo, head, archive_upstream="v*")
    binary, srpm = outputs(tmp_path, result)
    sources = srpm_sources(srpm)
    patches = [s for s in sources if s.endswith(".patch")]
    assert patches == ["0001-fix-0.patch", "0002-fix-1.patch", "0003-fix-2.patch"]
    assert "hello-1.0.tar.gz" in sources
    # The pristine tarball is the tag's tree: no fix, no packaging file in it.
    assert _tar_member(srpm, "hello-1.0.tar.gz", "hello-1.0/payload.txt") == b"upstream\n"
    files = rpm_payload(srpm)
    with tarfile.open(fileobj=io.BytesIO(files["/hello-1.0.tar.gz"])) as tar:
        assert "hello-1.0/hello.spec" not in tar.getnames()
    assert not any(b"hello.spec" in files["/" + p] for p in patches)
    assert rpm_payload(binary)["/usr/share/hello/payload.txt"] == b"upstream\nfix 0\nfix 1\nfix 2\n"


def test_upstream_single_patch_and_a_prep_that_does_not_apply(tmp_path: Path) -> None:
    repo, head = gear_repo(tmp_path)
    result = build(tmp_path, repo, head, archive_upstream="v1.0", archive_patches="single")
    binary, srpm = outputs(tmp_path, result)
    assert [s for s in srpm_sources(srpm) if s.endswith(".patch")] == ["hello-1.0-local.patch"]
    assert rpm_payload(binary)["/usr/share/hello/payload.txt"].endswith(b"fix 2\n")
    plain = commit_files(repo, {"hello.spec": hello_spec()}, "back to %setup")
    with pytest.raises(PipelineFailed, match=r"%prep does not apply the generated patches"):
        build(tmp_path, repo, plain, run="r2", archive_upstream="v1.0")
    with pytest.raises(PipelineFailed, match=r"archive\.upstream 'v9\*'.*no such tag"):
        build(tmp_path, repo, plain, run="r3", archive_upstream="v9*")


# --------------------------------------------------------------------------- nested, LFS


def test_nested_submodules_are_in_the_archive(tmp_path: Path) -> None:
    inner = init_repo(tmp_path / "inner")
    inner_commit = commit_files(inner, {"lib.txt": "nested lib\n"})
    repo = init_repo(tmp_path / "src" / "hello")
    spec = (
        hello_spec()
        .replace(
            "install -m 0644 payload.txt",
            "install -m 0644 vendor/lib/lib.txt %{buildroot}/usr/share/hello/lib.txt\n"
            "install -m 0644 payload.txt",
        )
        .replace("%files\n", "%files\n/usr/share/hello/lib.txt\n")
    )
    commit_files(repo, {"hello.spec": spec, **FILES})
    git(repo, "submodule", "add", "-q", os.fspath(inner), "vendor/lib")
    commit = commit_files(repo, {}, "vendor lib")
    result = build(tmp_path, repo, commit)
    binary, _ = outputs(tmp_path, result)
    assert rpm_payload(binary)["/usr/share/hello/lib.txt"] == b"nested lib\n"
    log = (tmp_path / "logs" / "run1" / "hello" / "source.log").read_text()
    assert f"nested submodule vendor/lib at {inner_commit} included" in log

    # A clone that did not fetch the nested submodule: one line naming it and the fix.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", os.fspath(repo), os.fspath(clone))
    with pytest.raises(PipelineFailed) as info:
        build(tmp_path, clone, commit, run="r2")
    assert "nested submodule vendor/lib" in str(info.value)
    assert "submodule update --init --recursive -- vendor/lib" in str(info.value)


def lfs_repo(tmp_path: Path) -> tuple[Path, str, bytes]:
    repo = init_repo(tmp_path / "src" / "hello")
    git(repo, "lfs", "install", "--local")
    git(repo, "lfs", "track", "*.bin")
    data = bytes(range(256)) * 64
    spec = (
        hello_spec()
        .replace(
            "install -m 0644 payload.txt",
            "install -m 0644 blob.bin %{buildroot}/usr/share/hello/blob.bin\ninstall -m 0644 payload.txt",
        )
        .replace("%files\n", "%files\n/usr/share/hello/blob.bin\n")
    )
    commit = commit_files(repo, {"hello.spec": spec, "blob.bin": data, **FILES})
    assert git(repo, "cat-file", "-p", f"{commit}:blob.bin").startswith("version https://git-lfs")
    return repo, commit, data


def test_git_lfs_files_are_smudged(tmp_path: Path) -> None:
    if shutil.which("git-lfs") is None:
        pytest.fail("git-lfs is not installed (scripts/bootstrap.sh installs it)")
    repo, commit, data = lfs_repo(tmp_path)
    result = build(tmp_path, repo, commit)
    binary, _ = outputs(tmp_path, result)
    assert rpm_payload(binary)["/usr/share/hello/blob.bin"] == data


def test_git_lfs_pointers_without_git_lfs_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("git-lfs") is None:
        pytest.fail("git-lfs is not installed (scripts/bootstrap.sh installs it)")
    repo, commit, _ = lfs_repo(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    git_path = shutil.which("git")
    assert git_path is not None
    (bin_dir / "git").symlink_to(git_path)
    monkeypatch.setenv("PATH", os.fspath(bin_dir))
    with pytest.raises(PipelineFailed) as info:
        build(tmp_path, repo, commit)
    assert "blob.bin at" in str(info.value)
    assert "Git LFS pointers and git-lfs is not installed" in str(info.value)
