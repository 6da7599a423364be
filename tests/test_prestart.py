"""``superbuild status`` starts its one ``git status`` before the imports (prestart): the
same rows as the general path, a failing git reported as git's one line, and nothing left
running when the verb does not take it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from superbuild import prestart, proc
from superbuild import status as sts
from superbuild.errors import GitError
from superbuild.testing.sample import SampleSuperproject
from tests.helpers import run_superbuild
from tests.test_status import sample, shared, status, sub_git

__all__ = ["sample", "shared"]


@pytest.mark.parametrize(
    ("argv", "folder"),
    [
        (["status"], "."),
        (["status", "--json"], "."),
        (["-C", "sp", "status", "--json"], "sp"),
        (["status", "-C", "sp"], "sp"),
        (["status", "--help"], None),
        (["--json", "status"], None),
        (["-C", "a", "status", "-C", "b"], None),
        (["-C"], None),
        (["build"], None),
        (["status", "status"], None),
        ([], None),
    ],
)
def test_only_a_plain_status_command_line_starts_git_early(
    argv: list[str], folder: str | None
) -> None:
    assert prestart.status_argv(argv) == folder


def test_the_console_script_gives_the_rows_of_the_general_path(
    sample: SampleSuperproject,
) -> None:
    (sample.work_tree("base") / "README").write_text("edited\n")  # tracked change
    (sample.work_tree("tool") / "scratch.txt").write_text("new\n")  # untracked file
    sub_git(sample, "client", "commit", "-q", "--allow-empty", "-m", "local work")
    expected = status(sample)
    inside = sample.work_tree("base").parent  # -C a folder inside the superproject
    result = run_superbuild("-C", os.fspath(inside), "status", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["package"] or r["path"]: r for r in json.loads(result.stdout)}
    assert rows == expected
    assert (rows["base"]["dirty"], rows["tool"]["dirty"], rows["client"]["unpushed"]) == (
        True,
        True,
        1,
    )


def test_the_started_git_is_taken_by_the_folder_it_runs_in(
    sample: SampleSuperproject,
) -> None:
    (sample.work_tree("base") / "README").write_text("edited\n")
    prestart.before_status(["-C", os.fspath(sample.path / "repos"), "status"])
    try:
        assert prestart.take(os.fspath(sample.path / "repos"), prestart.STATUS_ARGS) is None
        started = prestart.take(os.fspath(sample.path), prestart.STATUS_ARGS)
        assert started is not None
        flags = sts.parse_porcelain_v2(proc.finish_started(started).stdout)
    finally:
        prestart.discard()
    assert flags["repos/base"].modified
    with pytest.raises(ChildProcessError):
        os.waitpid(started.pid, os.WNOHANG)  # reaped


def test_what_no_verb_takes_is_stopped_and_reaped(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()  # not a repository git can read: git status fails or waits
    prestart.before_status(["-C", os.fspath(tmp_path), "status", "--json"])
    started = dict(prestart._STARTED)
    assert len(started) == 1
    prestart.discard()
    assert prestart._STARTED == {}
    for one in started.values():
        with pytest.raises(ChildProcessError):
            os.waitpid(one.pid, os.WNOHANG)


def test_a_failing_started_git_is_git_s_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".git").mkdir()  # an empty .git: git says it is not a repository
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", os.fspath(tmp_path.parent))
    prestart.start(os.fspath(tmp_path.resolve()), prestart.STATUS_ARGS)
    with pytest.raises(GitError) as caught:
        sts.submodule_flags(tmp_path)
    assert caught.value.lines[0].startswith("git status exited 128: ")
    assert "not a git repository" in caught.value.lines[0]
    assert prestart._STARTED == {}
