"""The parts of releases that need no RPM build: version order, the pool, the formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from superbuild.release import evr, pool
from superbuild.release.compose import ReleaseError, read_release
from superbuild.testing.sample import run_git
from tests.helpers import cli, command_product

# (a, b): pairs rpm orders a < b, from rpm's own test suite (tests/rpmvercmp.at) and
# Fedora's versioning guidelines.
OLDER = [
    ("1.0", "1.0.1"),
    ("1.0", "2.0"),
    ("2.0.1", "2.0.1a"),
    ("1.0a", "1.0.1"),
    ("a", "1"),
    ("5.5p1", "5.5p2"),
    ("5.5p1", "5.5p10"),
    ("10xyz", "10.1xyz"),
    ("xyz10", "xyz10.1"),
    ("1.0~rc1", "1.0"),
    ("1.0~rc1", "1.0~rc2"),
    ("1.0~rc1~git123", "1.0~rc1"),
    ("1.0", "1.0^"),
    ("1.0", "1.0^git1"),
    ("1.0^git1", "1.0^git2"),
    ("1.0^git1", "1.01"),
    ("1.0^20160101", "1.0.1"),
    ("1.0~rc1^git1", "1.0"),
    ("1.0~rc1", "1.0~rc1^git1"),
    ("18.12.0", "18.12.0^9.g856aa2d"),
    ("18.12.0^9.g856aa2d", "18.12.1"),
    ("1.2.0~rc1^3.gabc1234", "1.2.0"),
    ("1.0", "1.0.0"),
]
SAME = [("1.0", "1.0"), ("1.0", "1_0"), ("2.0.01", "2.0.1"), ("1.0", "1..0"), ("1.0^", "1.0^")]


@pytest.mark.parametrize(("a", "b"), OLDER)
def test_version_order_matches_rpm(a: str, b: str) -> None:
    assert evr.rpmvercmp(a, b) == -1
    assert evr.rpmvercmp(b, a) == 1
    rpm = pytest.importorskip("rpm")
    assert rpm.labelCompare(("0", a, "1"), ("0", b, "1")) == -1


@pytest.mark.parametrize(("a", "b"), SAME)
def test_versions_rpm_holds_equal(a: str, b: str) -> None:
    assert evr.rpmvercmp(a, b) == evr.rpmvercmp(b, a) == 0
    rpm = pytest.importorskip("rpm")
    assert rpm.labelCompare(("0", a, "1"), ("0", b, "1")) == 0


def test_epoch_wins_over_version() -> None:
    assert evr.compare(evr.EVR(1, "0.1", "1"), evr.EVR(0, "9.9", "1")) == 1
    assert evr._python_compare(evr.EVR(1, "0.1", "1"), evr.EVR(0, "9.9", "1")) == 1
    assert evr.compare(evr.EVR(0, "1.0", "2"), evr.EVR(0, "1.0", "10")) == -1
    assert str(evr.EVR(2, "1.0", "3")) == "2:1.0-3" and str(evr.EVR(0, "1.0", "3")) == "1.0-3"


def test_the_pool_keeps_one_file_per_content_as_a_hard_link(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "rpms").mkdir(parents=True)
    (out / "rpms" / "a.rpm").write_bytes(b"same bytes")
    (out / "rpms" / "b.rpm").write_bytes(b"same bytes")
    (out / "rpms" / "c.rpm").write_bytes(b"other bytes")
    store = tmp_path / "pool"
    files = pool.add_all(store, out, ["rpms/a.rpm", "rpms/b.rpm", "rpms/c.rpm"])
    assert [f.size for f in files] == [10, 10, 11]
    assert files[0].sha256 == files[1].sha256 != files[2].sha256
    found = pool.contents(store)
    assert set(found) == {files[0].sha256, files[2].sha256}
    assert found[files[0].sha256].stat().st_ino == (out / "rpms" / "a.rpm").stat().st_ino
    # The output replaces its file (a rebuild): the pool's copy stays as it was.
    (out / "rpms" / "new").write_bytes(b"rebuilt")
    (out / "rpms" / "new").replace(out / "rpms" / "c.rpm")
    assert found[files[2].sha256].read_bytes() == b"other bytes"


def test_release_names_and_targets_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = command_product(tmp_path, {"base": []})
    for name in ("../x", ".hidden", "a/b", "x" * 101):
        code, _, err = cli(capsys, "-C", str(repo), "release", "create", name)
        assert code == 2 and "invalid release name" in err, name
    code, _, err = cli(capsys, "-C", str(repo), "release", "create", "R", "--target", "el9")
    assert code == 2 and "unknown target 'el9'" in err
    code, _, err = cli(capsys, "-C", str(repo), "release", "show", "R")
    assert code == 2 and "no release 'R'" in err and len(err.strip().splitlines()) == 1
    code, out, _ = cli(capsys, "-C", str(repo), "release", "list", "--format", "json")
    assert (code, json.loads(out)) == (0, [])


def test_a_damaged_release_json_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "R").mkdir()
    (tmp_path / "R" / "release.json").write_text("{not json")
    with pytest.raises(ReleaseError, match=r"release.json: cannot be read .* damaged"):
        read_release(tmp_path, "R")


@pytest.mark.parametrize("bad", ["../x", "/abs", ".", "a//b", "a/./b", "deps/", "a\\b"])
def test_repo_must_be_a_safe_relative_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    repo = command_product(tmp_path, {"base": []})
    manifest = repo / "manifests" / "base.yaml"
    manifest.write_text(manifest.read_text() + f"repo: {json.dumps(bad)}\n")
    run_git(repo, "commit", "-qam", "bad repo")
    code, _, err = cli(capsys, "-C", str(repo), "plan", "--all")
    assert code == 2
    assert f"manifests/base.yaml: repo {bad!r} must" in err, err


@pytest.mark.parametrize(
    ("releases", "message"),
    [
        ("{binary: '{target}/{arch}'}", "unknown placeholder {arch}"),
        ("{binary: '{target}'}", "needs {repo}"),
        ("{source: '../{repo}'}", "must be a relative path"),
        ("{binary: '{repo}', source: '{repo}'}", "must differ"),
        ("{binary: '{repo'}", "use {target} and {repo} only"),
    ],
)
def test_release_templates_are_validated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], releases: str, message: str
) -> None:
    repo = command_product(tmp_path, {"base": []}, settings=f"releases: {releases}\n")
    code, _, err = cli(capsys, "-C", str(repo), "plan", "--all")
    assert code == 2
    assert "superbuild.yaml: releases." in err and message in err, err
