"""The sample product (manifests/, superbuild.testing.sample) and the bench generator."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
import yaml

from superbuild import git as sgit
from superbuild.manifest import load_product, manifest_name
from superbuild.schema import MANIFEST_SCHEMA, SETTINGS_SCHEMA
from superbuild.testing.sample import (
    SAMPLE_MANIFESTS,
    SAMPLE_SETTINGS,
    SampleSuperproject,
    git_env,
    make_package_repo,
    make_sample_superproject,
    run_git,
)

GENERATOR = Path(__file__).resolve().parents[1] / "bench" / "gen_superproject.py"
SAMPLE_FILES = sorted(SAMPLE_MANIFESTS.rglob("*.yaml"))


@pytest.fixture(scope="module")
def remotes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bare remotes shared by the superprojects of this module."""
    return tmp_path_factory.mktemp("remotes")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, remotes: Path) -> SampleSuperproject:
    """A sample superproject that tests only read."""
    return make_sample_superproject(tmp_path_factory.mktemp("pristine"), bare_remotes=remotes)


@pytest.fixture
def sample(tmp_path: Path, remotes: Path) -> SampleSuperproject:
    return make_sample_superproject(tmp_path, bare_remotes=remotes)


@pytest.mark.parametrize("file", SAMPLE_FILES, ids=lambda p: p.stem)
def test_sample_manifest_matches_schema(file: Path) -> None:
    doc = yaml.safe_load(file.read_text())
    jsonschema.Draft202012Validator(MANIFEST_SCHEMA).validate(doc)
    assert doc["description"]
    assert doc["path"].endswith("/" + file.stem)


def test_sample_settings_match_schema() -> None:
    doc = yaml.safe_load(SAMPLE_SETTINGS.read_text())
    jsonschema.Draft202012Validator(SETTINGS_SCHEMA).validate(doc)


def test_sample_product_is_realistic() -> None:
    names = {manifest_name(f.name) for f in SAMPLE_FILES}
    folders = {f.parent.name for f in SAMPLE_FILES}
    assert len(names) >= 8
    assert folders == {"altai", "openstack"}


def test_sample_superproject_loads_strictly(pristine: SampleSuperproject) -> None:
    product = load_product(pristine.path, pristine.head(), links=pristine.gitlinks())
    assert set(product.packages) == set(pristine.packages)
    assert product.packages["altai-installer"].requires == (
        "focus",
        "glance",
        "nova",
        "nova-networks-ext",
    )
    assert product.graph.find_cycle() is None
    assert product.settings.jobs == 4


def test_gitlink_at_each_manifest_path(pristine: SampleSuperproject) -> None:
    links = pristine.gitlinks()
    paths = {p.path for p in pristine.packages.values()}
    assert set(links) == paths
    assert set(sgit.submodule_names(pristine.path, pristine.head())) == paths
    for pkg in pristine.packages.values():
        checkout = pristine.work_tree(pkg.name)
        assert (checkout / f"{pkg.name}.spec").is_file()
        assert run_git(checkout, "rev-parse", "HEAD") == links[pkg.path]
        assert run_git(pkg.remote, "rev-parse", "main") == links[pkg.path]
    assert pristine.git("status", "--porcelain") == ""


def test_bump_moves_exactly_one_gitlink(sample: SampleSuperproject) -> None:
    before_head = sample.head()
    before = sample.gitlinks()
    new = sample.bump("nova", "Fix the quota check")
    after = sample.gitlinks()
    nova = sample.packages["nova"].path
    assert {p for p in after if after[p] != before[p]} == {nova}
    assert after[nova] == new
    assert sample.git("rev-parse", "HEAD~1") == before_head
    assert sample.git("log", "-1", "--format=%s") == "Fix the quota check"
    assert sample.git("diff-tree", "--no-commit-id", "--name-only", "-r", "HEAD") == nova
    # pushed to the remote, on the superproject's own branch (the remotes are shared)
    remote = sample.packages["nova"].remote
    assert run_git(remote, "rev-parse", sample.branch) == new
    assert run_git(remote, "rev-parse", "main") == before[nova]
    assert sample.git("status", "--porcelain") == ""


def test_bump_many_and_commit(sample: SampleSuperproject) -> None:
    new = sample.bump_many(["focus", "glance"])
    assert set(new) == {"focus", "glance"}
    links = sample.gitlinks()
    assert all(links[sample.packages[n].path] == sha for n, sha in new.items())
    manifest = sample.path / sample.packages["focus"].manifest
    manifest.write_text(manifest.read_text() + "timeout: 60\n")
    head = sample.commit("focus: shorter timeout")
    assert sample.git("diff-tree", "--no-commit-id", "--name-only", "-r", head) == (
        "manifests/altai/focus.yaml"
    )


def test_own_remotes_push_to_main(tmp_path: Path) -> None:
    sample = make_sample_superproject(tmp_path)
    assert sample.remotes == tmp_path / "remotes"
    new = sample.bump("python-novaclient")
    assert run_git(sample.packages["python-novaclient"].remote, "rev-parse", "main") == new


def test_changed_after_bump(sample: SampleSuperproject) -> None:
    sample.bump("nova", "Fix the scheduler")
    out = subprocess.run(
        [sys.executable, "-m", "superbuild", "changed", "-C", str(sample.path), "--format", "json"],
        capture_output=True,
        check=True,
        env=sample.env,
    ).stdout
    report = json.loads(out)
    assert [c["package"] for c in report["changes"]] == ["nova"]
    assert set(report["affected"]) == {"nova", "nova-networks-ext", "altai-installer"}


def test_git_env_appends_to_existing_config_vars() -> None:
    env = git_env({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "a.b", "GIT_CONFIG_VALUE_0": "c"})
    assert env["GIT_CONFIG_COUNT"] == "2"
    assert env["GIT_CONFIG_KEY_0"] == "a.b"
    assert env["GIT_CONFIG_KEY_1"] == "protocol.file.allow"
    assert "GIT_DIR" not in git_env({"GIT_DIR": "/elsewhere"})
    assert git_env({}, date="2024-01-01T00:00:00Z")["GIT_COMMITTER_DATE"] == "2024-01-01T00:00:00Z"


@pytest.mark.rpm
def test_package_repo_builds_with_rpmbuild(tmp_path: Path) -> None:
    repo = make_package_repo(tmp_path / "src", "python-novaclient", "2.10.0", ["base-lib"])
    top = tmp_path / "rpmbuild"
    (top / "SOURCES").mkdir(parents=True)
    tarball = top / "SOURCES" / "python-novaclient-2.10.0.tar.gz"
    run_git(repo, "archive", "--prefix=python-novaclient-2.10.0/", "-o", str(tarball), "HEAD")
    define = ["--define", f"_topdir {top}"]
    spec = str(repo / "python-novaclient.spec")
    subprocess.run(["rpmbuild", *define, "-bs", spec], check=True, capture_output=True)
    srpm = top / "SRPMS" / "python-novaclient-2.10.0-1.src.rpm"
    subprocess.run(
        ["rpmbuild", *define, "--rebuild", "--nodeps", str(srpm)], check=True, capture_output=True
    )
    rpm = top / "RPMS" / "noarch" / "python-novaclient-2.10.0-1.noarch.rpm"
    files = subprocess.run(["rpm", "-qpl", str(rpm)], check=True, capture_output=True).stdout
    assert b"/usr/share/python-novaclient/__init__.py" in files.split()
    requires = subprocess.run(["rpm", "-qpR", str(rpm)], check=True, capture_output=True).stdout
    assert b"base-lib" in requires.split()


def test_generator_makes_a_valid_superproject(tmp_path: Path) -> None:
    dest = tmp_path / "big"
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, str(GENERATOR), str(dest), "--submodules", "20", "--commits", "30"],
        check=True,
        capture_output=True,
    )
    assert time.perf_counter() - start < 10
    assert run_git(dest, "rev-list", "--count", "HEAD") == "30"
    head = run_git(dest, "rev-parse", "HEAD")
    links = sgit.gitlinks(dest, head)
    assert len(links) == 20
    assert set(sgit.submodule_names(dest, head)) == set(links)
    product = load_product(dest, head, links=links)
    assert len(product.packages) == 20
    assert product.graph.find_cycle() is None
    assert any(p.requires for p in product.packages.values())
    # every later commit moves at least one gitlink
    for rev in ("HEAD", "HEAD~5", "HEAD~28"):
        changed = sgit.diff_trees(dest, run_git(dest, "rev-parse", f"{rev}~1"), f"{rev}")
        assert any(c.new_mode == sgit.GITLINK for c in changed)
    assert run_git(dest, "status", "--porcelain") == ""


def test_generator_refuses_a_non_empty_destination(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = subprocess.run(
        [sys.executable, str(GENERATOR), str(tmp_path), "--submodules", "2", "--commits", "2"],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 2
    assert b"not empty" in result.stderr


@pytest.mark.rpm
def test_plan_verbose_previews_what_each_build_would_make(
    pristine: SampleSuperproject, capsys: pytest.CaptureFixture[str]
) -> None:
    """plan --verbose reads each spec as the build would: NEVR (with provenance), the
    archive's name and top folder; nothing is built or written in the superproject."""
    from tests.helpers import cli, cli_json

    before = sorted(p.name for p in (pristine.path / ".superbuild").glob("*"))
    data = cli_json(capsys, "-C", str(pristine.path), "plan", "--all", "-v", "--format", "json")
    previews = {p["package"]: p["preview"] for p in data["packages"]}
    assert previews, data
    for name, preview in previews.items():
        assert "problem" not in preview, (name, preview)
        commit = next(p["commit"] for p in data["packages"] if p["package"] == name)
        assert f".g{commit[:7]}" in preview["nevr"], preview
        assert preview["archive"].endswith(".tar.gz")
        assert preview["archive_from"] == "git archive"
        assert preview["top_folder"] == preview["nevr"].rsplit("-", 1)[0]
    code, out, _ = cli(capsys, "-C", str(pristine.path), "plan", "--all", "--verbose")
    assert code == 0
    first = next(iter(previews))
    assert f"{first}: {previews[first]['nevr']}  archive {previews[first]['archive']}" in out
    assert sorted(p.name for p in (pristine.path / ".superbuild").glob("*")) == before
