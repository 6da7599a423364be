"""The lean path of ``changed --format json`` (superbuild.fastchanged) gives the general
path's JSON byte for byte, over a history of every kind of change, and leaves anything
it does not handle to the general path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from superbuild import changecore, fastchanged
from tests.conftest import Repo, fake_sha
from tests.helpers import cli


def fast(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int | None, str]:
    code = fastchanged.main(list(argv))
    return code, capsys.readouterr().out


def general(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code, out, err = cli(capsys, *argv)
    assert code in (0, 1), err
    return code, out


def history(repo: Repo) -> list[str]:
    """Commits of every kind: bumps, adds, deletes, manifest and settings edits,
    unmanaged gitlinks, a gitlink turned into a file, a merge."""
    commits = []
    for name, requires in (
        ("base", ()),
        ("client", ("base",)),
        ("service", ("client",)),
        ("tool", ()),
    ):
        repo.package(name, requires=requires)
    commits.append(repo.commit("initial"))
    repo.link("repos/client", fake_sha("c2"))
    commits.append(repo.commit("bump client"))
    repo.manifest("tool", "path: repos/tool\ndescription: a tool, now described\n")
    commits.append(repo.commit("a manifest edit outside the build key"))
    repo.manifest("tool", "path: repos/tool\npipeline: command\ncommands: [make]\n")
    commits.append(repo.commit("tool is built by a command"))
    repo.link("vendor/orphan")
    commits.append(repo.commit("an unmanaged submodule"))
    repo.package("extra", requires=("service",))
    commits.append(repo.commit("add extra"))
    repo.write("superbuild.yaml", "defaults:\n  pipeline: command\n  commands: [make]\n")
    commits.append(repo.commit("default pipeline"))
    repo.unlink("repos/tool")
    repo.remove("manifests/tool.yaml")
    commits.append(repo.commit("drop tool"))
    repo.write("repos/tool", "a plain file\n")
    commits.append(repo.commit("tool becomes a file"))
    side = repo.head()
    repo.git("checkout", "-q", "-b", "side", commits[3])
    repo.link("repos/base", fake_sha("b2"))
    repo.commit("bump base on a branch")
    repo.git("checkout", "-q", "-")
    repo.git("merge", "-q", "--no-edit", "side")
    commits.append(repo.head())
    repo.link("repos/client", fake_sha("c3"))
    repo.link("repos/service", fake_sha("s2"))
    commits.append(repo.commit("bump two"))
    assert side in commits
    return commits


def test_the_lean_path_prints_the_general_paths_json_over_a_history(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    commits = history(repo)
    top = str(repo.path)
    ranges = [["--head", c] for c in commits]
    ranges += [["--base", commits[0]], ["--base", commits[2], "--head", commits[-2]]]
    ranges += [["--base", commits[-1], "--head", commits[1]], []]
    answered = 0
    for extra in ranges:
        argv = ["-C", top, "changed", "--format", "json", *extra]
        _, expected = general(capsys, *argv)  # also writes the manifests cache
        for flags in ([], ["--exit-code"]):
            lean, out = fast(capsys, *argv, *flags)
            if lean is None:
                continue
            answered += 1
            assert out == expected, extra
            affected = bool(json.loads(out)["affected"])
            assert lean == (1 if flags and affected else 0)
    # Everything but the root commit (no parent) is answered here once the cache exists.
    assert answered == 2 * (len(ranges) - 1)
    assert fast(capsys, "-C", top, "changed", "--format", "json", "--head", commits[0])[0] is None


def test_a_targets_settings_change_is_the_same_change_on_both_paths(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    """A change to one target's settings changes every package built for it, on the lean
    path (it reads the targets' digests from the cache) as on the general one."""
    history(repo)
    targets = "defaults:\n  pipeline: command\n  commands: [make]\ntargets:\n"
    repo.write("superbuild.yaml", targets + "  el9: {env: {DIST: el9}}\n  fc42: {}\n")
    repo.commit("two targets")
    repo.write("superbuild.yaml", targets + "  el9: {env: {DIST: el9.1}}\n  fc42: {}\n")
    repo.commit("el9's settings change")
    argv = ["-C", str(repo.path), "changed", "--format", "json"]
    _, expected = general(capsys, *argv)
    assert sorted(json.loads(expected)["manifest_changes"]) == [
        "base",
        "client",
        "extra",
        "service",
    ]
    code, out = fast(capsys, *argv)
    assert code == 0 and out == expected


def test_the_general_path_prints_with_the_same_function(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    history(repo)
    _, out = general(capsys, "-C", str(repo.path), "changed", "--format", "json")
    assert out == json.dumps(json.loads(out), indent=2) + "\n"


@pytest.mark.parametrize(
    "value",
    [
        {"a": [], "b": {}, "c": None, "d": [["x", "é"], []], "e": True, "f": 0, "g": '\x00\n"\\'},
        [],
        {"k": [{"n": -12, "m": False}]},
        "\udcff surrogate",
    ],
)
def test_dumps_is_json_dumps_indent_2(value: object) -> None:
    assert changecore.dumps(value) == json.dumps(value, indent=2) + "\n"


_report_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(_report_values)
def test_dumps_is_json_dumps_indent_2_for_any_report_value(value: object) -> None:
    assert changecore.dumps(value) == json.dumps(value, indent=2) + "\n"


@pytest.mark.parametrize(
    "extra",
    [
        ["--format", "text"],
        ["--format", "json", "--why", "base"],
        ["--format", "json", "--since-last-success"],
        ["--format", "json", "--base", "green"],
        ["--format", "json", "--base", "-x"],
        ["--format", "json", "--nope"],
        ["--format", "json", "--format", "json"],
        ["--format", "lines"],
        [],
    ],
)
def test_other_options_go_to_the_general_path(
    repo: Repo, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    history(repo)
    general(capsys, "-C", str(repo.path), "changed", "--format", "json")  # a warm cache
    assert fast(capsys, "-C", str(repo.path), "changed", *extra) == (None, "")
    assert fast(capsys, "-C", str(repo.path), "graph", "--format", "json") == (None, "")


def test_a_cold_cache_or_a_bad_manifest_goes_to_the_general_path(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    history(repo)
    argv = ["-C", str(repo.path), "changed", "--format", "json"]
    assert fast(capsys, *argv) == (None, "")  # no cache yet: the general path writes it
    _, expected = general(capsys, *argv)
    assert fast(capsys, *argv) == (0, expected)
    # A manifest whose path is no gitlink: the general path names it (exit 2).
    repo.manifest("ghost", "path: repos/ghost\n")
    repo.commit("a manifest without its submodule")
    general(capsys, "-C", str(repo.path), "changed", "--format", "json", "--head", "HEAD~1")
    assert fast(capsys, *argv) == (None, "")
    code, _, err = cli(capsys, *argv)
    assert code == 2 and "repos/ghost" in err


def test_an_initialized_changed_submodule_goes_to_the_general_path(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    history(repo)
    argv = ["-C", str(repo.path), "changed", "--format", "json"]
    general(capsys, *argv)
    assert fast(capsys, *argv)[0] == 0
    (repo.path / "repos/service/.git").mkdir(parents=True)  # its direction asks git
    assert fast(capsys, *argv) == (None, "")


def test_the_console_script_takes_the_lean_path(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m superbuild changed --format json`` imports no argparse, no subprocess."""
    history(repo)
    general(capsys, "-C", str(repo.path), "changed", "--format", "json")
    code = (
        "import os, sys, runpy; sys.argv = ['superbuild', 'changed', '--format', 'json'];\n"
        "os._exit = sys.exit  # the lean path skips teardown: see what it imported first\n"
        "try: runpy.run_module('superbuild', run_name='__main__')\n"
        "except SystemExit: pass\n"
        "print(sorted(m for m in ('argparse', 'subprocess', 'pathlib', 'typing', 'json', 'yaml')"
        " if m in sys.modules), file=sys.stderr)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=repo.path,
        capture_output=True,
        text=True,
        check=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert json.loads(result.stdout)["head"] == repo.head()
    # runpy itself imports pathlib-free importlib machinery; the verb imports none of these
    assert result.stderr.strip() == "[]"


def test_an_unsafe_path_in_a_commit_goes_to_the_general_paths_error(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_hostile import crafted_commit

    repo.manifest("a", "path: repos/a\n")
    repo.link("repos/a")
    repo.commit("product")
    argv = ["-C", str(repo.path), "changed", "--format", "json"]
    general(capsys, *argv)  # the manifests cache of this manifests tree
    crafted_commit(repo, [".."])
    assert fast(capsys, *argv) == (None, "")  # no traceback, nothing printed
    code, out, err = cli(capsys, *argv)
    assert (code, out) == (2, "") and "repos/../victim" in err


def test_a_lost_index_goes_to_the_general_path_which_writes_it_again(
    repo: Repo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lean path reads a per-tree index next to the manifests cache; when one is lost
    (a full disk when it was written), it gives up midway, with git already started, and
    leaves no git process behind; the general path answers and writes the index again."""
    commits = history(repo)
    argv = ["-C", str(repo.path), "changed", "--format", "json", "--base", commits[2]]
    _, expected = general(capsys, *argv)
    assert fast(capsys, *argv) == (0, expected)
    cache = repo.path / ".git" / "superbuild"
    base_tree = repo.git("rev-parse", f"{commits[2]}:manifests").strip()
    lost = [p for p in cache.glob("changed-*") if base_tree in p.name]
    assert len(lost) == 1
    lost[0].unlink()
    started: list[int] = []
    start = fastchanged._Git.start

    def recording(self: fastchanged._Git, *args: str, data: bytes | None = None) -> Any:
        pid, fd = start(self, *args, data=data)
        started.append(pid)
        return pid, fd

    monkeypatch.setattr(fastchanged._Git, "start", recording)
    assert fast(capsys, *argv) == (None, "")
    assert len(started) >= 3  # resolve, then ls-tree, diff-tree and merge-base at once
    for pid in started:  # every git the lean path started is reaped
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    monkeypatch.undo()
    assert general(capsys, *argv)[1] == expected
    assert lost[0].exists()
    assert fast(capsys, *argv) == (0, expected)


def test_a_full_or_closed_stdout_is_one_line_or_a_quiet_stop(
    repo: Repo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    history(repo)
    argv = ["-C", str(repo.path), "changed", "--format", "json"]
    general(capsys, *argv)

    class Failing:
        def __init__(self, error: OSError) -> None:
            self.error = error

        def write(self, text: str) -> int:
            raise self.error

        def flush(self) -> None:
            raise self.error

    monkeypatch.setattr(sys, "stdout", Failing(OSError(errno.ENOSPC, "No space left")))
    assert fastchanged.main(argv) == 1
    assert capsys.readouterr().err == (
        "superbuild: error: no space left on device: free space on that file system and run again\n"
    )
    monkeypatch.setattr(sys, "stdout", Failing(BrokenPipeError(errno.EPIPE, "Broken pipe")))
    assert fastchanged.main(argv) == 0
    assert capsys.readouterr().err == ""
