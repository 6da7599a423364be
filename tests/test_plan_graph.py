"""``superbuild plan`` selection (colcon semantics) and ``superbuild graph`` formats."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Repo
from tests.helpers import cli, cli_json


@pytest.fixture
def prod(repo: Repo) -> Repo:
    """base <- client <- service <- installer; base <- other; tool alone."""
    repo.package("base")
    repo.package("client", requires=("base",))
    repo.package("other", requires=("base",))
    repo.package("service", requires=("client",))
    repo.package("installer", requires=("service", "other"))
    repo.package("tool")
    repo.commit("initial")
    return repo


def plan(capsys: pytest.CaptureFixture[str], repo: Repo, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = cli_json(capsys, "plan", "-C", str(repo.path), "--format", "json", *args)
    return data


def test_plan_defaults_to_affected(prod: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    sha = prod.link("repos/client")
    prod.commit("bump client")
    data = plan(capsys, prod)
    assert data["selection"] == "affected"
    assert data["waves"] == [["client"], ["service"], ["installer"]]
    assert data["packages"][0] == {
        "package": "client",
        "path": "repos/client",
        "commit": sha,
        "requires": ["base"],
    }


@pytest.mark.parametrize(
    ("args", "waves"),
    [
        (["--all"], [["base", "tool"], ["client", "other"], ["service"], ["installer"]]),
        (["--packages-select", "service", "base"], [["base", "service"]]),
        (["--packages-up-to", "service"], [["base"], ["client"], ["service"]]),
        (["--packages-above", "client"], [["client"], ["service"], ["installer"]]),
        (
            ["--packages-up-to", "installer", "--packages-skip", "client"],
            [["base", "service"], ["other"], ["installer"]],
        ),
        (
            ["--all", "--packages-skip", "base", "tool"],
            [["client", "other"], ["service"], ["installer"]],
        ),
        (
            ["--packages-up-to", "installer", "--packages-above", "other"],
            [["other"], ["installer"]],
        ),
    ],
)
def test_selection_options(
    prod: Repo, capsys: pytest.CaptureFixture[str], args: list[str], waves: list[list[str]]
) -> None:
    assert plan(capsys, prod, *args)["waves"] == waves


def test_selection_narrows_the_affected_set_with_base(
    prod: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    first = prod.head()
    prod.link("repos/base")
    prod.commit("bump base")
    data = plan(capsys, prod, "--base", first, "--packages-up-to", "service")
    assert data["selection"] == "affected"
    assert data["waves"] == [["base"], ["client"], ["service"]]


def test_skipped_are_listed(prod: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    data = plan(capsys, prod, "--all", "--packages-skip", "tool")
    assert data["skipped"] == ["tool"]
    code, out, _ = cli(capsys, "plan", "-C", str(prod.path), "--all", "--packages-skip", "tool")
    assert code == 0
    assert "wave 1: base" in out and "skipped (--packages-skip): tool" in out


def test_graph_json(prod: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    data = cli_json(capsys, "graph", "-C", str(prod.path), "--format", "json")
    by_name = {p["name"]: p for p in data["packages"]}
    assert by_name["base"]["required_by"] == ["client", "other"]
    assert by_name["installer"]["requires"] == ["other", "service"]
    assert by_name["installer"]["manifest"] == "manifests/installer.yaml"
    assert data["waves"][0] == ["base", "tool"]


def test_graph_dot_and_mermaid(prod: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "graph", "-C", str(prod.path), "--format", "dot")
    assert code == 0
    assert out.startswith("digraph superbuild {")
    assert '"base" -> "client";' in out and '"other" -> "installer";' in out
    code, out, _ = cli(capsys, "graph", "-C", str(prod.path), "--format", "mermaid")
    assert code == 0 and out.startswith("flowchart LR")
    ids = {line.split("[")[0].strip(): line for line in out.splitlines() if '["' in line}
    base_id = next(k for k, v in ids.items() if '"base"' in v)
    client_id = next(k for k, v in ids.items() if '"client"' in v)
    assert f"{base_id} --> {client_id}" in out


def test_graph_text(prod: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "graph", "-C", str(prod.path))
    assert code == 0
    rows = [line.split() for line in out.splitlines()[1:]]
    assert rows[0][:3] == ["1", "base", "repos/base"]
    assert ["4", "installer", "repos/installer", "other,", "service"] in rows
