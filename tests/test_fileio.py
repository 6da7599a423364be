"""Atomic writes: whole files or none, with the mode a plain open() would give them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from superbuild import fileio


def test_reports_get_the_mode_the_umask_gives_not_0600(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    fileio.write_json_atomic(target, {"result": "success"})
    assert target.read_text() == '{\n  "result": "success"\n}\n'
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary left


def test_a_missing_folder_is_an_error_not_created(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        fileio.write_text_atomic(tmp_path / "no" / "such" / "r.json", "x")
    assert not (tmp_path / "no").exists()


def test_remove_tree_removes_everything_and_follows_no_link(tmp_path: Path) -> None:
    from superbuild.fileio import remove_tree

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("kept\n")
    work = tmp_path / "work"
    (work / "out").mkdir(parents=True)
    (work / "src" / "deep" / "er").mkdir(parents=True)
    (work / "src" / "deep" / "file").write_text("x")
    (work / "file").write_text("y")
    (work / "link").symlink_to(outside)
    (work / "dangling").symlink_to(tmp_path / "nowhere")
    remove_tree(work)
    assert not work.exists() and not work.is_symlink()
    assert (outside / "keep").read_text() == "kept\n"
    remove_tree(work)  # gone already: nothing to do, no error
    link = tmp_path / "a-link"
    link.symlink_to(outside)
    remove_tree(link)  # a link to a folder: rmtree's refusal, ignored; nothing followed
    assert (outside / "keep").exists()
