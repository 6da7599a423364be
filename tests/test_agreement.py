"""``changed`` (JSON, CI lines), ``status``, ``plan --since-last-success`` and the default
``build`` agree on what needs building after a manifest edit: the build key decides.

A manifest edit that leaves the package's digest alone (description, comments, key
order, quoting) changes nothing anywhere; one that changes it (requires, env, version)
makes the package and its dependents need a build everywhere.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import Repo
from tests.helpers import cli

# base <- client <- service; tool alone.  Shell steps that need no checkout.
PRODUCT = {"base": [], "client": ["base"], "service": ["client"], "tool": []}


def manifest_text(name: str) -> str:
    requires = PRODUCT[name]
    req = f"requires: [{', '.join(requires)}]\n" if requires else ""
    return f"path: repos/{name}\n{req}pipeline: command\nsource: none\ncommands: ['true']\n"


@pytest.fixture
def built(repo: Repo, capsys: pytest.CaptureFixture[str]) -> Repo:
    """The product, committed twice (so that head has a parent) and built successfully."""
    for name in PRODUCT:
        repo.manifest(name, manifest_text(name))
        repo.link(f"repos/{name}")
    repo.commit("initial")
    repo.write("README", "the product\n")
    repo.commit("readme")
    code, _, err = cli(capsys, "build", "-C", str(repo.path), "--all", "-j", "2")
    assert code == 0, err
    return repo


def run(capsys: pytest.CaptureFixture[str], repo: Repo, *argv: str) -> str:
    code, out, err = cli(capsys, argv[0], "-C", str(repo.path), *argv[1:])
    assert code == 0, err
    return out


def verdicts(capsys: pytest.CaptureFixture[str], repo: Repo) -> dict[str, list[str]]:
    """What each of the four says needs building (in build order where it has one)."""
    changed = json.loads(run(capsys, repo, "changed", "--format", "json"))
    ci = run(capsys, repo, "changed", "--format", "lines").split()
    rows = json.loads(run(capsys, repo, "status", "--json"))
    status = sorted(r["package"] for r in rows if r["needs_rebuild"])
    since = json.loads(run(capsys, repo, "plan", "--since-last-success", "--format", "json"))
    dry = run(capsys, repo, "build", "--dry-run")
    waves = re.findall(r"wave \d+: (.*)", dry)
    return {
        "changed": changed["affected"],
        "ci": ci,
        "status": status,
        "since-last-success": [n for w in since["waves"] for n in w],
        "build": [n.strip() for w in waves for n in w.split(",")],
        "dry-run header": re.findall(r"plan: (\d+) package", dry),
    }


def test_fresh_build_needs_nothing(built: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    """The baseline: the last commit changed only a README."""
    found = verdicts(capsys, built)
    assert found == {k: [] if k != "dry-run header" else ["0"] for k in found}


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(
            "path: repos/client\nrequires: [base]\ndescription: the client library\n"
            "pipeline: command\nsource: none\ncommands: ['true']\n",
            id="description",
        ),
        pytest.param(
            "# the client, built by a shell step\n"
            "commands: [\"true\"]\nsource: 'none'\npipeline: command\n"
            "requires:\n  - base  # its only dependency\npath: 'repos/client'\n",
            id="comment-key-order-quoting",
        ),
    ],
)
def test_edit_outside_the_build_key_needs_nothing_anywhere(
    built: Repo, capsys: pytest.CaptureFixture[str], edit: str
) -> None:
    built.manifest("client", edit)
    built.commit("client: cosmetic manifest edit")
    found = verdicts(capsys, built)
    assert found == {k: [] if k != "dry-run header" else ["0"] for k in found}
    code, out, _ = cli(capsys, "changed", "-C", str(built.path), "--format", "lines", "--exit-code")
    assert (code, out) == (0, "")
    code, out, _ = cli(capsys, "changed", "-C", str(built.path), "--why", "service")
    assert code == 0 and "service is not affected" in out


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            manifest_text("client").replace("[base]", "[base, tool]"),
            ["client", "service"],
            id="requires",
        ),
        pytest.param(
            manifest_text("client") + "env:\n  FLAVOUR: spicy\n",
            ["client", "service"],
            id="env",
        ),
        pytest.param(
            manifest_text("tool") + "version: '2.0'\n",
            ["tool"],
            id="version",
        ),
    ],
)
def test_edit_of_the_build_key_needs_a_build_everywhere(
    built: Repo, capsys: pytest.CaptureFixture[str], edit: str, expected: list[str]
) -> None:
    name = expected[0]
    built.manifest(name, edit)
    built.commit(f"{name}: manifest edit that changes the build")
    found = verdicts(capsys, built)
    assert found == {
        "changed": expected,
        "ci": expected,
        "status": sorted(expected),
        "since-last-success": expected,
        "build": expected,
        "dry-run header": [str(len(expected))],
    }
    code, out, _ = cli(capsys, "changed", "-C", str(built.path), "--why", expected[-1])
    assert code == 0 and out.strip().endswith(f"{name} (manifest changed)")
