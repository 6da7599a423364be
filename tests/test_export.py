"""Exporting a commit as files (git archive + a safe unpack) and the user-command environment."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from superbuild import export
from superbuild.errors import GitError, SuperbuildError
from superbuild.submodules import initialized
from tests.conftest import Repo


@pytest.fixture
def lib(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "lib")
    repo.write("src/main.c", "int main(void) { return 0; }\n")
    (repo.path / "abs").symlink_to("/etc/passwd")
    (repo.path / "up").symlink_to("../../outside")
    repo.git("add", "abs", "up")
    repo.commit("files and symlinks")
    (repo.path / "untracked").write_text("not in the commit\n")
    return repo


def test_export_is_the_commit_not_the_work_tree(lib: Repo, tmp_path: Path) -> None:
    dest = tmp_path / "out" / "src"
    dest.mkdir(parents=True)
    (dest / "stale").write_text("from an earlier export\n")
    assert export.export_commit(lib.path, lib.head(), dest) == dest
    assert sorted(p.name for p in dest.iterdir()) == ["abs", "src", "up"]
    assert (dest / "src" / "main.c").read_text().startswith("int main")
    # symlinks stay symlinks, wherever they point
    assert (dest / "abs").readlink() == Path("/etc/passwd")
    assert (dest / "up").readlink() == Path("../../outside")
    assert sorted(p.name for p in dest.parent.iterdir()) == ["src"]  # no scratch left


def test_tarball_with_prefix_unpacks_its_folder(lib: Repo, tmp_path: Path) -> None:
    tarball = export.write_archive(lib.path, lib.head(), tmp_path / "lib-1.tar.gz", prefix="lib-1")
    with tarfile.open(tarball) as tar:  # gzip, as the name says
        assert all(name.startswith("lib-1") for name in tar.getnames())
    dest = export.unpack(tarball, tmp_path / "src", prefix="lib-1")
    assert (dest / "src" / "main.c").is_file()


def test_empty_commit_gives_an_empty_folder(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "empty")
    head = repo.commit("nothing")
    tarball = export.write_archive(repo.path, head, tmp_path / "e.tar.gz", prefix="e-1")
    assert list(export.unpack(tarball, tmp_path / "src", prefix="e-1").iterdir()) == []


def test_unknown_commit_is_a_git_error(lib: Repo, tmp_path: Path) -> None:
    with pytest.raises(GitError, match="git archive 123456789012"):
        export.export_commit(lib.path, "1234567890" * 4, tmp_path / "src")


def test_names_outside_the_folder_are_refused(tmp_path: Path) -> None:
    tarball = tmp_path / "evil.tar"
    with tarfile.open(tarball, "w") as tar:
        info = tarfile.TarInfo("../evil")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(SuperbuildError, match="cannot unpack"):
        export.unpack(tarball, tmp_path / "deep" / "src")
    assert not (tmp_path / "deep" / "evil").exists()


def test_command_env_drops_git_variables_and_layers_win_in_order() -> None:
    base = {"PATH": "/bin", "GIT_DIR": "/sp/.git", "GIT_INDEX_FILE": "/sp/.git/index", "X": "0"}
    env = export.command_env((("X", "1"), ("Y", "1")), {"Y": "2"}, base=base)
    assert env == {"PATH": "/bin", "X": "1", "Y": "2"}
    names = export.package_variables("nova", "repos/nova", "c0ffee", Path("/w/src"))
    assert names == {
        "SUPERBUILD_PACKAGE": "nova",
        "SUPERBUILD_COMMIT": "c0ffee",
        "SUPERBUILD_PATH": "repos/nova",
        "SUPERBUILD_SRC": "/w/src",
    }


def test_initialized(lib: Repo, tmp_path: Path) -> None:
    assert initialized(lib.path)
    (tmp_path / "empty").mkdir()
    assert not initialized(tmp_path / "empty")
    assert not initialized(tmp_path / "absent")
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / ".git").write_text("gitdir: ../lib/.git\n")  # a submodule's file
    assert initialized(tmp_path / "linked")
