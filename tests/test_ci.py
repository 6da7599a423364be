"""CI change detection: --format github/lines, --exit-code, mark-green and --base green."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Repo
from tests.helpers import cli


@pytest.fixture
def prod(repo: Repo) -> Repo:
    repo.package("base")
    repo.package("client", requires=("base",))
    repo.package("tool")
    repo.commit("initial")
    return repo


def test_lines_and_exit_code(prod: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    prod.link("repos/base")
    prod.commit("bump base")
    code, out, _ = cli(capsys, "changed", "-C", str(prod.path), "--format", "lines", "--exit-code")
    assert code == 1
    assert out.splitlines() == ["base", "client"]
    prod.write("README", "docs only\n")
    prod.commit("docs")
    code, out, _ = cli(capsys, "changed", "-C", str(prod.path), "--format", "lines", "--exit-code")
    assert (code, out) == (0, "")


def test_github_output_is_appended(
    prod: Repo, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out_file = tmp_path / "github_output"
    out_file.write_text("earlier=1\n")
    monkeypatch.setenv("GITHUB_OUTPUT", str(out_file))
    prod.link("repos/base")
    prod.commit("bump base")
    code, _, _ = cli(capsys, "changed", "-C", str(prod.path), "--format", "github")
    assert code == 0
    lines = out_file.read_text().splitlines()
    assert lines[0] == "earlier=1"
    values = dict(line.split("=", 1) for line in lines[1:])
    assert json.loads(values["packages"]) == ["base", "client"]
    assert json.loads(values["waves"]) == [["base"], ["client"]]
    assert values["any"] == "true"


def test_mark_green_then_base_green(prod: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    green = prod.head()
    code, out, _ = cli(capsys, "mark-green", "-C", str(prod.path))
    assert code == 0 and f"refs/superbuild/green/main -> {green}" in out
    assert prod.git("rev-parse", "refs/superbuild/green/main").strip() == green
    prod.link("repos/tool")
    prod.commit("bump tool")
    prod.link("repos/base")
    prod.commit("bump base")
    code, out, err = cli(
        capsys, "changed", "-C", str(prod.path), "--base", "green", "--format", "json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["base"] == green
    assert data["affected"] == ["base", "tool", "client"]


def test_base_green_without_ref_falls_back_with_warning(
    prod: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = prod.head()
    prod.link("repos/tool")
    prod.commit("bump tool")
    code, out, err = cli(
        capsys, "changed", "-C", str(prod.path), "--base", "green", "--format", "json"
    )
    assert code == 0
    assert json.loads(out)["base"] == parent
    assert "warning: --base green: no green commit recorded for branch 'main'" in err


def test_green_ref_is_pushed_and_fetched_by_a_fresh_clone(
    prod: Repo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    remote = tmp_path / "remote.git"
    prod.git("init", "-q", "--bare", str(remote))
    prod.git("remote", "add", "origin", str(remote))
    prod.git("push", "-q", "origin", "main")
    green = prod.head()
    code, out, err = cli(capsys, "mark-green", "-C", str(prod.path), "--push", "origin")
    assert code == 0, err
    prod.link("repos/client")
    prod.commit("bump client")
    prod.git("push", "-q", "origin", "main")
    clone = tmp_path / "ci-clone"
    prod.git("clone", "-q", str(remote), str(clone))  # an ephemeral CI machine: no green ref
    code, out, err = cli(capsys, "changed", "-C", str(clone), "--base", "green", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["base"] == green
    assert "warning" not in err


def test_mark_green_detached_head_needs_branch(
    prod: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    prod.git("checkout", "-q", "--detach")
    code, _, err = cli(capsys, "mark-green", "-C", str(prod.path))
    assert code == 2 and "pass --branch" in err
    code, out, _ = cli(capsys, "mark-green", "-C", str(prod.path), "--branch", "release/1.0")
    assert code == 0 and "refs/superbuild/green/release/1.0" in out


def command_product(repo: Repo, failing: str | None = None) -> None:
    """Packages built by shell steps that need no checkout (source: none)."""
    for name, requires in (("base", []), ("client", ["base"]), ("tool", [])):
        step = "false" if name == failing else "true"
        req = f"requires: [{', '.join(requires)}]\n" if requires else ""
        repo.manifest(
            name,
            f"path: repos/{name}\n{req}pipeline: command\nsource: none\ncommands: ['{step}']\n",
        )
        repo.link(f"repos/{name}")


def test_since_last_success_catches_up_a_half_failed_run(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    command_product(repo, failing="base")
    repo.commit("initial")
    code, _, _ = cli(capsys, "build", "-C", str(repo.path), "--all", "-j", "1")
    assert code == 1  # base failed, client skipped, tool built
    code, out, _ = cli(
        capsys, "changed", "-C", str(repo.path), "--since-last-success", "--format", "json"
    )
    assert code == 0
    data = json.loads(out)
    assert data["affected"] == ["base", "client"]
    assert data["since_last_success"] == {
        "base": "last build failed",
        "client": "last build skipped (dependency base failed)",
    }
    code, out, _ = cli(
        capsys, "plan", "-C", str(repo.path), "--since-last-success", "--format", "json"
    )
    assert json.loads(out)["waves"] == [["base"], ["client"]]
    # fix base: the next catch-up build builds exactly what was missing
    repo.manifest("base", "path: repos/base\npipeline: command\nsource: none\ncommands: ['true']\n")
    repo.commit("fix base")
    code, out, err = cli(
        capsys, "build", "-C", str(repo.path), "--since-last-success", "--report", "r.json"
    )
    assert code == 0, err
    report = json.loads((repo.path / "r.json").read_text())
    assert [p["package"] for p in report["packages"]] == ["base", "client"]
    code, out, _ = cli(
        capsys, "changed", "-C", str(repo.path), "--since-last-success", "--format", "lines"
    )
    assert (code, out) == (0, "")
    code, _, err = cli(
        capsys, "changed", "-C", str(repo.path), "--since-last-success", "--base", "HEAD~1"
    )
    assert code == 2 and "cannot be combined with --base" in err


def test_refused_green_push_shows_gits_reason_and_leaves_the_local_ref(
    prod: Repo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    remote = tmp_path / "remote.git"
    prod.git("init", "-q", "--bare", str(remote))
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'green refs are locked on this remote' >&2\nexit 1\n")
    hook.chmod(0o755)
    prod.git("remote", "add", "origin", str(remote))
    earlier = prod.head()
    code, _, err = cli(capsys, "mark-green", "-C", str(prod.path))
    assert code == 0, err
    prod.link("repos/base")
    later = prod.commit("bump base")
    code, out, err = cli(capsys, "mark-green", "-C", str(prod.path), "--push", "origin")
    assert code == 2
    assert "mark-green: git push origin refs/superbuild/green/main failed" in err
    assert "green refs are locked on this remote" in err  # the remote's own words
    assert "pre-receive hook declined" in err
    assert "refs/superbuild/green/main -> " not in out
    assert prod.git("rev-parse", "refs/superbuild/green/main").strip() == earlier != later
    assert "Traceback" not in err


def test_github_output_lines() -> None:
    from superbuild.ci import github_output

    lines = github_output(["a", "b"], [["a"], ["b"]])
    assert lines == ['packages=["a", "b"]', 'waves=[["a"], ["b"]]', "any=true"]
    assert github_output([], []) == ["packages=[]", "waves=[]", "any=false"]
