"""Commits are untrusted input: a crafted tree must not lead superbuild out of the repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from superbuild import git as g
from superbuild.errors import GitError
from tests.conftest import Repo
from tests.helpers import cli, command_product

SHA = "0123456789012345678901234567890123456789"


def mktree(repo: Path, entries: list[tuple[str, str, str, str]]) -> str:
    text = "".join(f"{mode} {kind} {oid}\t{name}\n" for mode, kind, oid, name in entries)
    return subprocess.run(
        ["git", "-C", str(repo), "mktree"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def crafted_commit(repo: Repo, escape: list[str]) -> str:
    """HEAD's tree plus a gitlink at ``repos/<escape...>/victim`` (git would never write it)."""
    tree = mktree(repo.path, [("160000", "commit", SHA, "victim")])
    for name in reversed(escape):
        tree = mktree(repo.path, [("040000", "tree", tree, name)])
    head_tree = repo.git("rev-parse", "HEAD^{tree}").strip()
    listing = repo.git("ls-tree", head_tree)
    entries = [
        (meta.split()[0], meta.split()[1], meta.split()[2], name)
        for meta, name in (line.split("\t", 1) for line in listing.splitlines())
        if name != "repos"
    ]
    root = mktree(repo.path, [*entries, ("040000", "tree", tree, "repos")])
    commit = repo.git("commit-tree", "-p", "HEAD", "-m", "crafted", root).strip()
    repo.git("update-ref", "HEAD", commit)
    return commit


@pytest.mark.parametrize("escape", [[".."], ["..", ".."], ["."], [".git"]])
def test_a_gitlink_outside_the_superproject_is_refused(
    repo: Repo, capsys: pytest.CaptureFixture[str], escape: list[str]
) -> None:
    repo.manifest("a", "path: repos/a\n")
    repo.link("repos/a")
    repo.commit("product")
    commit = crafted_commit(repo, escape)
    path = "/".join(["repos", *escape, "victim"])
    for argv in (["changed"], ["build", "--all", "--dry-run"], ["graph"]):
        code, out, err = cli(capsys, "-C", str(repo.path), *argv)
        assert out == ""
        assert code == 2, (argv, err)
        assert err.strip() == (
            f"superbuild: error: a commit records the path {path!r}, which leaves the "
            "repository (absolute, or an empty, '.', '..' or '.git' component): refused"
        )
        assert "Traceback" not in err
    assert commit


@pytest.mark.parametrize(
    ("path", "unsafe"),
    [
        ("repos/a", False),
        ("repos/.hidden/a", False),
        ("a.git", False),
        ("repos/../x", True),
        ("..", True),
        ("/etc", True),
        ("repos//a", True),
        ("repos/./a", True),
        ("repos/.GIT/hooks", True),
        ("", True),
    ],
)
def test_unsafe_paths(path: str, unsafe: bool) -> None:
    assert g.unsafe_path(path) is unsafe
    if unsafe:
        with pytest.raises(GitError):
            g.tree_path(path.encode())
    else:
        assert g.tree_path(path.encode()) == path


def billion_laughs() -> str:
    lines = ["path: repos/a", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (billion_laughs() + "requires: [*a9]\n", "YAML aliases (*name) are not allowed"),
        ("path: repos/a\nrequires: " + "[" * 10_000 + "]" * 10_000 + "\n", "nesting depth"),
        ("path: repos/a\nrequires:\n" + "- " * 10_000 + "x\n", "nested deeper than 100"),
        ("path: repos/a\n" + "# padding\n" * 120_000, "larger than 1 MiB"),
    ],
    ids=["aliases", "deep-flow", "deep-block", "large"],
)
@pytest.mark.parametrize("where", ["manifest", "settings"])
def test_a_yaml_bomb_is_one_line(
    repo: Repo, capsys: pytest.CaptureFixture[str], text: str, problem: str, where: str
) -> None:
    assert len(billion_laughs()) < 1024
    repo.manifest("a", "path: repos/a\n")
    repo.link("repos/a")
    if where == "manifest":
        repo.manifest("a", text)
        file = "manifests/a.yaml"
    else:
        repo.write("superbuild.yaml", text.replace("path: repos/a\n", "jobs: 1\n"))
        file = "superbuild.yaml"
    repo.commit("bomb")
    code, out, err = cli(capsys, "-C", str(repo.path), "graph")
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if file in line]
    assert len(lines) == 1, err
    assert problem in lines[0]


@pytest.mark.parametrize("cycle", [False, True])
def test_a_requires_chain_300_deep_is_no_recursion_error(
    repo: Repo, capsys: pytest.CaptureFixture[str], cycle: bool
) -> None:
    n = 320
    for i in range(n):
        req = f"\nrequires: [p{i + 1:03}]" if i + 1 < n else ("\nrequires: [p000]" if cycle else "")
        repo.manifest(f"p{i:03}", f"path: repos/p{i:03}{req}\n")
        repo.link(f"repos/p{i:03}")
    repo.commit("a long chain")
    for argv in (["graph"], ["changed"], ["plan", "--all"], ["build", "--all", "--dry-run"]):
        code, out, err = cli(capsys, "-C", str(repo.path), *argv)
        assert "Traceback" not in err and "RecursionError" not in err, (argv, err[-500:])
        assert code in ((2,) if cycle else (0, 2)), (argv, code, err[-500:])
        if cycle:
            assert "cycle" in err, (argv, err[-500:])
        elif argv == ["graph"]:
            assert code == 0 and "p319" in out


def test_control_characters_in_a_path_are_escaped(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    path = "repos/a\x1b[31m\r"
    repo.manifest("a", "path: repos/a\n")
    repo.link("repos/a")
    repo.commit("product")
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{SHA},{path}")
    repo.commit("hostile path")
    for argv in (["changed", "--why", "a"], ["changed"], ["graph"]):
        _code, out, err = cli(capsys, "-C", str(repo.path), *argv)
        assert "\x1b" not in out + err and "\r" not in out + err, (argv, out, err)


def test_a_colour_terminal_gets_no_escape_sequence_or_markup_from_a_commit(
    repo: Repo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal (rich, colour) a path from a commit can neither set the window title
    (OSC) nor close rich's markup (``[/]`` would be a MarkupError: a crash)."""
    import io

    from superbuild import ui

    path = "repos/a\x1b]0;pwned\x07[/x][bold]"
    repo.manifest("a", "path: repos/a\n")
    repo.link("repos/a")
    repo.commit("product")
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{SHA},{path}")
    repo.commit("hostile path")
    screens: list[io.StringIO] = []

    def terminal(stderr: bool = False) -> ui.TerminalConsole:
        screens.append(io.StringIO())
        return ui.TerminalConsole(file=screens[-1], force_terminal=True, width=200)

    monkeypatch.setattr(ui, "console", terminal)
    monkeypatch.delenv("CI", raising=False)
    for argv in (["changed"], ["changed", "--why", "a"]):
        code, _out, err = cli(capsys, "-C", str(repo.path), *argv)
        assert code == 0, (argv, err)
        shown = "".join(s.getvalue() for s in screens)
        assert "\x1b]0;" not in shown and "\x07" not in shown, (argv, shown)
        assert "[/x][bold]" in shown or argv[-1] == "a", (argv, shown)  # shown as text
    assert screens


def test_control_characters_in_an_error_line_are_escaped(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest path with ESC[2J (clear screen) is named in the error, escaped."""
    repo.manifest("a", 'path: "repos/a\\e[2J"\n')
    repo.commit("hostile manifest")
    code, _, err = cli(capsys, "-C", str(repo.path), "plan", "--all")
    assert code == 2, err
    assert "\x1b" not in err
    assert "repos/a\\x1b[2J" in err


@pytest.mark.parametrize("name", ["PATH", "LD_PRELOAD", "PYTHONPATH", "GIT_DIR", "BASH_ENV"])
def test_a_manifest_cannot_set_what_decides_which_programs_run(
    repo: Repo, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    repo.manifest("a", f"path: repos/a\nenv: {{{name}: /tmp/evil, CFLAGS: -O2}}\n")
    repo.link("repos/a")
    repo.commit("env")
    code, _, err = cli(capsys, "-C", str(repo.path), "plan", "--all")
    assert code == 2, err
    assert f"manifests/a.yaml: env: {name} may not be set" in err
    assert "CFLAGS" not in err
    assert "Traceback" not in err


def test_a_commit_cannot_put_the_output_outside_the_superproject(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "elsewhere"
    sp = command_product(tmp_path, {"a": []}, settings=f"output: {outside}\n")
    code, _, err = cli(capsys, "-C", str(sp), "build", "--all")
    assert code == 2, err
    assert "outside the superproject" in err and f"--output {outside}" in err
    assert not outside.exists()
    code, _, err = cli(capsys, "-C", str(sp), "build", "--all", "--output", str(outside))
    assert code == 0, err
    assert (outside / "files" / "a").is_dir()
