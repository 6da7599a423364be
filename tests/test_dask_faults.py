"""A Dask build farm that cannot run the jobs is an error, not a silence (issue 12).

Real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1 with explicit ports,
and real ``superbuild build`` processes: configuration errors are one line and exit 2
before anything is recorded; Ctrl-C ends a build in every state of the cluster with exit
130 and the report written; a scheduler or all workers lost fail the jobs, and nothing
of the build is left running on the "worker hosts".
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from superbuild.errors import UsageError
from superbuild.executors.dask import check_address
from tests.conftest import Repo
from tests.helpers import alive
from tests.test_dask import command_product, describe, sleeping_builds, wait_for

pytestmark = pytest.mark.dask

distributed: Any = importlib.import_module("distributed")

PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _clean_env(env: dict[str, str] | None) -> dict[str, str]:
    return {**os.environ, **(env or {})}


@contextlib.contextmanager
def dask_scheduler() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A real ``dask scheduler`` on 127.0.0.1 (explicit port, dashboard on 127.0.0.1)."""
    port = free_port()
    proc = subprocess.Popen(
        [PYTHON, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", str(port), "--dashboard-address", f"127.0.0.1:{free_port()}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    address = f"tcp://127.0.0.1:{port}"

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_for(listening, 60, "the scheduler to listen")
        yield address, proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def dask_worker(
    address: str,
    *extra: str,
    python: str = PYTHON,
    env: dict[str, str] | None = None,
    wait: bool = True,
) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``dask worker`` process listening on 127.0.0.1 (an explicit port)."""
    proc = subprocess.Popen(
        [python, "-m", "distributed.cli.dask_worker", address, "--host", "127.0.0.1",
         "--worker-port", str(free_port()), "--dashboard-address", f"127.0.0.1:{free_port()}",
         "--nthreads", "1", *extra],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=env if env is not None else _clean_env(None), start_new_session=True, cwd="/",
    )  # fmt: skip
    try:
        if wait:
            wait_for(lambda: workers_of(address) >= 1, 60, "the worker to register")
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def workers_of(address: str) -> int:
    with distributed.Client(address, timeout=10, set_as_default=False) as c:
        return len(c.scheduler_info(n_workers=-1)["workers"])


class Build:
    """A ``superbuild build`` process whose stderr is read line by line as it comes."""

    def __init__(self, cwd: Path, args: Sequence[str], env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "superbuild", "build", "--all", *args],
            cwd=cwd,
            env=_clean_env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._queue.put(line)
        self._queue.put(None)

    def wait_line(self, start: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"build ended before {start!r}: {''.join(self.lines)}")
            self.lines.append(line)
            if line.startswith(start):
                return line
        raise AssertionError(f"no line {start!r} in: {''.join(self.lines)}")

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        """Exit code and the whole stderr (the timeout only catches a hang)."""
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(10)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return code, "".join(self.lines)


def interrupt(build: Build) -> tuple[int, str, float]:
    """SIGINT to the build process: its exit code, stderr, and seconds to exit."""
    start = time.monotonic()
    build.proc.send_signal(signal.SIGINT)
    code, err = build.finish()
    return code, err, time.monotonic() - start


def no_run_left(repo: Path) -> None:
    logs = repo / ".superbuild" / "logs"
    assert not logs.exists() or not [p for p in logs.iterdir()], sorted(logs.iterdir())


def gone(pids: Sequence[int], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, [describe(p) for p in left]


# --------------------------------------------------------------------------- configuration


def test_check_address_refuses_what_cannot_work(tmp_path: Path) -> None:
    plain = distributed.security.Security()
    with pytest.raises(UsageError, match="tls:// address but Dask has no TLS settings"):
        check_address("tls://127.0.0.1:8786", plain)
    ca_only = distributed.security.Security(tls_ca_file=os.fspath(tmp_path / "ca.pem"))
    with pytest.raises(UsageError, match="a CA file alone is not enough"):
        check_address("tls://127.0.0.1:8786", ca_only)
    strict = distributed.security.Security(require_encryption=True)
    with pytest.raises(
        UsageError, match=r"requires encryption, and tcp://127\.0\.0\.1:8786 is not"
    ):
        check_address("tcp://127.0.0.1:8786", strict)
    for bad in ("tcp://127.0.0.1", "nope://x:1", "tcp://:::", "ucx://127.0.0.1:8786"):
        with pytest.raises(UsageError, match="bad Dask scheduler address"):
            check_address(bad, plain)
    with pytest.raises(UsageError, match="pass --insecure"):
        check_address("tcp://192.0.2.7:8786", plain)
    assert check_address("tcp://192.0.2.7:8786", plain, insecure=True) is plain
    assert check_address("tcp://127.0.0.1:8786", plain) is plain
    assert check_address("tcp://localhost:8786", plain) is plain


@pytest.mark.parametrize(
    ("address", "env", "expected"),
    [
        ("tls://127.0.0.1:{port}", {}, "no TLS settings for clients"),
        (
            "tls://127.0.0.1:{port}",
            {"DASK_DISTRIBUTED__COMM__TLS__CA_FILE": "/etc/ssl/certs/ca-certificates.crt"},
            "a CA file alone is not enough",
        ),
        (
            "tcp://127.0.0.1:{port}",
            {"DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True"},
            "requires encryption",
        ),
        ("127.0.0.1", {}, "bad Dask scheduler address"),
        ("tcp://192.0.2.7:{port}", {}, "pass --insecure"),
    ],
    ids=["tls-without-settings", "ca-only", "encryption-with-tcp", "no-port", "not-loopback"],
)
def test_configuration_errors_are_one_line_exit_2_and_record_nothing(
    repo: Repo, address: str, env: dict[str, str], expected: str
) -> None:
    path = command_product(repo, {"a": ("true", ())})
    where = address.format(port=free_port())
    build = Build(path, ["--executor", "dask", "--scheduler-address", where], env)
    code, err = build.finish()
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("superbuild: error:")]
    assert len(errors) == 1 and expected in errors[0], err
    assert "Traceback" not in err and "this is a bug" not in err, err
    no_run_left(path)


@pytest.mark.slow  # the connect timeout (10 s)
def test_a_dead_address_records_no_run(repo: Repo) -> None:
    path = command_product(repo, {"a": ("true", ())})
    (path / ".superbuild" / "logs").mkdir(parents=True, exist_ok=True)
    where = f"tcp://127.0.0.1:{free_port()}"
    build = Build(path, ["--executor", "dask", "--scheduler-address", where])
    code, err = build.finish()
    assert code == 2, err
    assert f"cannot connect to the Dask scheduler at {where}" in err
    assert f"executor dask, scheduler {where}, -j {os.cpu_count()}" in err.splitlines()
    no_run_left(path)
    import sqlite3

    db = sqlite3.connect(path / ".superbuild" / "state.db")
    try:
        assert db.execute("SELECT count(*) FROM runs").fetchone() == (0,)
    finally:
        db.close()


# --------------------------------------------------------------------------- the cluster


def test_a_worker_without_superbuild_is_named(tmp_path: Path) -> None:
    """A second venv: dask importable (the main venv's site-packages through a .pth,
    whose own .pth files -- superbuild's editable install -- are not read), no superbuild."""
    venv = tmp_path / "venv-no-superbuild"
    subprocess.run([PYTHON, "-m", "venv", "--without-pip", os.fspath(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(distributed.__file__).parents[1]
    (next(venv.glob("lib/python*/site-packages")) / "main.pth").write_text(f"{site}\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    check = subprocess.run(
        [py, "-c", "import distributed\ntry:\n import superbuild\nexcept ImportError: print('ok')"],
        env=env, cwd="/", capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert check.stdout.strip() == "ok"
    with dask_scheduler() as (address, _), dask_worker(address, python=os.fspath(py), env=env):
        from superbuild.executors import make_executor

        with pytest.raises(UsageError) as info:
            make_executor("dask", parallel=1, address=address, worker_wait=20)
    message = str(info.value)
    assert "Dask workers that cannot run this build (tcp://127.0.0.1:" in message
    assert "cannot import superbuild (No module named 'superbuild')" in message


def test_ctrl_c_while_waiting_for_workers(repo: Repo, tmp_path: Path) -> None:
    path = command_product(repo, {"a": ("true", ()), "b": ("true", ("a",))})
    report = tmp_path / "report.json"
    with dask_scheduler() as (address, _):
        build = Build(
            path, ["--executor", "dask", "--scheduler-address", address, "--report", str(report)]
        )
        assert (
            build.wait_line("executor ")
            == f"executor dask, scheduler {address}, -j {os.cpu_count()}\n"
        )
        build.wait_line("building ")
        time.sleep(1)  # in the cluster check, waiting for a worker
        code, err, _ = interrupt(build)
    assert code == 130, err
    assert "Traceback" not in err, err
    data = json.loads(report.read_text())
    assert data["result"] == "interrupted"
    assert {p["package"]: p["status"] for p in data["packages"]} == {
        "a": "cancelled",
        "b": "cancelled",
    }
    no_run_left(path)  # it never started a job


def test_ctrl_c_with_a_stopped_worker_running_a_job(repo: Repo, tmp_path: Path) -> None:
    """The worker running the job is SIGSTOPped (it answers nothing): Ctrl-C still ends
    the build, with the summary and the report; the job's processes are gone after."""
    path = command_product(repo, {"slow": ("sleep 60", ())})
    report = tmp_path / "report.json"
    with dask_scheduler() as (address, _), dask_worker(address, "--no-nanny") as worker_proc:
        build = Build(
            path,
            ["--executor", "dask", "--scheduler-address", address, "--report", str(report)],
        )
        sleeper = wait_for(lambda: sleeping_builds("sleep 60"), 60, "the build sleeping")[0]
        os.kill(worker_proc.pid, signal.SIGSTOP)
        try:
            code, err, _ = interrupt(build)
        finally:
            os.kill(worker_proc.pid, signal.SIGCONT)
        assert code == 130, err
        assert "Traceback" not in err, err
        assert "slow" in err and "cancelled" in err  # the summary table
        data = json.loads(report.read_text())
        assert data["result"] == "interrupted"
        assert [(p["package"], p["status"]) for p in data["packages"]] == [("slow", "cancelled")]
        gone([sleeper])  # the continued worker's job stops itself (its task was cancelled)


def test_killed_scheduler_fails_the_build_and_leaves_nothing_running(
    repo: Repo, tmp_path: Path
) -> None:
    path = command_product(repo, {"a": ("sleep 60", ()), "b": ("sleep 60", ())})
    report = tmp_path / "report.json"
    with dask_scheduler() as (address, scheduler), dask_worker(address), dask_worker(address):
        build = Build(
            path,
            ["-j", "2", "--executor", "dask", "--scheduler-address", address,
             "--report", str(report)],
        )  # fmt: skip
        sleepers = wait_for(
            lambda: (found := sleeping_builds("sleep 60")) and len(found) == 2 and found,
            60,
            "both builds sleeping",
        )
        os.killpg(scheduler.pid, signal.SIGKILL)
        code, err = build.finish()
        assert code == 1, err
        data = json.loads(report.read_text())
        reasons = {p["package"]: (p["status"], p["reason"]) for p in data["packages"]}
        for name in ("a", "b"):
            assert reasons[name][0] == "failed"
            assert "lost the connection to the Dask scheduler" in reasons[name][1], reasons
        gone(sleepers)  # on the worker side, the jobs stopped themselves


@pytest.mark.slow
def test_ctrl_c_after_the_scheduler_is_gone(repo: Repo, tmp_path: Path) -> None:
    path = command_product(repo, {"a": ("sleep 60", ()), "b": ("sleep 1", ("a",))})
    report = tmp_path / "report.json"
    with dask_scheduler() as (address, scheduler), dask_worker(address, "--no-nanny"):
        build = Build(
            path, ["--executor", "dask", "--scheduler-address", address, "--report", str(report)]
        )
        sleeper = wait_for(lambda: sleeping_builds("sleep 60"), 60, "the build sleeping")[0]
        os.kill(scheduler.pid, signal.SIGSTOP)  # hung, not closed: nothing tells the client
        try:
            code, err, _ = interrupt(build)
        finally:
            os.kill(scheduler.pid, signal.SIGCONT)
        assert code == 130, err
        assert "Traceback" not in err, err
        assert json.loads(report.read_text())["result"] == "interrupted"
        gone([sleeper])


def test_a_job_whose_workers_all_left_fails_with_that_reason(repo: Repo, tmp_path: Path) -> None:
    path = command_product(repo, {"slow": ("sleep 60", ()), "after": ("true", ("slow",))})
    report = tmp_path / "report.json"
    with dask_scheduler() as (address, _):
        with dask_worker(address, "--no-nanny") as worker_proc:
            build = Build(
                path,
                ["--executor", "dask", "--scheduler-address", address, "--report", str(report)],
                {"SUPERBUILD_DASK_NO_WORKER_TIMEOUT": "2"},
            )
            sleeper = wait_for(lambda: sleeping_builds("sleep 60"), 60, "the build sleeping")[0]
            os.kill(worker_proc.pid, signal.SIGKILL)
        code, err = build.finish()
    assert code == 1, err
    data = json.loads(report.read_text())
    found = {p["package"]: (p["status"], p["reason"]) for p in data["packages"]}
    assert found["slow"][0] == "failed"
    assert (
        f"slow: every worker of the Dask scheduler {address} left (waited 2s)" in found["slow"][1]
    )
    assert found["after"] == ("skipped", "dependency slow failed")
    gone([sleeper])  # the killed worker's reaper stopped its job's processes


# --------------------------------------------------------------------------- trust

#: A worker preload that tampers with every package build's result, recomputing the
#: checksums that travel with the bytes (what a hostile worker would do).
TAMPER = """
import dataclasses
import superbuild.worker as worker
from superbuild.pipelines.api import JobOutputs
from superbuild.pipelines.transport import Blob

honest = getattr(worker, "honest_run", worker.run)  # Dask may run a preload twice
worker.honest_run = honest


def run(fn, args, key):
    out = honest(fn, args, key)
    if not isinstance(out, JobOutputs) or not out.packages:
        return out
    binary = next(b for b in out.packages if not b.name.endswith(".src.rpm"))
    source = next(b for b in out.packages if b.name.endswith(".src.rpm"))
    data = {MODE!r}
    fake = Blob.of(binary.name, source.data if data == "srpm" else data.encode())
    packages = tuple(fake if b is binary else b for b in out.packages)
    return dataclasses.replace(out, packages=packages)


worker.run = run
"""


@pytest.mark.rpm
@pytest.mark.parametrize(
    ("mode", "expected"),
    [("srpm", "holds base-"), ("not an rpm at all", "is not a readable RPM")],
    ids=["other-rpm-bytes", "garbage"],
)
def test_a_result_tampered_with_on_the_worker_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, expected: str
) -> None:

    from superbuild.testing.sample import make_sample_superproject
    from tests.test_build import write_manifests
    from tests.test_dask import build_with, output_files, preloaded_cluster, statuses

    sample = make_sample_superproject(
        tmp_path / "sp", write_manifests(tmp_path / "manifests", {"base": []}), settings=None
    )
    monkeypatch.chdir(sample.path)
    script = tmp_path / "tamper.py"
    script.write_text(TAMPER.replace("{MODE!r}", repr(mode)))
    with preloaded_cluster(script) as hostile:
        output = tmp_path / "out"
        result = build_with(
            sample.path,
            output,
            "dask",
            executor_options={"address": hostile.scheduler_address},
        )
    status, reason = statuses(result)["base"]
    assert status == "failed"
    assert reason.startswith("base: collect stage failed: "), reason
    assert expected in reason, reason
    assert "nothing was written to the output repository" in reason
    assert [f for f in output_files(output) if f.endswith(".rpm")] == []
    collect_log = result.run.contexts["base"].log_dir / "collect.log"
    assert expected in collect_log.read_text()


# --------------------------------------------------------------------------- progress


def test_progress_tells_queued_from_started_and_durations_exclude_the_queue(
    repo: Repo, tmp_path: Path
) -> None:
    """One worker, two jobs in flight: the second waits on the scheduler ("queued")
    until the first is done; its duration counts from when the worker began it."""
    path = command_product(repo, {"first": ("sleep 2", ()), "second": ("true", ())})
    report = tmp_path / "report.json"
    with dask_scheduler() as (address, _), dask_worker(address):
        build = Build(
            path,
            ["-j", "2", "--executor", "dask", "--scheduler-address", address,
             "--report", str(report)],
            {"CI": "true"},
        )  # fmt: skip
        code, err = build.finish()
    assert code == 0, err
    events = [line.split()[2:4] for line in err.splitlines() if line[:2].isdigit()]
    for name in ("first", "second"):
        assert events.index(["queued", name]) < events.index(["started", name]), err
    data = {p["package"]: p for p in json.loads(report.read_text())["packages"]}
    # ``second`` waited (queued) for ``first``'s 2 s of sleep, then ran ``true``.
    assert data["second"]["queued_s"] > data["second"]["duration_s"], data
    assert data["first"]["duration_s"] > data["first"]["queued_s"], data


# --------------------------------------------------------------------------- leftovers


def test_the_next_job_on_a_host_removes_a_killed_workers_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    from superbuild import proc, worker

    monkeypatch.setattr(tempfile, "tempdir", os.fspath(tmp_path))
    child = subprocess.Popen(["true"])
    child.wait()  # a pid whose process is gone
    dead = tmp_path / f"superbuild-nova-p{child.pid}t123-abcd"
    (dead / ".superbuild-logs").mkdir(parents=True)
    live = tmp_path / f"superbuild-nova-{proc.owner_tag()}-efgh"  # this process: alive
    live.mkdir()
    other = tmp_path / "superbuild-nova-not-ours"
    other.mkdir()

    def work(value: int, *, session: Any) -> int:
        return value + 1

    assert worker.run(work, (1,), "token:key") == 2
    assert not dead.exists()
    assert live.is_dir() and other.is_dir()


def test_insecure_and_the_no_worker_timeout_resolve_as_documented() -> None:
    from superbuild.config import BuildFlags, resolve
    from superbuild.package import Settings

    settings = Settings()
    flags = BuildFlags(executor="dask", scheduler_address="tcp://192.0.2.7:8786", insecure=True)
    config = resolve(flags, settings, {"SUPERBUILD_DASK_NO_WORKER_TIMEOUT": "2.5"})
    assert config.executor_options == {
        "address": "tcp://192.0.2.7:8786",
        "insecure": True,
        "no_worker_timeout": 2.5,
    }
    with pytest.raises(UsageError, match="--insecure needs --executor dask"):
        resolve(BuildFlags(insecure=True), settings, {})
    for bad in ("soon", "0", "-1"):
        with pytest.raises(UsageError, match="SUPERBUILD_DASK_NO_WORKER_TIMEOUT"):
            resolve(
                BuildFlags(executor="dask"), settings, {"SUPERBUILD_DASK_NO_WORKER_TIMEOUT": bad}
            )


def test_ctrl_c_after_the_worker_died_mid_build(repo: Repo, tmp_path: Path) -> None:
    """The only worker is SIGKILLed while building (no nanny to restart it): the job
    waits for a worker; Ctrl-C then ends the build with exit 130 and the report."""
    path = command_product(repo, {"slow": ("sleep 60", ()), "after": ("true", ("slow",))})
    report = tmp_path / "report.json"
    with dask_scheduler() as (address, _):
        with dask_worker(address, "--no-nanny") as worker_proc:
            build = Build(
                path,
                ["--executor", "dask", "--scheduler-address", address, "--report", str(report)],
            )
            sleeper = wait_for(lambda: sleeping_builds("sleep 60"), 60, "the build sleeping")[0]
            os.kill(worker_proc.pid, signal.SIGKILL)
        gone([sleeper])  # the dead worker's reaper stopped its build
        code, err, _ = interrupt(build)
    assert code == 130, err
    assert "Traceback" not in err, err
    data = json.loads(report.read_text())
    assert data["result"] == "interrupted"
    assert {p["package"]: p["status"] for p in data["packages"]} == {
        "slow": "cancelled",
        "after": "cancelled",
    }
