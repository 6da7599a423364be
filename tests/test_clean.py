"""``superbuild clean`` and the removal of stale scratch: real folders under .superbuild/."""

from __future__ import annotations

from pathlib import Path

import pytest

from superbuild import layout
from superbuild.cleanup import clean, remove_stale_scratch
from superbuild.state import BuildLock
from tests.conftest import Repo
from tests.helpers import cli, command_product, run_superbuild

RUNS = [f"20261201-1200{i:02}-abcdef" for i in range(5)]


def make_runs(repo: Path, runs: list[str], *, work: bool = True) -> None:
    for run in runs:
        log = layout.run_logs(repo, run) / "pkg"
        log.mkdir(parents=True)
        (log / "rpm.log").write_text("log\n")
        (layout.run_logs(repo, run) / "report.json").write_text("{}\n")
        if work:
            (layout.run_work(repo, run) / "pkg").mkdir(parents=True)
    (layout.logs_root(repo) / "latest").symlink_to(runs[-1])


def runs_left(repo: Path, folder: str) -> list[str]:
    root = layout.state_path(repo) / folder
    return sorted(p.name for p in root.iterdir() if not p.is_symlink()) if root.exists() else []


def test_clean_keeps_the_newest_runs(tmp_path: Path) -> None:
    make_runs(tmp_path, RUNS)
    done = clean(tmp_path, 2)
    assert done.runs == RUNS[:3] and done.kept == RUNS[3:]
    assert runs_left(tmp_path, "logs") == RUNS[3:]
    assert runs_left(tmp_path, "work") == RUNS[3:]
    assert (layout.logs_root(tmp_path) / "latest").resolve().name == RUNS[-1]


def test_clean_keep_zero_removes_every_run_and_the_latest_link(tmp_path: Path) -> None:
    make_runs(tmp_path, RUNS[:2])
    assert clean(tmp_path, 0).runs == RUNS[:2]
    assert runs_left(tmp_path, "logs") == [] and runs_left(tmp_path, "work") == []
    assert not (layout.logs_root(tmp_path) / "latest").is_symlink()


def test_dry_run_removes_nothing(tmp_path: Path) -> None:
    make_runs(tmp_path, RUNS)
    assert len(clean(tmp_path, 1, dry_run=True).paths) == 8
    assert runs_left(tmp_path, "logs") == RUNS


def test_stale_scratch_goes_the_running_runs_stays(tmp_path: Path) -> None:
    make_runs(tmp_path, RUNS)
    removed = remove_stale_scratch(tmp_path, running=RUNS[-1])
    assert [p.name for p in removed] == RUNS[:-1]
    assert runs_left(tmp_path, "work") == RUNS[-1:]
    assert runs_left(tmp_path, "logs") == RUNS  # logs are clean's business
    assert remove_stale_scratch(tmp_path / "nothing-here") == []


def test_clean_verb(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.write("superbuild.yaml", "keep_runs: 3\n")
    repo.package("a")
    repo.commit()
    make_runs(repo.path, RUNS)
    code, out, err = cli(capsys, "clean", "-C", str(repo.path), "--dry-run")
    assert code == 0 and err == "would remove 2 runs, kept 3 runs\n"
    assert out.splitlines()[0] == f"would remove {layout.run_logs(repo.path, RUNS[0])}"
    assert runs_left(repo.path, "logs") == RUNS
    code, out, err = cli(capsys, "clean", "-C", str(repo.path))  # keep_runs: 3
    assert code == 0 and err == "removed 2 runs, kept 3 runs\n"
    assert runs_left(repo.path, "logs") == RUNS[2:]
    code, out, err = cli(capsys, "clean", "-C", str(repo.path), "--keep", "1")
    assert code == 0 and err == "removed 2 runs, kept 1 run\n"
    assert runs_left(repo.path, "work") == RUNS[4:]
    code, _, err = cli(capsys, "clean", "-C", str(repo.path), "--keep", "-1")
    assert code == 2 and "--keep must be at least 0" in err


def test_clean_before_the_first_commit_uses_the_default(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    make_runs(repo.path, [f"20261201-1200{i:02}-abcdef" for i in range(22)])
    code, _, err = cli(capsys, "clean", "-C", str(repo.path))
    assert code == 0 and err == "removed 2 runs, kept 20 runs\n"


def test_clean_never_runs_next_to_a_build(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.package("a")
    repo.commit()
    make_runs(repo.path, RUNS)
    with BuildLock(repo.path, "20261202-080000-123456"):
        code, out, err = cli(capsys, "clean", "-C", str(repo.path), "--keep", "0")
    assert code == 2 and out == ""
    assert "another build is running in this superproject: run 20261202-080000-123456" in err
    assert runs_left(repo.path, "logs") == RUNS


def test_build_removes_the_scratch_a_killed_run_left(tmp_path: Path) -> None:
    sp = command_product(tmp_path, {"base": []})
    killed = layout.run_work(sp, "20261201-120000-abcdef") / "base"
    killed.mkdir(parents=True)
    (killed / "half-built").write_text("x")
    result = run_superbuild("build", "--all", cwd=sp)
    assert result.returncode == 0, result.stderr
    assert not killed.parent.exists()


def test_a_run_removes_its_scratch_when_it_ends_even_when_a_package_fails(
    tmp_path: Path,
) -> None:
    sp = command_product(tmp_path, {"base": [], "tool": []})
    news = sp / "repos" / "base" / "NEWS"
    news.write_text("FAIL\n")
    from superbuild.testing.sample import run_git

    run_git(news.parent, "commit", "-q", "-am", "break base")
    run_git(sp, "commit", "-q", "-am", "record the broken base")
    result = run_superbuild("build", "--all", cwd=sp)
    assert result.returncode == 1, result.stderr
    assert "base failed" in result.stderr
    assert runs_left(sp, "work") == []
    assert len(runs_left(sp, "logs")) == 1
