"""Crash consistency of the output repository: real builds SIGKILLed at random and at
chosen moments (during ``createrepo_c``, during the copy into the output), then the
follow-up builds a user runs (``--retry-failed``, ``--since-last-success``, a plain
``build``), and the repository checked the way a client reads it.

The default run does a few trials; ``-m slow`` runs the long loop
(``SUPERBUILD_CRASH_TRIALS``, default 30 random trials plus the chosen moments).
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

import superbuild
from superbuild import proc
from superbuild.testing.sample import make_sample_superproject
from tests.helpers import command_product

MARK = "SUPERBUILD_CRASH_MARK"
NS = {"r": "http://linux.duke.edu/metadata/repo", "c": "http://linux.duke.edu/metadata/common"}
RPM_PRODUCT = {"base": [], "lib": ["base"], "app": ["lib"], "tool": []}
COMMAND_PRODUCT = {f"p{i:02}": ([] if i < 3 else [f"p{i - 3:02}"]) for i in range(8)}


def repo_problems(output: Path) -> list[str]:
    """What a client would find wrong: listed files missing or with another sha256,
    files not listed, temporary or staging files inside a published folder."""
    problems: list[str] = []
    for sub in ("rpms", "srpms"):
        repo = output / sub
        if not repo.is_dir():
            continue
        on_disk = {p.relative_to(repo).as_posix() for p in repo.rglob("*.rpm")}
        repomd = repo / "repodata" / "repomd.xml"
        if not repomd.is_file():
            problems.append(f"{sub}: no repodata/repomd.xml but {len(on_disk)} rpm files")
            continue
        root = ET.parse(repomd).getroot()
        href = next(
            d.find("r:location", NS).attrib["href"]  # type: ignore[union-attr]
            for d in root.findall("r:data", NS)
            if d.get("type") == "primary"
        )
        primary = ET.fromstring(gzip.decompress((repo / href).read_bytes()))
        listed = set()
        for pkg in primary.findall("c:package", NS):
            loc = pkg.find("c:location", NS)
            csum = pkg.find("c:checksum", NS)
            assert loc is not None and csum is not None
            rel = loc.attrib["href"]
            listed.add(rel)
            path = repo / rel
            if not path.is_file():
                problems.append(f"{sub}/{rel}: listed but missing")
            elif csum.get("type") == "sha256" and (
                hashlib.sha256(path.read_bytes()).hexdigest() != csum.text
            ):
                problems.append(f"{sub}/{rel}: sha256 differs from the metadata")
        problems += [f"{sub}/{rel}: not listed in the metadata" for rel in on_disk - listed]
    for sub in ("rpms", "srpms", "files"):
        top = output / sub
        if not top.is_dir():
            continue
        for path in top.rglob("*"):
            part_of = path.relative_to(top)
            if part_of.parts[0] == "repodata" and sub != "files":
                continue  # the metadata (a .repodata/ left by a killed createrepo_c is debris)
            if any(
                part.startswith(".") or part.endswith((".tmp", ".old")) for part in part_of.parts
            ):
                problems.append(f"{sub}/{part_of}: debris inside a published folder")
    return problems


def survivors(mark: str) -> list[int]:
    """Processes (not zombies) whose environment carries the run's marker."""
    found = []
    needle = f"{MARK}={mark}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            if "zombie" in (entry / "status").read_text().lower():
                continue
        except OSError:
            continue
        found.append(int(entry.name))
    return found


def wait_for_no_survivors(mark: str, limit: float = 30.0) -> list[int]:
    deadline = time.monotonic() + limit
    while (left := survivors(mark)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def child_env(mark: str) -> dict[str, str]:
    """The build's environment: marked, and importing this checkout's superbuild."""
    top = str(Path(superbuild.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (top, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, MARK: mark, "PYTHONPATH": path}


#: The mark of each build start_build started, by pid.
MARKS: dict[int, str] = {}


def start_build(sp: Path, mark: str, *args: str) -> subprocess.Popen[bytes]:
    child = subprocess.Popen(
        [sys.executable, "-m", "superbuild", "build", *args],
        cwd=sp,
        env=child_env(mark),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    MARKS[child.pid] = mark
    return child


#: Longest a follow-up build may take: a hang fails the test instead of holding CI.
FOLLOW_UP_TIMEOUT = 180.0


def build(
    sp: Path, mark: str, *args: str, timeout: float = FOLLOW_UP_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "superbuild", "build", *args],
        cwd=sp,
        env=child_env(mark),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        start_new_session=True,
        timeout=timeout,
    )


def dnf_problems(output: Path, root: Path) -> list[str]:
    """What a real client (dnf) says of ``output/rpms``: [] when it lists every package."""
    repo = output / "rpms"
    if not repo.is_dir():
        return []
    on_disk = sorted(p.name[: -len(".rpm")] for p in repo.rglob("*.rpm"))
    done = subprocess.run(
        [
            *("dnf", "-q", f"--installroot={root}", "--releasever=1", "--nogpgcheck"),
            *("--setopt=reposdir=/dev/null", f"--setopt=cachedir={root / 'cache'}"),
            *(f"--repofrompath=r,{repo}", "--repo=r", "repoquery"),
            *("--queryformat", "%{name}-%{version}-%{release}.%{arch}\\n"),
        ],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    shutil.rmtree(root, ignore_errors=True)
    if done.returncode != 0:
        return [f"dnf repoquery exited {done.returncode}: {done.stderr.strip()[-300:]}"]
    listed = sorted(line.strip() for line in done.stdout.splitlines() if line.strip())
    if listed != on_disk:
        return [f"dnf lists {listed}, the repository holds {on_disk}"]
    return []


def kill(child: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    assert child.stderr is not None
    child.stderr.close()


def wait_until(child: subprocess.Popen[bytes], seen: Callable[[], bool]) -> bool:
    """Poll until ``seen()`` or the build ends; whether it was seen in time."""
    while child.poll() is None:
        if seen():
            return True
        time.sleep(0.002)
    return False


def createrepo_running(mark: str) -> Callable[[], bool]:
    def seen() -> bool:
        for pid in survivors(mark):
            try:
                if b"createrepo_c" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return True
            except OSError:
                pass
        return False

    return seen


def copy_running(output: Path) -> Callable[[], bool]:
    staging = output / ".superbuild-staging"
    return staging.is_dir


class Trials:
    """A pristine superproject copied per trial; counts what the checks found."""

    def __init__(self, tmp_path: Path, pristine: Path, *, client: bool = False) -> None:
        self.tmp_path = tmp_path
        self.client = client  # also ask dnf after each follow-up build
        self.pristine = pristine
        self.count = 0
        self.after_kill: list[str] = []  # seen right after a kill (the journal covers it)
        self.failures: list[str] = []  # seen after the follow-up builds

    def fresh(self) -> Path:
        self.count += 1
        sp = self.tmp_path / f"trial{self.count}"
        shutil.copytree(self.pristine, sp, symlinks=True)
        return sp

    def duration(self) -> float:
        sp = self.fresh()
        started = time.monotonic()
        done = build(sp, uuid.uuid4().hex, "--all", "-j", "2")
        assert done.returncode == 0, done.stderr
        self.failures += [f"clean build: {p}" for p in repo_problems(sp / ".superbuild/output")]
        return time.monotonic() - started

    def trial(self, what: str, when: Callable[[subprocess.Popen[bytes], Path], object]) -> None:
        sp = self.fresh()
        mark = uuid.uuid4().hex
        output = sp / ".superbuild" / "output"
        child = start_build(sp, mark, "--all", "-j", "2")
        hit = when(child, output)
        kill(child)
        if hit is False:
            self.failures.append(f"{what}: the build ended before that moment")
        # What the kill left, once the watchdog has stopped the run's processes (a
        # createrepo_c it is stopping may still be removing its .repodata/).
        self.failures += [f"{what}: {pid} outlived the kill" for pid in wait_for_no_survivors(mark)]
        self.after_kill += [f"{what}: {p}" for p in repo_problems(output)]
        for args in (("--retry-failed",), ("--since-last-success",), ()):
            done = build(sp, mark, *args)
            assert done.returncode in (0, 1), done.stderr  # 1: a package failed, not a crash
            assert "Traceback" not in done.stderr, done.stderr
            problems = repo_problems(output)
            if self.client:
                problems += dnf_problems(output, self.tmp_path / "dnf-root")
            self.failures += [f"{what}, then build {' '.join(args)}: {p}" for p in problems]
        left = wait_for_no_survivors(mark)
        self.failures += [f"{what}: process {pid} survived" for pid in left]
        tmp_scratch = list((sp / ".superbuild" / "work").glob("*"))
        # superbuild-spec-*, superbuild-NAME-* of the killed coordinator (owner in the name)
        tmp_scratch += Path(tempfile.gettempdir()).glob(f"superbuild-*-p{child.pid}t*")
        self.failures += [f"{what}: scratch {p} left" for p in tmp_scratch]
        shutil.rmtree(sp, ignore_errors=True)

    def report(self) -> str:
        return (
            f"{self.count} builds, {len(self.after_kill)} inconsistencies right after a kill, "
            f"{len(self.failures)} after the follow-up builds"
        )


def _sleep(delay: float, child: subprocess.Popen[bytes], output: Path) -> None:
    time.sleep(delay)


def _run_trials(trials: Trials, random_trials: int, chosen: bool, seed: int) -> None:
    duration = trials.duration()
    rng = random.Random(seed)
    for i in range(random_trials):
        delay = rng.uniform(0, duration)
        trials.trial(f"random kill {i} at {delay:.2f}s", functools.partial(_sleep, delay))
    if chosen:
        trials.trial(
            "kill during the copy into the output",
            lambda c, o: wait_until(c, copy_running(o)),
        )
        trials.trial(
            "kill during createrepo_c",
            lambda c, o: wait_until(c, createrepo_running_of(c)),
        )
    print(trials.report(), *trials.after_kill, sep="\n  ")
    assert not trials.failures, "\n".join(trials.failures)


def createrepo_running_of(child: subprocess.Popen[bytes]) -> Callable[[], bool]:
    # The mark start_build gave the child (its args; /proc/PID/environ reads empty while
    # the child is still between fork and exec).
    return createrepo_running(MARKS[child.pid])


def make_rpm_product(tmp_path: Path) -> Path:
    """The superproject of RPM_PRODUCT (rpm pipelines, no settings) under ``tmp_path``."""
    folder = tmp_path / "manifests"
    folder.mkdir()
    for name, requires in RPM_PRODUCT.items():
        req = f"requires: [{', '.join(requires)}]\n" if requires else ""
        (folder / f"{name}.yaml").write_text(f"path: repos/{name}\n{req}")
    return make_sample_superproject(tmp_path / "sp", folder, settings=None).path


@pytest.fixture
def rpm_sample(tmp_path: Path) -> Path:
    return make_rpm_product(tmp_path)


def test_command_builds_killed_at_random_leave_no_debris(tmp_path: Path) -> None:
    trials = Trials(tmp_path, command_product(tmp_path, COMMAND_PRODUCT))
    _run_trials(trials, 3, chosen=False, seed=11)


@pytest.mark.slow
def test_many_kills(tmp_path: Path) -> None:
    count = int(os.environ.get("SUPERBUILD_CRASH_TRIALS", "30"))
    trials = Trials(tmp_path, command_product(tmp_path, COMMAND_PRODUCT))
    _run_trials(trials, count, chosen=False, seed=2026)


@pytest.mark.rpm
def test_rpm_builds_killed_during_createrepo_and_the_copy_recover(
    tmp_path: Path, rpm_sample: Path
) -> None:
    trials = Trials(tmp_path, rpm_sample, client=True)
    _run_trials(trials, 0, chosen=True, seed=5)


def _dead_owner_tag() -> str:
    """The owner tag of a process that has exited (as a SIGKILLed build leaves it)."""
    child = subprocess.Popen(["sleep", "30"], stdin=subprocess.DEVNULL)
    start = Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[19]
    child.kill()
    child.wait()
    return f"p{child.pid}t{start}"


def test_the_next_build_removes_temp_folders_of_a_killed_run(tmp_path: Path) -> None:
    sp = command_product(tmp_path, {"a": []})
    tmp = Path(tempfile.gettempdir())
    dead = _dead_owner_tag()
    left = [
        Path(tempfile.mkdtemp(prefix=f"superbuild-spec-{dead}-", dir=tmp)),
        Path(tempfile.mkdtemp(prefix=f"superbuild-my-pkg-{dead}-", dir=tmp)),
    ]
    (left[1] / "big.tar").write_bytes(b"x" * 1000)
    mine = Path(tempfile.mkdtemp(prefix=f"superbuild-spec-{proc.owner_tag()}-"))
    try:
        done = build(sp, uuid.uuid4().hex, "--all", timeout=120)
        assert done.returncode == 0, done.stderr
        assert [p for p in left if p.exists()] == []
        assert mine.is_dir()  # its owner (this test) still runs
    finally:
        for path in [*left, mine]:
            shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.rpm
def test_many_rpm_kills(tmp_path: Path, rpm_sample: Path) -> None:
    count = int(os.environ.get("SUPERBUILD_CRASH_TRIALS", "30"))
    trials = Trials(tmp_path, rpm_sample, client=True)
    _run_trials(trials, count, chosen=True, seed=2027)
