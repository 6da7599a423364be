"""``--manifests-from REV``: history from before the manifests, judged by REV's manifests.

A real superproject of real submodules whose history predates its manifests: submodules
added one by one and bumped, then the manifests committed.  Every old commit analysed
with ``--manifests-from`` must report exactly the gitlink changes ``git diff-tree``
sees, and affect what REV's dependency graph says.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from superbuild.testing.sample import git_env, run_git
from tests.helpers import cli, cli_json

#: package -> requires, as the manifests finally committed say
REQUIRES = {"base": [], "lib": ["base"], "app": ["lib"], "tool": []}
STEP = 'cp README "$SUPERBUILD_OUTPUT/$SUPERBUILD_PACKAGE.txt"'


class History:
    """The superproject and the commits of its history, oldest first."""

    def __init__(self, root: Path) -> None:
        self.env = git_env()
        self.root = root
        self.top = root / "superproject"
        run_git(None, "init", "-q", "-b", "main", os.fspath(self.top), env=self.env)
        self.commits: list[str] = []

    def git(self, *args: str) -> str:
        return run_git(self.top, *args, env=self.env)

    def add(self, name: str) -> None:
        upstream = self.root / "upstream" / name
        run_git(None, "init", "-q", "-b", "main", os.fspath(upstream), env=self.env)
        (upstream / "README").write_text(f"{name}\n")
        run_git(upstream, "add", "README", env=self.env)
        run_git(upstream, "commit", "-q", "-m", f"{name} 1", env=self.env)
        self.git(
            *("-c", "protocol.file.allow=always", "submodule", "add", "-q"),
            *(upstream.resolve().as_uri(), f"repos/{name}"),
        )

    def bump(self, name: str) -> None:
        sub = self.top / "repos" / name
        with (sub / "README").open("a") as fh:
            fh.write("more\n")
        run_git(sub, "commit", "-q", "-am", f"{name}: more", env=self.env)
        self.git("add", f"repos/{name}")

    def commit(self, message: str) -> str:
        self.git("commit", "-q", "-m", message)
        self.commits.append(self.git("rev-parse", "HEAD"))
        return self.commits[-1]

    def manifests(self) -> str:
        for name, requires in REQUIRES.items():
            target = self.top / "manifests" / f"{name}.yaml"
            target.parent.mkdir(exist_ok=True)
            target.write_text(
                f"path: repos/{name}\npipeline: command\ncommands: [{json.dumps(STEP)}]\n"
                f"requires: [{', '.join(requires)}]\n"
            )
        self.git("add", "manifests")
        return self.commit("superbuild manifests")


@pytest.fixture
def history(tmp_path: Path) -> History:
    h = History(tmp_path)
    h.add("base")
    h.add("lib")
    h.commit("base and lib")
    h.bump("base")
    h.commit("bump base")
    h.add("app")
    h.commit("add app")
    h.bump("lib")
    h.bump("app")
    h.commit("bump lib and app")
    h.add("tool")
    h.bump("base")
    h.commit("add tool, bump base")
    h.bump("tool")
    h.commit("bump tool")
    return h


def dependents(changed: set[str], present: set[str]) -> set[str]:
    """``changed`` and, transitively, the packages present that require one of them."""
    found = set(changed)
    grew = True
    while grew:
        grew = False
        for name, requires in REQUIRES.items():
            if name in present and name not in found and found & set(requires):
                found.add(name)
                grew = True
    return found


def diff_tree(top: Path, base: str | None, head: str) -> list[tuple[str, str | None, str | None]]:
    """The gitlink changes git itself reports: (path, old commit, new commit)."""
    args = ["diff-tree", "-r", "--raw", "--no-renames", "--no-abbrev"]
    out = run_git(top, *args, *([base, head] if base else ["--root", head]), env=git_env())
    found = []
    for line in out.splitlines():
        if not line.startswith(":"):
            continue  # --root prints the commit id first
        meta, path = line.split("\t", 1)
        old_mode, new_mode, old, new, _status = meta[1:].split()
        if "160000" not in (old_mode, new_mode):
            continue
        zero = "0" * 40
        found.append((path, None if old == zero else old, None if new == zero else new))
    return sorted(found)


def test_every_old_commit_is_judged_by_the_later_manifests(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    manifests = history.manifests()
    old = history.commits[:-1]
    for i, head in enumerate(old):
        base = old[i - 1] if i else None
        code, out, err = cli(
            capsys, "-C", str(history.top), "changed", "--head", head,
            "--manifests-from", manifests, "--format", "json",
        )  # fmt: skip
        assert code == 0, err
        data = json.loads(out)
        assert data["base"] == base and data["head"] == head
        assert data["manifests"] == {"head": manifests, "base": manifests if base else None}
        expected = diff_tree(history.top, base, head)
        assert expected, head  # every commit of this history moves a gitlink
        found = sorted((c["path"], c["old_commit"], c["new_commit"]) for c in data["changes"])
        assert found == expected, head
        assert data["unmanaged"] == []
        present = set(history.git("ls-tree", "--name-only", f"{head}:repos").split())
        # a root commit adds everything, manifests included; later ones only gitlinks
        assert sorted(data["manifest_changes"]) == (sorted(present) if base is None else [])
        changed = {path.removeprefix("repos/") for path, _old, new in expected if new}
        assert set(data["affected"]) == dependents(changed, present), head
        absent = sorted(set(REQUIRES) - present)
        assert f"judged by the manifests of {manifests[:12]} (--manifests-from)" in err
        if absent:
            assert f"left out: {', '.join(absent)}" in err
        else:
            assert "left out" not in err


def test_a_base_from_before_the_manifests(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    manifests = history.manifests()
    history.bump("tool")
    head = history.commit("bump tool again")
    base = history.commits[-3]  # before the manifests
    argv = ["-C", str(history.top), "changed", "--base", base, "--head", head, "--format", "json"]
    # without the option, base has no manifests: every package counts as added
    data = cli_json(capsys, *argv)
    assert sorted(data["manifest_changes"]) == sorted(REQUIRES)
    assert data["manifests"] == {"head": head, "base": None}
    # with it, base is judged by the same manifests: only the gitlink changes count
    data = cli_json(capsys, *argv, "--manifests-from", manifests)
    assert data["manifest_changes"] == []
    assert data["manifests"] == {"head": head, "base": manifests}
    expected = diff_tree(history.top, base, head)
    assert (
        sorted((c["path"], c["old_commit"], c["new_commit"]) for c in data["changes"]) == expected
    )
    assert data["affected"] == ["tool"]


def test_without_the_option_the_error_names_it(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    history.manifests()
    old = history.commits[1]
    for verb in ("changed", "graph", "plan", "build"):
        code, _out, err = cli(capsys, "-C", str(history.top), verb, "--head", old)
        assert code == 2, verb
        assert err == (
            f"superbuild: error: commit {old[:12]} has no manifests/ folder: describe each "
            "package in manifests/<name>.yaml (superbuild init proposes them; see "
            "docs/manifest.md); or judge it by the manifests of a commit that has them: "
            "--manifests-from REV (see docs/adopting.md)\n"
        ), verb
    code, _out, err = cli(
        capsys, "-C", str(history.top), "graph", "--head", old, "--manifests-from", old
    )
    assert code == 2
    assert err == (
        f"superbuild: error: --manifests-from {old}: commit {old[:12]} has no manifests/ "
        "folder either: name a commit that has them (the first that does, or HEAD)\n"
    )
    code, _out, err = cli(
        capsys, "-C", str(history.top), "graph", "--manifests-from", "no-such-rev"
    )
    assert code == 2
    assert "unknown --manifests-from revision 'no-such-rev'" in err


def test_graph_plan_and_build_of_an_old_commit(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    manifests = history.manifests()
    old = history.commits[1]  # base and lib only; base bumped
    top = str(history.top)
    graph = cli_json(
        capsys, "-C", top, "graph", "--head", old, "--manifests-from", manifests,
        "--format", "json",
    )  # fmt: skip
    assert graph["commit"] == old and graph["manifests"] == manifests
    assert graph["waves"] == [["base"], ["lib"]]
    plan = cli_json(
        capsys, "-C", top, "plan", "--head", old, "--manifests-from", manifests,
        "--format", "json",
    )  # fmt: skip
    assert plan["manifests"] == {"head": manifests, "base": manifests}
    assert plan["waves"] == [["base"], ["lib"]]
    links = dict(
        (line.split("\t")[1], line.split()[2])
        for line in history.git("ls-tree", "-r", old).splitlines()
        if line.startswith("160000")
    )
    assert [p["commit"] for p in plan["packages"]] == [links["repos/base"], links["repos/lib"]]
    report = history.root / "report.json"
    code, _out, err = cli(
        capsys, "-C", top, "build", "--head", old, "--manifests-from", manifests, "-j", "1",
        "--report", str(report),
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["head"] == old and data["manifests"] == manifests
    # the build state recorded those builds under the borrowed manifests: nothing is left
    since = cli_json(
        capsys, "-C", top, "changed", "--since-last-success", "--head", old,
        "--manifests-from", manifests, "--format", "json",
    )  # fmt: skip
    assert since["manifests"] == {"head": manifests, "base": None}
    assert since["affected"] == []
    files = history.top / ".superbuild" / "output" / "files"
    # each package built from the commit the old superproject records
    assert (files / "base" / "base.txt").read_text() == "base\nmore\n"
    assert (files / "lib" / "lib.txt").read_text() == "lib\n"
    assert not (files / "app").exists()
