"""The build state end to end: concurrent builds, SIGKILL, --retry-failed, --since-last-success.

Real superprojects and real ``rpmbuild`` (as in ``test_build.py``); a build is held in
``%build`` by a marker file, so nothing depends on timing: the test waits for the build
to report that it is there, and releases it by removing the marker.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from superbuild import state as st
from superbuild.testing.sample import SampleSuperproject, make_sample_superproject, run_git
from tests.helpers import cli, descendants

pytestmark = pytest.mark.rpm

PRODUCT = {"base": [], "client": ["base"], "service": ["client"], "tool": []}
#: Generous: only reached when something is broken.
PATIENCE_S = 120.0


@pytest.fixture(scope="session")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Manifests and bare remotes, made once (each superproject pushes to its own branch)."""
    root = tmp_path_factory.mktemp("state-remotes")
    manifests = root / "manifests"
    manifests.mkdir()
    for name, requires in PRODUCT.items():
        req = f"requires: [{', '.join(requires)}]\n" if requires else ""
        (manifests / f"{name}.yaml").write_text(f"path: repos/{name}\n{req}")
    return manifests, root / "remotes"


@pytest.fixture
def sample(tmp_path: Path, shared: tuple[Path, Path]) -> SampleSuperproject:
    manifests, remotes = shared
    return make_sample_superproject(tmp_path / "sp", manifests, bare_remotes=remotes, settings=None)


def edit_spec(sample: SampleSuperproject, name: str, build_section: str) -> str:
    """Commit ``build_section`` as the spec's %build (recorded); the new submodule commit."""
    tree = sample.work_tree(name)
    spec = tree / f"{name}.spec"
    head, _, rest = spec.read_text().partition("%build\n")
    rest = rest.split("\n%install", 1)[1]
    spec.write_text(f"{head}%build\n{build_section}\n\n%install{rest}")
    run_git(tree, "commit", "-q", "-am", f"{name}: %build", env=sample.env)
    run_git(tree, "push", "-q", "origin", f"HEAD:refs/heads/{sample.branch}", env=sample.env)
    sample.git("add", "--", sample.packages[name].path)
    sample.git("commit", "-q", "-m", f"record {name}")
    return run_git(tree, "rev-parse", "HEAD", env=sample.env)


def hold(sample: SampleSuperproject, name: str, root: Path) -> tuple[Path, Path]:
    """Make ``name``'s %build say it started, then wait while a marker file exists."""
    marker, started = root / f"hold-{name}", root / f"started-{name}"
    marker.touch()
    edit_spec(sample, name, f"touch '{started}'\nwhile [ -e '{marker}' ]; do sleep 0.05; done")
    return marker, started


def superbuild(sample: SampleSuperproject, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "superbuild", *args],
        cwd=sample.path,
        env=sample.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )


def start_build(sample: SampleSuperproject, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "superbuild", "build", "--builder", "rpmbuild", *args],
        cwd=sample.path,
        env=sample.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not path.exists():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the build ended (exit {proc.returncode}) before {path.name}: {err}")
        if time.monotonic() > deadline:
            pytest.fail(f"{path.name} never appeared")
        time.sleep(0.05)


@contextlib.contextmanager
def reaped(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def rows(sample: SampleSuperproject, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read the state database as any other program would."""
    db = sample.path / ".superbuild" / "state.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return [tuple(r) for r in conn.execute(sql, params)]


def report_of(path: Path) -> dict[str, str]:
    report = json.loads(path.read_text())
    return {p["package"]: p["status"] for p in report["packages"]}


# --------------------------------------------------------------------------- tests


def test_second_build_is_refused_while_one_runs(sample: SampleSuperproject, tmp_path: Path) -> None:
    marker, started = hold(sample, "tool", tmp_path)
    report = tmp_path / "first.json"
    with reaped(start_build(sample, "--all", "-j", "2", "--report", str(report))) as first:
        wait_for(started, first)
        second = superbuild(sample, "build", "--all", "--builder", "rpmbuild")
        assert second.returncode == 2
        [line] = second.stderr.strip().splitlines()
        assert line.startswith("superbuild: error: another build is running")
        assert f"pid {first.pid}" in line
        marker.unlink()
        _, err = first.communicate(timeout=PATIENCE_S)
    assert first.returncode == 0, err
    assert set(report_of(report).values()) == {"succeeded"}
    [(run_pid, result)] = rows(sample, "SELECT pid, result FROM runs")
    assert (run_pid, result) == (first.pid, "success")  # the refused build recorded nothing


def test_sigkill_mid_build_then_retry_failed(sample: SampleSuperproject, tmp_path: Path) -> None:
    marker, started = hold(sample, "client", tmp_path)
    # -j 1: base first (longest path), then client, which holds; tool and service wait.
    with reaped(start_build(sample, "--all", "-j", "1")) as killed:
        wait_for(started, killed)
        orphans = descendants(killed.pid)
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=PATIENCE_S)
    for pid in orphans:  # the kernel does not stop a killed process's children
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    marker.unlink()

    # Seen before any other build: the killed run's packages read as cancelled.
    code = subprocess.run(
        [sys.executable, "-m", "superbuild", "status", "--json"],
        cwd=sample.path,
        env=sample.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert code.returncode == 0, code.stderr
    last = {r["package"]: r["last_build"] for r in json.loads(code.stdout)}
    assert last["base"]["status"] == "succeeded" and last["client"]["status"] == "cancelled"
    assert last["tool"] is None and last["service"] is None

    report = tmp_path / "retry.json"
    retry = superbuild(
        sample, "build", "--retry-failed", "--builder", "rpmbuild", "--report", str(report)
    )
    assert retry.returncode == 0, retry.stderr
    assert "was killed; recorded as interrupted" in retry.stderr
    assert report_of(report) == dict.fromkeys(["client", "tool", "service"], "succeeded")
    [(killed_run, result)] = rows(sample, "SELECT id, result FROM runs WHERE pid = ?", killed.pid)
    assert result == "interrupted"
    assert rows(
        sample,
        "SELECT package, status, reason FROM builds WHERE run_id = ? ORDER BY package",
        killed_run,
    ) == [
        ("base", "succeeded", ""),
        ("client", "cancelled", st.KILLED_RUNNING),
        ("service", "cancelled", st.KILLED_PENDING),
        ("tool", "cancelled", st.KILLED_PENDING),
    ]
    again = superbuild(sample, "build", "--retry-failed", "--builder", "rpmbuild")
    assert again.returncode == 0 and "nothing to retry" in again.stderr


def test_since_last_success_after_a_half_failed_run(
    sample: SampleSuperproject, tmp_path: Path
) -> None:
    original = (sample.work_tree("client") / "client.spec").read_text()
    edit_spec(sample, "client", "exit 3")
    failed = superbuild(sample, "build", "--all", "-j", "2", "--builder", "rpmbuild")
    assert failed.returncode == 1
    assert rebuilds(sample) == {
        "client": "last build failed",
        "service": "last build skipped (dependency client failed)",
    }

    tree = sample.work_tree("client")
    (tree / "client.spec").write_text(original)
    run_git(tree, "commit", "-q", "-am", "client: fixed", env=sample.env)
    sample.git("add", "--", "repos/client")
    sample.git("commit", "-q", "-m", "record the fix")
    dry = superbuild(sample, "build", "--since-last-success", "--dry-run")
    assert dry.returncode == 0 and "wave 1: client" in dry.stdout and "base" not in dry.stdout

    report = tmp_path / "r.json"
    result = superbuild(
        sample, "build", "--since-last-success", "--builder", "rpmbuild", "--report", str(report)
    )
    assert result.returncode == 0, result.stderr
    assert report_of(report) == {"client": "succeeded", "service": "succeeded"}
    assert rebuilds(sample) == {}


def rebuilds(sample: SampleSuperproject) -> dict[str, str]:
    """What ``changed --since-last-success`` says needs a rebuild, and why."""
    found = superbuild(sample, "changed", "--since-last-success", "--format", "json")
    assert found.returncode == 0, found.stderr
    reasons: dict[str, str] = json.loads(found.stdout)["since_last_success"]
    return reasons


# --------------------------------------------------------------------------- in process


def test_durations_become_scheduler_weights(
    sample: SampleSuperproject,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from superbuild.build import prepare as real_prepare  # what build_cmd calls
    from superbuild.commands import build as build_cmd

    with st.BuildState.open(sample.path) as state:
        for i, durations in enumerate([{"base": 10.0, "tool": 5.0}, {"base": 30.0}]):
            inputs = {n: st.BuildInputs("c", "d", {}, f"k{i}") for n in durations}
            rec = st.RunRecorder.for_packages(
                state,
                f"r{i}",
                head=None,
                base=None,
                inputs=inputs,
                packages=list(inputs),
                output=sample.path,
            )
            rec.start()
            for name, seconds in durations.items():
                state.update_build(f"r{i}", name, status="succeeded", duration_s=seconds)
            rec.finish("success")
    seen: list[dict[str, float]] = []

    def spy(*args: Any, weights: dict[str, float], **kw: Any) -> Any:
        seen.append(dict(weights))
        return real_prepare(*args, weights=weights, **kw)

    monkeypatch.setattr(build_cmd, "prepare", spy)
    code, _, err = cli(capsys, "-C", str(sample.path), "build", "--all", "--builder", "rpmbuild")
    assert code == 0, err
    # base: median(10, 30); tool: 5; never built: the median of those.
    assert seen == [{"base": 20.0, "tool": 5.0, "client": 12.5, "service": 12.5}]


@pytest.fixture(scope="module")
def untouched(
    tmp_path_factory: pytest.TempPathFactory, shared: tuple[Path, Path]
) -> SampleSuperproject:
    """One superproject for the tests that build nothing."""
    manifests, remotes = shared
    root = tmp_path_factory.mktemp("untouched")
    return make_sample_superproject(root / "sp", manifests, bare_remotes=remotes, settings=None)


@pytest.mark.parametrize(
    "extra", [["--all"], ["--since-last-success"], ["--base", "HEAD"], ["--packages-skip", "x"]]
)
def test_retry_failed_takes_no_selection(
    untouched: SampleSuperproject, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    code, _, err = cli(capsys, "-C", str(untouched.path), "build", "--retry-failed", *extra)
    assert code == 2 and "--retry-failed" in err and extra[0] in err


def test_retry_failed_without_history(
    untouched: SampleSuperproject, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "-C", str(untouched.path), "build", "--retry-failed", "--dry-run")
    assert code == 0 and "nothing to retry" in err
    code, _, err = cli(capsys, "-C", str(untouched.path), "build", "--retry-failed")
    assert code == 0 and "nothing to retry" in err
