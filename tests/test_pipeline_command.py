"""The command pipeline: shell steps in an export of the recorded commit."""

from __future__ import annotations

import os
import tarfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import pytest

from superbuild import proc
from superbuild.errors import SuperbuildError
from superbuild.pipelines.api import PipelineFailed, SourceUnavailable
from superbuild.pipelines.task import run_package
from tests.rpmtools import commit_files, init_repo, make_context, make_package, write_files

ENV_STEP = 'env | grep -E "^(SUPERBUILD_|GREETING=)" | sort > "$SUPERBUILD_OUTPUT/env.txt"'
COPY_STEP = (
    'mkdir -p "$SUPERBUILD_OUTPUT/sub" && cp data.txt "$SUPERBUILD_OUTPUT/sub/data.txt" '
    '&& pwd > "$SUPERBUILD_OUTPUT/pwd.txt" && ls -A > "$SUPERBUILD_OUTPUT/ls.txt"'
)


@pytest.fixture
def docs_repo(tmp_path: Path) -> tuple[Path, str]:
    repo = init_repo(tmp_path / "src" / "docs")
    a = commit_files(repo, {"data.txt": "at A\n"}, "A")
    commit_files(repo, {"data.txt": "at B\n", "later.txt": "B\n"}, "B")
    write_files(repo, {"data.txt": "dirty\n", "untracked.txt": "u\n"})
    return repo, a


def _env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def test_steps_see_the_export_env_and_leave_artifacts(
    tmp_path: Path, docs_repo: tuple[Path, str]
) -> None:
    repo, a = docs_repo
    package = make_package(
        "docs",
        pipeline="command",
        commands=(ENV_STEP, COPY_STEP),
        env=(("GREETING", "hi $(touch pwned) `touch pwned2` ;rm -rf x"),),
    )
    ctx = make_context(tmp_path, package, a, repo)
    result = run_package(ctx)

    assert result.artifacts == [
        "files/docs/env.txt",
        "files/docs/ls.txt",
        "files/docs/pwd.txt",
        "files/docs/sub/data.txt",
    ]
    files = tmp_path / "output" / "files" / "docs"
    assert (files / "sub" / "data.txt").read_text() == "at A\n"
    assert (files / "ls.txt").read_text().split() == ["data.txt"]
    src = ctx.work_dir / "src"
    assert (files / "pwd.txt").read_text().strip() == os.fspath(src)
    tarball = ctx.work_dir / f"docs-{a[:7]}.tar.gz"
    assert _env(files / "env.txt") == {
        "GREETING": "hi $(touch pwned) `touch pwned2` ;rm -rf x",
        "SUPERBUILD_COMMIT": a,
        "SUPERBUILD_OUTPUT": os.fspath(ctx.work_dir / "out"),
        "SUPERBUILD_PACKAGE": "docs",
        "SUPERBUILD_PATH": "repos/docs",
        "SUPERBUILD_SRC": os.fspath(src),
        "SUPERBUILD_TARBALL": os.fspath(tarball),
    }
    assert not list(tmp_path.rglob("pwned*"))
    with tarfile.open(tarball) as tar:
        assert sorted(tar.getnames()) == [f"docs-{a[:7]}", f"docs-{a[:7]}/data.txt"]
    assert list(result.stage_durations) == ["source", "command", "collect"]
    log = (ctx.log_dir / "command.log").read_text()
    assert "# step 1/2" in log and "# step 2/2" in log
    assert (repo / "data.txt").read_text() == "dirty\n"

    # A rebuild replaces the package's files: nothing stale is left behind.
    package2 = make_package(
        "docs", pipeline="command", commands=('echo new > "$SUPERBUILD_OUTPUT/.new"',)
    )
    again = run_package(make_context(tmp_path, package2, a, repo, run="run2"))
    assert again.artifacts == ["files/docs/.new"]
    assert sorted(p.name for p in files.iterdir()) == [".new"]
    assert not [p for p in (tmp_path / "output" / "files").iterdir() if p.name != "docs"]


def test_source_none_runs_one_process_per_step_and_no_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_git(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"git was called: {args}")

    monkeypatch.setattr("superbuild.git.git", no_git)
    calls: list[list[str]] = []

    def runner(
        cmd: Sequence[str | os.PathLike[str]],
        *,
        log: IO[bytes],
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> proc.Completed:
        calls.append([os.fspath(c) for c in cmd])
        assert cwd is not None
        assert not any(Path(cwd).iterdir())
        return proc.Session().run_logged(cmd, log=log, cwd=cwd, env=env, timeout=timeout)

    package = make_package("bench", pipeline="command", commands=("true",), source="none")
    ctx = make_context(tmp_path, package, "f" * 40, tmp_path / "no-such-repo")
    result = run_package(ctx, runner)
    assert calls == [["true"]]  # a plain step runs without a shell, as make runs it
    assert result.artifacts == []
    assert list(result.stage_durations) == ["command"]
    assert sorted(p.name for p in ctx.log_dir.iterdir()) == ["command.log"]
    assert not (tmp_path / "output").exists()


def test_failing_step_stops_the_build(tmp_path: Path) -> None:
    steps = ("echo one", "echo boom >&2; exit 4", 'touch "$SUPERBUILD_OUTPUT/never"')
    package = make_package("bad", pipeline="command", commands=steps, source="none")
    ctx = make_context(tmp_path, package, "f" * 40, tmp_path)
    with pytest.raises(PipelineFailed) as info:
        run_package(ctx)
    log = ctx.log_dir / "command.log"
    assert str(info.value) == (
        f"bad: command stage failed (exit 4) in step 2 (echo boom >&2; exit 4), see {log}"
    )
    assert (info.value.stage, info.value.log) == ("command", log)
    assert b"boom" in log.read_bytes()
    assert not (ctx.work_dir / "out" / "never").exists()


def test_step_reading_stdin_does_not_hang(tmp_path: Path) -> None:
    package = make_package(
        "reader",
        pipeline="command",
        commands=('cat > "$SUPERBUILD_OUTPUT/stdin.txt"',),
        source="none",
        timeouts=(("command", 20.0),),
    )
    result = run_package(make_context(tmp_path, package, "f" * 40, tmp_path))
    assert (tmp_path / "output" / result.artifacts[0]).read_bytes() == b""


def test_stage_timeout_kills_the_step(tmp_path: Path) -> None:
    package = make_package(
        "slow",
        pipeline="command",
        commands=("sleep 30",),
        source="none",
        timeouts=(("command", 0.5),),
    )
    start = time.monotonic()
    with pytest.raises(PipelineFailed, match=r"slow: command stage failed: step 1 .*timed out"):
        run_package(make_context(tmp_path, package, "f" * 40, tmp_path))
    assert time.monotonic() - start < 10


def test_missing_commit_names_the_submodule_and_the_fix(
    tmp_path: Path, docs_repo: tuple[Path, str]
) -> None:
    repo, _ = docs_repo
    package = make_package("docs", pipeline="command", commands=("true",))
    for source_repo in (repo, tmp_path / "absent"):
        with pytest.raises(SourceUnavailable) as info:
            run_package(make_context(tmp_path, package, "deadbeef" * 5, source_repo))
        assert "\n" not in str(info.value)
        assert str(info.value).endswith("run git submodule update --init repos/docs")


def test_unknown_pipeline(tmp_path: Path) -> None:
    package = make_package("x", pipeline="docker")
    with pytest.raises(SuperbuildError, match="unknown pipeline 'docker'"):
        run_package(make_context(tmp_path, package, "f" * 40, tmp_path))


def test_per_package_overhead_is_small(tmp_path: Path) -> None:
    """source: none + ``true``: the shape of the 1,000-package benchmark."""
    package = make_package("bench", pipeline="command", commands=("true",), source="none")
    start = time.monotonic()
    for i in range(100):
        run_package(make_context(tmp_path, package, "f" * 40, tmp_path, run=f"r{i}"))
    per_package = (time.monotonic() - start) / 100
    assert per_package < 0.05, f"{per_package * 1000:.1f} ms per package"


def test_relative_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    step = 'cd / && echo "$SUPERBUILD_SRC" > "$SUPERBUILD_OUTPUT/src.txt"'
    package = make_package("rel", pipeline="command", commands=(step,), source="none")
    ctx = make_context(Path(), package, "f" * 40, Path("nowhere"))
    result = run_package(ctx)
    assert result.artifacts == ["files/rel/src.txt"]
    assert Path(result.log_dir).is_absolute()
    text = (tmp_path / "output" / "files" / "rel" / "src.txt").read_text().strip()
    assert text == os.fspath(tmp_path / "work" / "run1" / "rel" / "src")


@pytest.mark.parametrize(
    ("step", "argv"),
    [
        ("make -j4 install", ["make", "-j4", "install"]),
        ("true", ["true"]),
        ("./configure --prefix=/usr", ["./configure", "--prefix=/usr"]),
        ("make && make install", None),
        ("echo $HOME", None),
        ("cd src", None),
        ("exit 3", None),
        ("CC=gcc make", None),
        ("echo 'quoted'", None),
        ("ls > out", None),
    ],
)
def test_plain_steps_skip_the_shell(step: str, argv: list[str] | None) -> None:
    from superbuild.pipelines.command import plain_argv

    assert plain_argv(step) == argv


def test_missing_program_in_a_plain_step_fails_like_the_shell(tmp_path: Path) -> None:
    package = make_package(
        "bench", pipeline="command", commands=("no-such-program-here --flag",), source="none"
    )
    ctx = make_context(tmp_path, package, "f" * 40, tmp_path / "no-such-repo")
    with pytest.raises(PipelineFailed) as info:
        run_package(ctx)
    assert "command stage failed (exit 127) in step 1" in str(info.value)
    assert "not found" in (ctx.log_dir / "command.log").read_text()
