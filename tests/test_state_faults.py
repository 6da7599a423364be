"""The build state under faults: a damaged file, a read-only superproject.

A real run leaves a real ``state.db``; copies of it are damaged (random bytes, truncations,
a flipped page, text that is not UTF-8) and the read verbs run on each: every outcome is
an answer or one line naming the file, never a traceback.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from superbuild import layout
from superbuild.state import BuildState
from tests.conftest import Repo
from tests.helpers import cli

#: How many damaged copies the default run tries (the ``slow`` run tries 250).
VARIANTS = 24
VERBS = (
    ("status",),
    ("plan", "--since-last-success"),
    ("build", "--dry-run", "--since-last-success"),
)


@pytest.fixture
def built(repo: Repo, capsys: pytest.CaptureFixture[str]) -> Repo:
    """Two packages built with shell steps (a real state.db), then a commit moving one."""
    for name in ("base", "tool"):
        repo.manifest(
            name, f"path: repos/{name}\npipeline: command\nsource: none\ncommands: ['true']\n"
        )
        repo.link(f"repos/{name}")
    repo.commit("initial")
    code, _, err = cli(capsys, "build", "-C", str(repo.path), "--all", "-j", "1")
    assert code == 0, err
    repo.link("repos/tool")
    repo.commit("move tool")
    db = layout.db_path(repo.path)
    with sqlite3.connect(db) as conn:  # one file: the WAL folded in
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return repo


def damage(data: bytes, rng: random.Random) -> bytes:
    kind = rng.choice(("bytes", "truncate", "page", "text"))
    buf = bytearray(data)
    if kind == "bytes":
        for _ in range(rng.randint(1, 64)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    elif kind == "truncate":
        del buf[rng.randrange(len(buf)) :]
    elif kind == "page":
        page = 4096
        start = rng.randrange(max(1, len(buf) // page)) * page
        for i in range(start, min(len(buf), start + page)):
            buf[i] ^= 0xFF
    else:  # text that is not UTF-8 where a package name was
        at = buf.find(b"tool", rng.randrange(len(buf) // 2))
        if at < 0:
            at = buf.find(b"tool")
        if at >= 0:
            buf[at : at + 4] = b"\xff\xfe\xfd\xfc"
    return bytes(buf)


def check_verbs(repo: Repo, capsys: pytest.CaptureFixture[str], label: str) -> None:
    db = layout.db_path(repo.path)
    for verb in VERBS:
        code, _, err = cli(capsys, *verb, "-C", str(repo.path))
        assert "Traceback" not in err, (label, verb, err)
        assert code in (0, 1, 2), (label, verb, code, err)
        if code == 2:
            [line] = err.splitlines()
            assert str(db) in line, (label, verb, line)


def run_variants(repo: Repo, capsys: pytest.CaptureFixture[str], count: int) -> None:
    db = layout.db_path(repo.path)
    good = db.read_bytes()
    rng = random.Random(11)
    for n in range(count):
        for extra in (Path(f"{db}-wal"), Path(f"{db}-shm")):
            extra.unlink(missing_ok=True)
        db.write_bytes(damage(good, rng))
        check_verbs(repo, capsys, f"variant {n}")


def test_damaged_state_is_one_line_never_a_traceback(
    built: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    run_variants(built, capsys, VARIANTS)


@pytest.mark.slow
def test_damaged_state_250_variants(built: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    run_variants(built, capsys, 250)


def test_text_that_is_not_utf8_is_one_line(built: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    db = layout.db_path(built.path)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE builds SET package = CAST(X'FFFE746F6F6C' AS TEXT) WHERE package = 'tool'"
        )
    code, out, err = cli(capsys, "plan", "--since-last-success", "-C", str(built.path))
    assert (code, out) == (2, "")
    [line] = err.splitlines()
    assert str(db) in line and "not UTF-8" in line and "move the file away" in line


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Each file's mtime and size (SQLite's own WAL index, shared by readers: its name)."""
    return {
        str(p.relative_to(folder)): (0, 0)
        if p.name.endswith(("-shm", "-wal"))
        else (p.stat().st_mtime_ns, p.stat().st_size)
        for p in folder.rglob("*")
    }


def test_read_verbs_open_the_state_read_only(
    built: Repo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real = sqlite3.connect

    def spy(database: str, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        seen.append(str(database))
        conn: sqlite3.Connection = real(database, *args, **kwargs)
        return conn

    monkeypatch.setattr(sqlite3, "connect", spy)
    state = layout.state_dir(built.path)
    before = listing(state)
    for verb in (*VERBS, ("changed",), ("graph",), ("build", "--dry-run")):
        code, _, err = cli(capsys, *verb, "-C", str(built.path))
        assert code == 0, (verb, err)
    assert seen and all("mode=ro" in uri for uri in seen), seen
    assert listing(state) == before


def test_read_verbs_on_a_read_only_superproject(
    built: Repo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A read-only bind mount when we may mount (root ignores file modes), else chmod."""
    copy = tmp_path / "ro"
    shutil.copytree(built.path, copy, symlinks=True)
    mounted = False
    if os.geteuid() == 0:
        target = tmp_path / "ro-mount"
        target.mkdir()
        from superbuild import proc

        result = proc.run(["mount", "--bind", "-o", "ro", str(copy), str(target)], check=False)
        if result.returncode == 0:
            mounted = True
            where = target
        else:
            pytest.skip(f"cannot make a read-only bind mount: {result.stderr!r}")
    else:
        for p in [copy, *copy.rglob("*")]:
            if not p.is_symlink():
                p.chmod(p.stat().st_mode & ~0o222)
        where = copy
    try:
        for verb in (
            ("status",),
            ("plan", "--since-last-success"),
            ("build", "--dry-run", "--since-last-success"),
        ):
            code, _, err = cli(capsys, *verb, "-C", str(where))
            assert code == 0, (verb, err)
            assert "damaged" not in err
    finally:
        if mounted:
            proc.run(["umount", str(where)], check=False)


def test_state_under_an_undecodable_path(
    repo: Repo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    weird = Path(os.fsdecode(bytes(tmp_path) + b"/st\xffate"))
    weird.mkdir()
    (weird / "x").mkdir()
    with BuildState.open(weird / "x") as state:
        assert state.runs() == []
    with BuildState.read(weird / "x") as read:
        assert read is not None and read.runs() == []


def test_disk_full_mid_run_fails_the_run_with_that_reason(
    repo: Repo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recorder's write of a finished package fails as on a full disk (injected)."""
    repo.manifest("base", "path: repos/base\npipeline: command\nsource: none\ncommands: ['true']\n")
    repo.link("repos/base")
    repo.commit("initial")
    real = BuildState.update_build
    failures = []

    def full(self: BuildState, run_id: str, package: str, **values: Any) -> None:
        if values.get("status") == "succeeded":
            failures.append(package)
            raise sqlite3.OperationalError("database or disk is full")
        real(self, run_id, package, **values)

    monkeypatch.setattr(BuildState, "update_build", full)
    code, _, err = cli(capsys, "build", "-C", str(repo.path), "--all", "-j", "1")
    assert failures == ["base"]
    assert code == 1, err  # a full disk fails the run (docs/cli.md)
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    db = layout.db_path(repo.path)
    assert str(db) in last and "database or disk is full" in last and "free some space" in last
    monkeypatch.undo()
    with BuildState.read(repo.path) as state:
        assert state is not None
        [run] = state.runs()
        assert run.result == "failure"
        [record] = state.builds(run.id)
        assert record.status == "failed"
        assert "database or disk is full" in record.reason
