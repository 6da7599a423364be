"""The rpm pipeline with real git repositories and the real rpmbuild (mock is faked)."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from superbuild import outrepo
from superbuild.pipelines.api import BuildContext, PackageBuild, PipelineFailed, SourceUnavailable
from superbuild.pipelines.rpm.options import RpmOptions
from superbuild.pipelines.rpm.spec import (
    SpecError,
    has_version,
    read_spec,
    release_suffix,
    stamped_facts,
    with_provenance,
    with_version,
)
from superbuild.pipelines.task import run_package
from tests.rpmtools import (
    commit_files,
    hello_spec,
    init_repo,
    make_context,
    make_package,
    rpm_payload,
    rpm_query,
    vercmp,
    write_files,
)

QF = "%{NAME} %{VERSION} %{RELEASE} %{VCS}"


@pytest.fixture
def hello_repo(tmp_path: Path) -> tuple[Path, list[str]]:
    """Two commits (A, B) of a spec package; the work tree is dirty and ahead of A."""
    repo = init_repo(tmp_path / "src" / "hello")
    a = commit_files(
        repo,
        {"hello.spec": hello_spec(), "payload.txt": "payload at A\n", "hello.conf": "conf A\n"},
        "A",
    )
    b = commit_files(repo, {"payload.txt": "payload at B\n"}, "B")
    write_files(repo, {"payload.txt": "dirty work tree\n", "untracked.txt": "x\n"})
    return repo, [a, b]


def build(tmp_path: Path, repo: Path, commit: str, run: str = "run1", **kw: Any) -> PackageBuild:
    package = kw.pop("package", None) or make_package()
    return run_package(make_context(tmp_path, package, commit, repo, run=run, **kw))


# --------------------------------------------------------------------------- real builds


@pytest.mark.rpm
def test_builds_the_recorded_commit_not_the_work_tree(
    tmp_path: Path, hello_repo: tuple[Path, list[str]]
) -> None:
    repo, (a, _) = hello_repo
    result = build(tmp_path, repo, a)

    release = f"1.1.g{a[:7]}"
    assert result.artifacts == [
        f"rpms/noarch/hello-1.0-{release}.noarch.rpm",
        f"srpms/hello-1.0-{release}.src.rpm",
    ]
    assert (result.version, result.release) == ("1.0", release)
    assert list(result.stage_durations) == ["source", "srpm", "rpm", "collect"]
    out = tmp_path / "output"
    binary, source = (out / a for a in result.artifacts)
    assert rpm_query(binary, QF) == f"hello 1.0 {release} {a}"
    assert rpm_query(source, QF) == f"hello 1.0 {release} {a}"
    payload = rpm_payload(binary)
    assert payload["/usr/share/hello/payload.txt"] == b"payload at A\n"
    assert payload["/usr/share/hello/hello.conf"] == b"conf A\n"
    # The submodule's work tree was not touched.
    assert (repo / "payload.txt").read_text() == "dirty work tree\n"
    logs = Path(result.log_dir)
    assert sorted(p.name for p in logs.iterdir()) == [
        "collect.log",
        "rpm.log",
        "source.log",
        "srpm.log",
    ]
    assert b"Wrote:" in (logs / "srpm.log").read_bytes()

    assert outrepo.refresh_metadata(out) == [out / "rpms", out / "srpms"]
    assert (out / "rpms" / "repodata" / "repomd.xml").is_file()
    assert (out / "srpms" / "repodata" / "repomd.xml").is_file()
    assert not [p for p in out.rglob("*.tmp")]


@pytest.mark.rpm
def test_descendant_commit_release_sorts_newer(
    tmp_path: Path, hello_repo: tuple[Path, list[str]]
) -> None:
    repo, (a, b) = hello_repo
    old = build(tmp_path, repo, a, run="old")
    new = build(tmp_path, repo, b, run="new")
    assert old.release == f"1.1.g{a[:7]}"
    assert new.release == f"1.2.g{b[:7]}"
    assert new.release is not None and old.release is not None
    assert vercmp(new.release, old.release) == 1
    assert vercmp(f"1.0-{new.release}", f"1.0-{old.release}") == 1
    binary = tmp_path / "output" / new.artifacts[0]
    assert rpm_payload(binary)["/usr/share/hello/payload.txt"] == b"payload at B\n"


@pytest.mark.rpm
@pytest.mark.parametrize(
    ("source0", "prep"),
    [
        ("%{name}-%{version}.tar.xz", "%setup -q"),
        ("%{name}-%{version}.tar.bz2", "%setup -q -n hello-src-%{version}"),
        ("https://x.invalid/archive/v%{version}.zip#/hello-%{version}.zip", "%setup -q"),
        ("%{name}-%{version}.tar.zst", "%autosetup -n top"),
        ("%{name}-%{version}.tgz", "%setup -q -c -n %{name}-%{version}"),
    ],
    ids=["tar.xz", "tar.bz2 -n", "zip rename", "tar.zst autosetup -n", "tgz -c"],
)
def test_the_archive_the_spec_asks_for(tmp_path: Path, source0: str, prep: str) -> None:
    """Source0's name and format, and the top folder %prep enters, as rpm reads them."""
    repo = init_repo(tmp_path / "src" / "hello")
    spec = (
        hello_spec()
        .replace("Source0:        %{name}-%{version}.tar.gz", f"Source0:        {source0}")
        .replace("%setup -q\n", f"{prep}\n")
    )
    commit = commit_files(repo, {"hello.spec": spec, "payload.txt": "p\n", "hello.conf": "c\n"})
    result = build(tmp_path, repo, commit)
    binary, srpm = (tmp_path / "output" / a for a in result.artifacts)
    assert rpm_payload(binary)["/usr/share/hello/payload.txt"] == b"p\n"
    sources = sorted(rpm_query(srpm, "[%{SOURCE}\n]").split())
    wanted = (
        source0.rsplit("#/", maxsplit=1)[-1]
        .replace("%{name}", "hello")
        .replace("%{version}", "1.0")
    )
    assert sources == sorted(["hello.conf", wanted.rsplit("/", 1)[-1]])


@pytest.mark.rpm
def test_rpm_macros_reach_the_spec_reading_and_every_rpmbuild(tmp_path: Path) -> None:
    """A target's macros (dist, a feature switch) decide the NEVR and the sources."""
    repo = init_repo(tmp_path / "src" / "hello")
    spec = hello_spec().replace(
        "Source1:        hello.conf",
        "Source1:        hello.conf\n%if 0%{?with_signature}\nSource2: hello.asc\n%endif",
    )
    commit = commit_files(repo, {"hello.spec": spec, "payload.txt": "p\n", "hello.conf": "c\n"})
    macros = (("dist", ".el9"), ("with_signature", "0"))
    package = make_package(rpm_macros=macros)
    result = build(tmp_path, repo, commit, package=package, macros=macros)
    assert result.release == f"1.1.g{commit[:7]}.el9"
    assert all(".el9." in a for a in result.artifacts)
    with pytest.raises(PipelineFailed, match=r"Source2 hello\.asc"):
        signed = (("with_signature", "1"),)
        build(
            tmp_path, repo, commit, run="r2", package=make_package(rpm_macros=signed), macros=signed
        )
    assert make_package(rpm_macros=macros).digest != make_package().digest


@pytest.mark.rpm
def test_a_source_neither_in_git_nor_made_fails_before_rpmbuild(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "src" / "hello")
    spec = hello_spec().replace(
        "Source1:        hello.conf",
        "Source1:        hello.conf\nSource2:        https://x.invalid/hello-%{version}.tar.gz.asc",
    )
    commit = commit_files(repo, {"hello.spec": spec, "payload.txt": "p\n", "hello.conf": "c\n"})
    with pytest.raises(PipelineFailed) as info:
        build(tmp_path, repo, commit)
    assert info.value.stage == "source"
    message = str(info.value)
    assert "Source2 hello-1.0.tar.gz.asc (https://x.invalid/hello-1.0.tar.gz.asc)" in message
    assert "manifests/hello.yaml" in message
    assert not (tmp_path / "logs" / "run1" / "hello" / "srpm.log").exists()


@pytest.mark.rpm
def test_spec_path_version_override_and_subdir_sources(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "src" / "hello")
    spec = hello_spec(release="3%{?dist}").replace(
        "Source0:        %{name}-%{version}.tar.gz",
        "Source0:        https://example.invalid/v%{version}.tar.gz",
    )
    commit = commit_files(
        repo,
        {
            "packaging/hello.spec": spec,
            "packaging/hello.conf": "conf\n",
            "payload.txt": "p\n",
            "other.spec": "not this one\n",
        },
    )
    package = make_package(spec="packaging/hello.spec", version="2.5")
    result = build(tmp_path, repo, commit, package=package)
    assert result.version == "2.5"
    assert result.release == f"3.1.g{commit[:7]}"
    binary = tmp_path / "output" / result.artifacts[0]
    assert rpm_query(binary, "%{VERSION}") == "2.5"
    assert rpm_payload(binary)["/usr/share/hello/hello.conf"] == b"conf\n"
    sources = rpm_query(tmp_path / "output" / result.artifacts[1], "[%{SOURCE}\n]").split()
    assert sorted(sources) == ["hello.conf", "v2.5.tar.gz"]


@pytest.mark.rpm
def test_build_does_not_read_the_callers_stdin(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "src" / "hello")
    spec = hello_spec(build="cat\necho build-finished")
    commit = commit_files(repo, {"hello.spec": spec, "payload.txt": "p\n", "hello.conf": "c\n"})
    package = make_package(timeouts=(("*", 60.0),))

    r, w = os.pipe()
    os.write(w, b"the caller's data\n")
    os.close(w)
    saved = os.dup(0)
    os.dup2(r, 0)
    os.close(r)
    try:
        result = build(tmp_path, repo, commit, package=package)
        leftover = os.read(0, 100)
    finally:
        os.dup2(saved, 0)
        os.close(saved)
    assert leftover == b"the caller's data\n"
    log = (Path(result.log_dir) / "rpm.log").read_bytes()
    assert b"build-finished" in log
    assert b"the caller's data" not in log


@pytest.mark.rpm
def test_failing_build_names_stage_and_log(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "src" / "hello")
    spec = hello_spec(build="echo compiler exploded >&2\nexit 3")
    commit = commit_files(repo, {"hello.spec": spec, "payload.txt": "p\n", "hello.conf": "c\n"})
    ctx = make_context(tmp_path, make_package(), commit, repo)
    with pytest.raises(PipelineFailed) as info:
        run_package(ctx)
    exc = info.value
    log = ctx.log_dir / "rpm.log"
    assert exc.stage == "rpm"
    assert exc.log == log
    assert exc.package == "hello"
    assert str(exc) == f"hello: rpm stage failed (exit 1) in rpmbuild --rebuild, see {log}"
    assert b"compiler exploded" in log.read_bytes()
    assert not (tmp_path / "output" / "rpms").exists()
    copy = pickle.loads(pickle.dumps(exc))
    assert (str(copy), copy.stage, copy.log, copy.package) == (str(exc), "rpm", log, "hello")


@pytest.mark.rpm
def test_stage_timeout_stops_the_build(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "src" / "hello")
    spec = hello_spec(build="sleep 30")
    commit = commit_files(repo, {"hello.spec": spec, "payload.txt": "p\n", "hello.conf": "c\n"})
    package = make_package(timeouts=(("rpm", 1.0),))
    start = time.monotonic()
    with pytest.raises(PipelineFailed, match=r"hello: rpm stage failed: .*timed out after 1s"):
        build(tmp_path, repo, commit, package=package)
    assert time.monotonic() - start < 15


# --------------------------------------------------------------------------- sources


def test_missing_commit_names_the_submodule_and_the_fix(
    tmp_path: Path, hello_repo: tuple[Path, list[str]]
) -> None:
    repo, _ = hello_repo
    missing = "deadbeef" * 5
    for source_repo in (repo, tmp_path / "absent", tmp_path / "empty-uninitialised"):
        (tmp_path / "empty-uninitialised").mkdir(exist_ok=True)
        with pytest.raises(SourceUnavailable) as info:
            build(tmp_path, source_repo, missing)
        message = str(info.value)
        assert "\n" not in message
        assert "repos/hello" in message
        assert message.endswith("run git submodule update --init repos/hello")
        assert info.value.stage == "source"


def test_spec_must_be_unique_at_the_top(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "src" / "hello")
    none = commit_files(repo, {"README": "no spec\n", "sub/x.spec": "deeper\n"})
    with pytest.raises(PipelineFailed, match=r"no \*\.spec file at the top of repos/hello"):
        build(tmp_path, repo, none, run="a")
    two = commit_files(repo, {"a.spec": "a\n", "b.spec": "b\n"})
    with pytest.raises(PipelineFailed, match=r"several spec files .*\(a\.spec, b\.spec\)"):
        build(tmp_path, repo, two, run="b")
    package = make_package(spec="packaging/missing.spec")
    with pytest.raises(PipelineFailed, match=r"spec packaging/missing\.spec .* is not in"):
        build(tmp_path, repo, two, run="c", package=package)


def test_unknown_builder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="unknown builder 'docker'"):
        build(tmp_path, tmp_path, "0" * 40, builder="docker")


def test_context_pickles(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, make_package(env=(("A", "b"),)), "a" * 40, tmp_path)
    options = RpmOptions(extra_repos=(tmp_path / "r",), sign_key="K")
    ctx = BuildContext(**{**ctx.__dict__, "options": options})
    assert pickle.loads(pickle.dumps(ctx)) == ctx


# --------------------------------------------------------------------------- spec rewriting

C = "0123456789abcdef0123456789abcdef01234567"
SUFFIX = ".12.g0123456"


def spec_with(preamble: str, extra: str = "", prep: str = "%setup -q") -> str:
    """A parseable spec: Name x, Version 1.0, then ``preamble`` lines."""
    return (
        f"Name: x\nVersion: 1.0\n{preamble}\nSummary: s\nLicense: MIT\n"
        f"Source0: %{{name}}-%{{version}}.tar.gz\n%description\nd\n{extra}"
        f"%prep\n{prep}\n%files\n"
    )


def release_of(text: str, dist: str = ".fc42") -> str:
    return read_spec(text, [("dist", dist)]).release


def test_provenance_keeps_dist_last_and_adds_vcs() -> None:
    spec = spec_with("Release:        2%{?dist}")
    stamped = with_provenance(spec, C, 12)
    assert f"Release:        2{SUFFIX}%{{?dist}}\nVCS:            {C}\n" in stamped
    assert release_of(stamped) == f"2{SUFFIX}.fc42"


def test_provenance_replaces_existing_vcs_and_reaches_subpackages() -> None:
    spec = "VCS: git:old\n" + spec_with(
        "release:\t%{rel} ", "%package devel\nSummary: d\nRelease: 5\n%description devel\nd\n"
    )
    stamped = with_provenance("%global rel 3\n" + spec, C, 3)
    assert f"VCS: {C}\n" in stamped and "git:old" not in stamped
    assert "release:\t%{rel}.3.g0123456 \n" in stamped
    assert "Release: 5.3.g0123456\n" in stamped  # every binary RPM carries the provenance


def test_provenance_stamps_every_branch_of_a_conditional_release() -> None:
    spec = spec_with("%if 0%{?rhel}\nRelease: 3%{?dist}\n%else\nRelease: 4%dist\n%endif")
    stamped = with_provenance(spec, C, 12)
    assert f"Release: 3{SUFFIX}%{{?dist}}\n" in stamped
    assert f"Release: 4{SUFFIX}%dist\n" in stamped
    assert release_of(stamped) == f"4{SUFFIX}.fc42"


def test_provenance_moves_a_dist_tag_from_the_middle_to_the_end() -> None:
    stamped = with_provenance(spec_with("Release: 1%{?dist}.1"), C, 12)
    assert release_of(stamped) == f"1.1{SUFFIX}.fc42"


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        ("%autorelease", f"1{SUFFIX}.fc42"),
        ("%{autorelease}", f"1{SUFFIX}.fc42"),
        ("%autorelease -p", f"0.1{SUFFIX}.fc42"),
        ("%autorelease -e rc1", f"1.rc1{SUFFIX}.fc42"),
        ("%autorelease -p -e rc1", f"0.1.rc1{SUFFIX}.fc42"),
        ("%autorelease -b 3", f"3{SUFFIX}.fc42"),
        ("%autorelease -n", f"1{SUFFIX}"),
    ],
)
def test_provenance_of_every_autorelease_form(release: str, expected: str) -> None:
    stamped = with_provenance(spec_with(f"Release: {release}"), C, 12)
    assert f"Release: {release}\n" in stamped  # the spec's own text is kept
    assert release_of(stamped) == expected


def test_a_package_line_inside_a_multiline_macro_is_not_a_section() -> None:
    spec = spec_with(
        "%global desc %{expand:\nSome text.\n%package is mentioned here.\n}\nRelease: 7%{?dist}"
    )
    assert release_of(with_provenance(spec, C, 12)) == f"7{SUFFIX}.fc42"


@pytest.mark.parametrize(
    ("preamble", "known"),
    [
        ("Release: 2%{?dist}", True),
        ("Release:  7 ", True),
        ("Release: 1.rc1%{?dist}", True),
        ("Release: 1%{?dist}.1", False),  # dist in the middle: stamping moves it
        ("Release: %{rel}%{?dist}", False),
        ("Release: 3%dist", False),
        ("%if 0%{?rhel}\nRelease: 3%{?dist}\n%else\nRelease: 4%{?dist}\n%endif", False),
        ("Release: %autorelease", False),
    ],
)
@pytest.mark.parametrize("dist", [".fc42", ""])
def test_stamped_facts_without_a_parse_are_rpms_own(preamble: str, known: bool, dist: str) -> None:
    # The source stage skips the parse of the stamped spec only when it knows the answer.
    spec = "%global rel 5\n" + spec_with(preamble)
    macros = [("dist", dist)]
    facts = read_spec(spec, macros)
    for rebuild in (0, 2):
        found = stamped_facts(spec, facts, release_suffix(C, 12, rebuild))
        assert (found is not None) == known
        if found is not None:
            assert found == read_spec(with_provenance(spec, C, 12, macros, rebuild), macros)


@pytest.mark.parametrize(
    ("version_line", "same"),
    [
        ("Version: 1.0", True),
        ("version:\t1.0  ", True),
        ("Version: 1.1", False),
        ("Version: %{v}", False),
        ("%if 0%{?rhel}\nVersion: 1.0\n%else\nVersion: 1.0\n%endif", False),
    ],
)
def test_has_version_only_when_with_version_changes_nothing(version_line: str, same: bool) -> None:
    spec = "%global v 1.0\n" + spec_with("Release: 1").replace("Version: 1.0", version_line)
    assert has_version(spec, "1.0") == same
    if same:
        assert with_version(spec, "1.0") == spec


@pytest.mark.parametrize(
    "preamble",
    [
        "Release: 1",
        "Release:        2%{?dist}",
        "release:\t3 ",
        "RELEASE :  4.rc1%{?dist}\t",
    ],
)
@pytest.mark.parametrize("extra", ["", "%package devel\nSummary: d\n%description devel\nd\n"])
@pytest.mark.parametrize("rebuild", [0, 3])
def test_plain_provenance_is_specfiles_edit(
    preamble: str, extra: str, rebuild: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The source stage edits a plain Release line without a parse: the same bytes.
    from superbuild.pipelines.rpm import spec as spec_module

    text = spec_with(preamble, extra)
    quick = with_provenance(text, C, 12, rebuild=rebuild)
    monkeypatch.setattr(spec_module, "_plain_provenance", lambda *_: None)
    assert quick == with_provenance(text, C, 12, rebuild=rebuild)
    assert "\nVCS:" in quick


def test_provenance_and_version_need_their_tags() -> None:
    no_release = "Name: x\nVersion: 1\nSummary: s\nLicense: MIT\n%description\nd\n"
    with pytest.raises(SpecError):
        with_provenance(no_release, C, 1)
    spec = spec_with("Release: 1") + "%changelog\n* Mon Jan 01 2024 A <a@b> - 3\n- Version: 3\n"
    changed = with_version(spec, "2.0")
    assert read_spec(changed).version == "2.0"
    assert "- Version: 3\n" in changed


@pytest.mark.parametrize(
    ("prep", "top", "creates"),
    [
        ("%setup -q", "x-1.0", False),
        ("%setup -q -n Text-Template-Simple-%{version}", "Text-Template-Simple-1.0", False),
        ("%autosetup -n python_x-%{version} -p1", "python_x-1.0", False),
        ("%setup -q -c -n %{name}-top", "x-top", True),
    ],
)
def test_the_folder_prep_enters_comes_from_rpm(prep: str, top: str, creates: bool) -> None:
    facts = read_spec(spec_with("Release: 1", prep=prep))
    assert (facts.archive_dir, facts.creates_dir) == (top, creates)


def test_source_names_are_expanded_with_renames() -> None:
    spec = spec_with("Release: 1").replace(
        "Source0: %{name}-%{version}.tar.gz",
        "Source0: https://x.invalid/v%{version}.tar.gz#/%{name}-src-%{version}.tar.bz2\n"
        "Source1: x.conf\nPatch3: fix-%{version}.patch",
    )
    facts = read_spec(spec)
    assert [(s.tag, s.file_name) for s in facts.sources] == [
        ("Patch3", "fix-1.0.patch"),
        ("Source0", "x-src-1.0.tar.bz2"),
        ("Source1", "x.conf"),
    ]
    assert facts.source0 is not None and facts.source0.file_name == "x-src-1.0.tar.bz2"


# --------------------------------------------------------------------------- signing


@pytest.fixture
def gpg_home() -> Iterator[tuple[str, str]]:
    """A throwaway passphrase-less signing key in a temporary GNUPGHOME (short path)."""
    home = tempfile.mkdtemp(prefix="sbgpg")
    env = {**os.environ, "GNUPGHOME": home}
    user = "Superbuild Test Signer <signer@example.invalid>"
    subprocess.run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", user, "ed25519", "sign", "never"],
        env=env,
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        yield home, user
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, check=False)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.rpm
def test_signing_with_a_throwaway_key(
    tmp_path: Path, hello_repo: tuple[Path, list[str]], gpg_home: tuple[str, str]
) -> None:
    repo, (a, _) = hello_repo
    home, user = gpg_home
    result = build(tmp_path, repo, a, sign_key=user, gpg_home=home)
    assert "sign" in result.stage_durations
    pub = tmp_path / "pub.asc"
    pub.write_bytes(
        subprocess.run(
            ["gpg", "--armor", "--export", user],
            env={**os.environ, "GNUPGHOME": home},
            check=True,
            capture_output=True,
        ).stdout
    )
    db = tmp_path / "rpmdb"
    db.mkdir()
    subprocess.run(["rpmkeys", "--dbpath", db, "--import", pub], check=True)
    for artifact in result.artifacts:
        out = subprocess.run(
            ["rpmkeys", "--dbpath", db, "--checksig", tmp_path / "output" / artifact],
            check=True,
            capture_output=True,
        ).stdout.decode()
        assert "signatures OK" in out, out


# --------------------------------------------------------------------------- mock (faked)


def _fake_mock(process: Any) -> None:
    """``--buildsrpm``: the real ``rpmbuild -bs`` with the target's dist ``.fc40``;
    ``--rebuild``: the SRPM as it is and a binary RPM of the same release."""
    argv = [os.fspath(a) for a in process.args]
    result_dir = Path(argv[argv.index("--resultdir") + 1])
    (result_dir / "root.log").write_text("installing BuildRequires\n")
    if "--buildsrpm" in argv:
        (result_dir / "build.log").write_text("error: fake buildsrpm failure line\n")
        top = result_dir / "top"
        spec, sources = argv[argv.index("--spec") + 1], argv[argv.index("--sources") + 1]
        subprocess.run(
            [
                *("rpmbuild", "-bs", "--define", f"_topdir {top}"),
                *("--define", f"_sourcedir {sources}", "--define", "dist .fc40", spec),
            ],
            check=True,
            capture_output=True,
        )
        for srpm in (top / "SRPMS").glob("*.src.rpm"):
            srpm.rename(result_dir / srpm.name)
        shutil.rmtree(top)
        return
    srpm = Path(argv[argv.index("--rebuild") + 1])
    stem = srpm.name.removesuffix(".src.rpm")
    (result_dir / srpm.name).write_bytes(srpm.read_bytes())
    (result_dir / f"{stem}.noarch.rpm").write_bytes(b"not really an rpm")
    (result_dir / "build.log").write_text("Executing(%build)\nerror: fake mock failure line\n")


@pytest.mark.rpm
def test_mock_command_line(tmp_path: Path, hello_repo: tuple[Path, list[str]], fp: Any) -> None:
    fp.allow_unregistered(True)
    fp.register(["mock", fp.any()], callback=_fake_mock, occurrences=2)
    repo, (a, _) = hello_repo
    this_run = tmp_path / "output" / "rpms"
    (this_run / "repodata").mkdir(parents=True)
    (this_run / "repodata" / "repomd.xml").write_text("<repomd/>")
    not_yet = tmp_path / "other-repo"
    ctx = make_context(
        tmp_path,
        make_package(),
        a,
        repo,
        builder="mock",
        mock_config="fedora-40-x86_64",
        extra_repos=(this_run, not_yet),
        macros=(("with_extras", "1"),),
    )
    result = run_package(ctx)

    srpm_call, rebuild_call = [[os.fspath(a) for a in c] for c in fp.calls if c[0] == "mock"]
    srpm_top = ctx.work_dir / "rpmbuild-srpm"
    assert srpm_call == [
        "mock",
        "-r",
        "fedora-40-x86_64",
        "--buildsrpm",
        "--spec",
        os.fspath(srpm_top / "SPECS" / "hello.spec"),
        "--sources",
        os.fspath(srpm_top / "SOURCES"),
        "--resultdir",
        os.fspath(ctx.work_dir / "mock-srpm"),
        "--uniqueext",
        "superbuild-hello",
        "--no-cleanup-after",
        "--define",
        "with_extras 1",
    ]
    # The SRPM rebuilt is mock's, made in the chroot: its Release has the target's dist.
    srpm = ctx.work_dir / "mock-srpm" / f"hello-1.0-1.1.g{a[:7]}.fc40.src.rpm"
    assert rebuild_call == [
        "mock",
        "-r",
        "fedora-40-x86_64",
        "--rebuild",
        os.fspath(srpm),
        "--resultdir",
        os.fspath(ctx.work_dir / "mock-result"),
        "--uniqueext",
        "superbuild-hello",
        "--no-clean",
        "--define",
        "with_extras 1",
        "--addrepo",
        this_run.resolve().as_uri(),
    ]
    assert not [c for c in fp.calls if c[:2] == ["rpmbuild", "-bs"]]  # not on the host
    release = f"1.1.g{a[:7]}.fc40"
    assert result.release == release
    assert result.artifacts == [
        f"rpms/noarch/hello-1.0-{release}.noarch.rpm",
        f"srpms/hello-1.0-{release}.src.rpm",
    ]
    assert "fake mock failure" in (ctx.log_dir / "mock-build.log").read_text()
    assert (ctx.log_dir / "mock-root.log").is_file()
    assert "buildsrpm" in (ctx.log_dir / "mock-srpm-build.log").read_text()
    assert (ctx.log_dir / "mock-srpm-root.log").is_file()
    assert b"--buildsrpm" in (ctx.log_dir / "srpm.log").read_bytes()
    assert b"no repodata yet" in (ctx.log_dir / "rpm.log").read_bytes()


@pytest.mark.rpm
def test_mock_failure_shows_its_build_log(
    tmp_path: Path, hello_repo: tuple[Path, list[str]], fp: Any
) -> None:
    fp.allow_unregistered(True)
    fp.register(["mock", fp.any()], callback=_fake_mock)  # --buildsrpm succeeds
    fp.register(["mock", fp.any()], callback=_fake_mock, returncode=30)
    repo, (a, _) = hello_repo
    ctx = make_context(tmp_path, make_package(mock_config="epel-9-x86_64"), a, repo, builder="mock")
    with pytest.raises(PipelineFailed, match=r"hello: rpm stage failed \(exit 30\) in mock"):
        run_package(ctx)
    _, call = [c for c in fp.calls if c[0] == "mock"]
    assert list(call[:4]) == ["mock", "-r", "epel-9-x86_64", "--rebuild"]
    assert "--addrepo" not in call
    assert b"error: fake mock failure line" in (ctx.log_dir / "rpm.log").read_bytes()
    assert not (tmp_path / "output" / "rpms").exists()


@pytest.mark.rpm
def test_mock_buildsrpm_failure_fails_the_srpm_stage(
    tmp_path: Path, hello_repo: tuple[Path, list[str]], fp: Any
) -> None:
    fp.allow_unregistered(True)
    fp.register(["mock", fp.any()], callback=_fake_mock, returncode=30)
    repo, (a, _) = hello_repo
    ctx = make_context(tmp_path, make_package(), a, repo, builder="mock")
    with pytest.raises(
        PipelineFailed, match=r"hello: srpm stage failed \(exit 30\) in mock --buildsrpm"
    ):
        run_package(ctx)
    [call] = [c for c in fp.calls if c[0] == "mock"]  # no --rebuild after it
    assert list(call[:4]) == ["mock", "-r", "default", "--buildsrpm"]
    log = (ctx.log_dir / "srpm.log").read_bytes()
    assert b"error: fake buildsrpm failure line" in log
    assert b"last 1 lines of" in log
    assert (ctx.log_dir / "mock-srpm-build.log").is_file()
    assert not (ctx.log_dir / "rpm.log").exists()


@pytest.mark.rpm
def test_rpmbuild_builder_builds_the_srpm_on_the_host(
    tmp_path: Path, hello_repo: tuple[Path, list[str]], fp: Any
) -> None:
    fp.allow_unregistered(True)
    repo, (a, _) = hello_repo
    ctx = make_context(tmp_path, make_package(), a, repo, builder="rpmbuild")
    result = run_package(ctx)
    assert not [c for c in fp.calls if c[0] == "mock"]
    log = (ctx.log_dir / "srpm.log").read_text()
    [bs] = [line for line in log.splitlines() if line.startswith("$ ")]
    assert bs.startswith("$ rpmbuild -bs ")
    assert bs.endswith(os.fspath(ctx.work_dir / "rpmbuild-srpm" / "SPECS" / "hello.spec"))
    assert result.release == f"1.1.g{a[:7]}"
