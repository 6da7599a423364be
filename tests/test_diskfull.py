"""A full disk, for real: the output repository (or the superproject's ``.superbuild/``)
on a small tmpfs, filled up, then a real rpm build.

The run stops with the full disk's own line (naming the file it was writing), publishes
no half package, leaves no temporary file inside a published folder, and once there is
room again a plain ``superbuild build`` completes the journaled refresh and the rest of
the product, which a real client (dnf) then reads.  Mounting needs root: without it the
tests skip, saying so.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_crash import (
    RPM_PRODUCT,
    build,
    child_env,
    dnf_problems,
    make_rpm_product,
    repo_problems,
)

pytestmark = pytest.mark.rpm

#: Room left on the file system for the run: enough for a package or two, not four.
ROOM = 24 * 1024


def _can_mount() -> str | None:
    if os.geteuid() != 0:
        return "needs root to mount a small tmpfs (run the tests as root, as CI does)"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "needs mount(8) and umount(8)"
    return None


@contextlib.contextmanager
def small_fs(where: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``where`` (created), unmounted afterwards."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "superbuild-test", os.fspath(where)],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): disk-full test not run")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", os.fspath(where)], check=False, stdin=subprocess.DEVNULL)


def fill(fs: Path, leave: int) -> Path:
    """Fill ``fs`` until ``leave`` bytes are free; the filler file."""
    filler = fs / "filler"
    free = shutil.disk_usage(fs).free
    with filler.open("wb") as out:
        out.write(b"\0" * max(0, free - leave))
    return filler


@pytest.fixture
def rpm_sample(tmp_path: Path) -> Path:
    if (why := _can_mount()) is not None:
        pytest.skip(why)
    return make_rpm_product(tmp_path)


def superbuild(sp: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "superbuild", *argv],
        cwd=sp,
        env=child_env("diskfull"),
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def temporary_files(top: Path) -> list[str]:
    return sorted(
        p.relative_to(top).as_posix()
        for p in top.rglob("*")
        if p.name.endswith(".tmp") and ".superbuild-staging" not in p.parts
    )


def test_a_full_output_disk_stops_the_run_and_the_next_build_completes(
    tmp_path: Path, rpm_sample: Path
) -> None:
    with small_fs(tmp_path / "fs") as fs:
        output = fs / "out"
        filler = fill(fs, ROOM)
        first = build(rpm_sample, "diskfull", "--all", "--output", os.fspath(output))
        assert first.returncode == 1, first.stderr
        assert "Traceback" not in first.stderr
        lines = [line for line in first.stderr.splitlines() if "no space left on device" in line]
        assert lines, first.stderr
        # The line names the file being written and what to do.
        assert f"writing {output}" in first.stderr, lines
        assert "free space on that file system" in first.stderr
        # At most the jobs running side by side (-j2) met the full disk: the run stopped.
        failed = [ln for ln in first.stderr.splitlines() if "] failed" in ln]
        assert 1 <= len(failed) <= 2, first.stderr
        assert temporary_files(output) == []
        # Every RPM in a published folder is whole: a copy that failed published nothing.
        for rpm in output.rglob("*.rpm"):
            check = subprocess.run(
                ["rpm", "-qp", "--nosignature", "--nodigest", os.fspath(rpm)],
                capture_output=True,
                check=False,
                stdin=subprocess.DEVNULL,
            )
            assert check.returncode == 0, (rpm, check.stderr)

        filler.unlink()
        again = build(rpm_sample, "diskfull", "--output", os.fspath(output))
        assert again.returncode == 0, again.stderr
        assert repo_problems(output) == []
        # (A package the stopped run had built is built again, with the next rebuild number.)
        names = {p.name.split("-")[0] for p in (output / "rpms").rglob("*.rpm")}
        assert names == set(RPM_PRODUCT)
        assert dnf_problems(output, tmp_path / "dnfroot") == []
        assert not (output / ".superbuild-pending").exists()


def test_a_full_state_disk_is_one_line(tmp_path: Path, rpm_sample: Path) -> None:
    """``.superbuild/`` (state, logs) on a full file system: one line, no traceback."""
    state = rpm_sample / ".superbuild"
    with small_fs(state, "1m"):
        fill(state, 0)
        done = build(rpm_sample, "diskfull", "--all", "--output", os.fspath(tmp_path / "out"))
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        assert f"no space left on device writing {state}" in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize("room", [0, 8 * 1024, 64 * 1024])
def test_state_disk_filling_up_after_a_first_build_is_one_line(
    tmp_path: Path, rpm_sample: Path, room: int
) -> None:
    """The state database and the logs exist, then the file system fills up: the next
    build fails with one line naming what it could not write, and leaves the state readable."""
    state = rpm_sample / ".superbuild"
    with small_fs(state, "2m"):
        first = build(rpm_sample, "diskfull", "--all", "--output", os.fspath(tmp_path / "out"))
        assert first.returncode == 0, first.stderr
        filler = fill(state, room)
        done = build(rpm_sample, "diskfull", "--all", "--output", os.fspath(tmp_path / "out"))
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr and "this is a bug" not in done.stderr, done.stderr
        line = done.stderr.strip().splitlines()[-1]
        assert str(state) in line, line  # names what it could not write
        assert "no space left on device" in line or "disk is full" in line, line
        filler.unlink()
        status = superbuild(rpm_sample, "status", "--json")
        assert status.returncode == 0, status.stderr
        runs = json.loads(status.stdout)
        assert runs, status.stdout


def test_publishing_a_release_to_a_full_disk_leaves_nothing_half_published(
    tmp_path: Path, rpm_sample: Path
) -> None:
    """``release publish`` onto a file system that fills up: the full disk's line, exit 1,
    no release visible in DEST and ``current`` untouched; with room, the publish works."""
    built = build(rpm_sample, "diskfull", "--all", "--output", os.fspath(tmp_path / "out"))
    assert built.returncode == 0, built.stderr

    def release(*argv: str) -> subprocess.CompletedProcess[str]:
        return superbuild(rpm_sample, "release", *argv)

    made = release("create", "R1")
    assert made.returncode == 0, made.stderr
    with small_fs(tmp_path / "fs") as fs:
        dest = fs / "pub"
        dest.mkdir()
        filler = fill(fs, ROOM)
        full = release("publish", "R1", os.fspath(dest))
        assert full.returncode == 1, full.stderr
        assert "Traceback" not in full.stderr
        assert "no space left on device" in full.stderr, full.stderr
        assert [p.name for p in dest.iterdir() if not p.name.startswith(".")] == []
        filler.unlink()
        again = release("publish", "R1", os.fspath(dest))
        assert again.returncode == 0, again.stderr
        assert (dest / "current").resolve() == (dest / "R1").resolve()
        assert sorted(p.name for p in dest.iterdir() if not p.name.startswith(".")) == [
            "R1",
            "current",
        ]
