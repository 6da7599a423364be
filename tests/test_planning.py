"""Planning: one request type over the four modes, the notes it returns, the refusals.

The superproject builds with shell steps (``pipeline: command``, ``source: none``), so
that a real run leaves a real build state without rpmbuild.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from superbuild import planning
from superbuild.errors import UsageError
from superbuild.planning import NoPlan, Plan, PlanRequest
from tests.conftest import Repo
from tests.helpers import cli

#: base <- client; tool alone.  client's step fails in the first run.
REQUIRES = {"base": (), "client": ("base",), "tool": ()}


def command_package(repo: Repo, name: str, step: str) -> None:
    requires = REQUIRES[name]
    req = f"requires: [{', '.join(requires)}]\n" if requires else ""
    repo.manifest(
        name, f"path: repos/{name}\n{req}pipeline: command\nsource: none\ncommands: ['{step}']\n"
    )


@pytest.fixture
def built(repo: Repo, capsys: pytest.CaptureFixture[str]) -> Repo:
    """One run (base and tool built, client failed), then a commit that moves tool."""
    for name in REQUIRES:
        command_package(repo, name, "false" if name == "client" else "true")
        repo.link(f"repos/{name}")
    repo.commit("initial")
    code, _, _ = cli(capsys, "build", "-C", str(repo.path), "--all", "-j", "1")
    assert code == 1
    repo.link("repos/tool")
    repo.commit("move tool")
    return repo


@pytest.mark.parametrize(
    ("request_", "waves", "reasons"),
    [
        pytest.param(
            PlanRequest(),
            [["tool"]],
            {"tool": "gitlink"},
            id="range",
        ),
        pytest.param(
            PlanRequest(mode="all"),
            [["base", "tool"], ["client"]],
            {},
            id="all",
        ),
        pytest.param(
            PlanRequest(mode="since-last-success"),
            [["client", "tool"]],
            {
                "client": "last build failed",
                "tool": "recorded commit differs from last successful build",
            },
            id="since-last-success",
        ),
        pytest.param(
            PlanRequest(mode="retry-failed"),
            [["client"]],
            {"client": "failed in run "},
            id="retry-failed",
        ),
        pytest.param(
            PlanRequest(mode="all", skip=("tool",)),
            [["base"], ["client"]],
            {},
            id="all-skip",
        ),
        pytest.param(
            PlanRequest(mode="since-last-success", select=("tool",)),
            [["tool"]],
            {"tool": "recorded commit differs from last successful build"},
            id="since-last-success-select",
        ),
    ],
)
def test_plan_modes(
    built: Repo, request_: PlanRequest, waves: list[list[str]], reasons: dict[str, str]
) -> None:
    found = planning.plan(built.path, request_)
    assert isinstance(found, Plan)
    assert found.waves == waves
    assert found.mode == request_.mode
    assert sorted(found.reasons) == sorted(reasons)
    for name, start in reasons.items():
        assert found.reasons[name].startswith(start), found.reasons
    assert found.commits == {
        n: built.git("rev-parse", f"HEAD:repos/{n}").strip() for n in found.packages
    }


def test_retry_failed_notes(built: Repo) -> None:
    found = planning.plan(built.path, PlanRequest(mode="retry-failed"))
    assert isinstance(found, Plan)
    [note] = found.notes
    assert not note.warning
    assert note.text.startswith("retrying 1 package(s) the last run (")
    assert note.text.endswith("did not finish: client")


def test_nothing_to_retry_without_state(repo: Repo) -> None:
    repo.package("base")
    repo.commit("initial")
    found = planning.plan(repo.path, PlanRequest(mode="retry-failed"))
    assert isinstance(found, NoPlan)
    assert [n.text for n in found.notes] == [
        "nothing to retry: no build recorded in this superproject"
    ]
    assert not (repo.path / ".superbuild").exists()  # planning creates no state


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        pytest.param(
            PlanRequest(mode="all", base="HEAD~1"),
            "--all selects every package at --head: it cannot be combined with --base",
            id="all-base",
        ),
        pytest.param(
            PlanRequest(mode="since-last-success", base="HEAD~1"),
            "--since-last-success cannot be combined with --base",
            id="since-base",
        ),
        pytest.param(
            PlanRequest(mode="retry-failed", skip=("tool",)),
            "--retry-failed rebuilds what the last run did not finish: "
            "it cannot be combined with --packages-skip",
            id="retry-skip",
        ),
    ],
)
def test_refused_requests(built: Repo, request_: PlanRequest, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        planning.plan(built.path, request_)
    assert caught.value.lines == (message,)


# --------------------------------------------------------------------------- the bugs


@pytest.mark.parametrize("verb", ["plan", "build"])
def test_all_with_base_is_refused(
    built: Repo, capsys: pytest.CaptureFixture[str], verb: str
) -> None:
    code, out, err = cli(capsys, verb, "-C", str(built.path), "--all", "--base", "HEAD~1")
    assert (code, out) == (2, "")
    [line] = err.splitlines()
    assert line == (
        "superbuild: error: --all selects every package at --head: "
        "it cannot be combined with --base"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["plan", "--since-last-success", "--all"],
            "--since-last-success cannot be combined with --all",
            id="plan-since-all",
        ),
        pytest.param(
            ["build", "--retry-failed", "--since-last-success", "--base", "HEAD~1"],
            "--retry-failed rebuilds what the last run did not finish: "
            "it cannot be combined with --base, --since-last-success",
            id="build-retry-since-base",
        ),
        pytest.param(
            ["changed", "--since-last-success", "--base", "HEAD~1"],
            "--since-last-success cannot be combined with --base",
            id="changed-since-base",
        ),
    ],
)
def test_options_that_do_not_combine(
    built: Repo, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = cli(capsys, argv[0], "-C", str(built.path), *argv[1:])
    assert (code, out, err) == (2, "", f"superbuild: error: {message}\n")


def damage(repo: Repo) -> None:
    state = repo.path / ".superbuild"
    state.mkdir(exist_ok=True)
    (state / "state.db").write_bytes(b"this is not an sqlite database" * 100)


@pytest.mark.parametrize(
    "selection", [pytest.param([], id="range"), pytest.param(["--all"], id="all")]
)
def test_dry_run_needs_no_state(
    built: Repo, capsys: pytest.CaptureFixture[str], selection: list[str]
) -> None:
    damage(built)
    code, out, err = cli(capsys, "build", "-C", str(built.path), "--dry-run", *selection)
    assert code == 0, err
    assert "wave 1:" in out


@pytest.mark.parametrize("mode", ["--since-last-success", "--retry-failed"])
def test_dry_run_of_a_state_mode_with_a_damaged_state(
    built: Repo, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    damage(built)
    code, out, err = cli(capsys, "build", "-C", str(built.path), "--dry-run", mode)
    assert (code, out) == (2, "")
    [line] = err.splitlines()
    assert line.startswith("superbuild: error: ") and "the build state is damaged" in line


def test_changed_since_last_success_text_shows_the_reasons(
    built: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "changed", "-C", str(built.path), "--since-last-success")
    assert code == 0, err
    assert re.search(r"^client\s+last build failed$", out, re.M)
    assert re.search(r"^tool\s+recorded commit differs from last successful build$", out, re.M)
    assert "wave 1: client, tool" in out


def test_changed_since_last_success_json_is_unchanged(
    built: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(
        capsys, "changed", "-C", str(built.path), "--since-last-success", "--format", "json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["head"] == built.head() and data["base"] is None
    assert (data["changes"], data["manifest_changes"], data["unmanaged"]) == ([], [], [])
    assert data["affected"] == ["client", "tool"] and data["waves"] == [["client", "tool"]]
    assert data["since_last_success"] == {
        "client": "last build failed",
        "tool": "recorded commit differs from last successful build",
    }


def test_changed_since_last_success_why(built: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    args = ("changed", "-C", str(built.path), "--since-last-success", "--why")
    code, out, _ = cli(capsys, *args, "client")
    assert (code, out) == (0, "client (last build failed)\n")
    code, out, _ = cli(capsys, *args, "base")
    assert code == 0 and out.startswith("base needs no rebuild")


def test_plan_json_of_each_mode_agrees_with_build_dry_run(
    built: Repo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for mode in ([], ["--all"], ["--since-last-success"]):
        code, out, err = cli(capsys, "plan", "-C", str(built.path), "--format", "json", *mode)
        assert code == 0, err
        waves = json.loads(out)["waves"]
        code, out, err = cli(capsys, "build", "-C", str(built.path), "--dry-run", *mode)
        assert code == 0, err
        for i, wave in enumerate(waves, 1):
            assert f"wave {i}: {', '.join(wave)}" in out


def test_changed_since_last_success_github_and_exit_code(
    built: Repo,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(target))
    argv = ("changed", "-C", str(built.path), "--since-last-success")
    code, out, err = cli(capsys, *argv, "--format", "github", "--exit-code")
    assert code == 1, err
    expected = 'packages=["client", "tool"]\nwaves=[["client", "tool"]]\nany=true\n'
    assert out == expected and target.read_text() == expected


def test_retry_failed_drops_what_left_the_product(
    built: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    built.remove("manifests/client.yaml")
    built.unlink("repos/client")
    built.commit("drop client")
    code, out, err = cli(capsys, "build", "-C", str(built.path), "--retry-failed", "--dry-run")
    assert (code, out) == (0, "")
    assert err.splitlines() == [
        "superbuild: warning: not in the product any more, not retried: client",
        "nothing to retry",
    ]
