"""The Dask executor: same results as the local one, worker deaths, Ctrl-C, checksums.

One LocalCluster (2 worker processes, ``mock=1`` each) serves the module; the executor
connects to it by address, as ``--scheduler-address`` does.  Its workers get a fake
``mock`` on PATH (it runs the real ``rpmbuild --rebuild``) and a HOME of their own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from superbuild import worker
from superbuild.build import BuildOptions, BuildResult, execute, prepare
from superbuild.changes import load_head, resolve_range
from superbuild.executors import make_executor
from superbuild.jobs import Job, JobResult, OnError, call
from superbuild.pipelines.api import PipelineFailed
from superbuild.pipelines.task import build_remote, collect_outputs, prepare_inputs
from superbuild.planning import PlanRequest, select
from superbuild.scheduler import run_jobs
from superbuild.testing.sample import make_sample_superproject
from tests.conftest import Repo
from tests.helpers import alive, descendants
from tests.rpmtools import make_context, make_package, rpm_payload
from tests.rpmtools import rpm_query as rpmq

distributed: Any = None
with contextlib.suppress(ImportError):  # the optional extra may be missing
    distributed = importlib.import_module("distributed")

pytestmark = pytest.mark.dask

#: A mock that records how it was called and which repositories it was given, then
#: builds the SRPM (``--buildsrpm``) or rebuilds it with the real rpmbuild (BuildRequires
#: unchecked).
FAKE_MOCK = r"""#!/bin/sh
set -e
args="$*"
srpm=; result=; repos=; spec=; sources=
while [ $# -gt 0 ]; do
  case "$1" in
    --rebuild) srpm=$2; shift;;
    --spec) spec=$2; shift;;
    --sources) sources=$2; shift;;
    --resultdir) result=$2; shift;;
    --addrepo) repos="$repos $2"; shift;;
  esac
  shift
done
{
  echo "fake mock $args"
  for r in $repos; do
    echo "repo $r"; ls "${r#file://}"
  done
} > "$result/build.log"
top=$(mktemp -d)
if [ -n "$spec" ]; then  # --buildsrpm
  rpmbuild -bs --define "_topdir $top" --define "_sourcedir $sources" "$spec" \
    >> "$result/build.log" 2>&1
  cp "$top"/SRPMS/*.src.rpm "$result/"
  rm -rf "$top"
  exit 0
fi
rpmbuild --rebuild --nodeps --define "_topdir $top" "$srpm" >> "$result/build.log" 2>&1
cp "$top"/RPMS/*/*.rpm "$srpm" "$result/"
rm -rf "$top"
"""


# --------------------------------------------------------------------------- fixtures


def preloaded_cluster(script: Path) -> Any:
    """A LocalCluster of one single-threaded worker process that runs ``script`` as its
    preload (a hostile or broken worker environment)."""
    assert distributed is not None
    return distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        silence_logs=logging.CRITICAL,
        preload=[os.fspath(script)],
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A LocalCluster of 2 processes whose workers have a fake mock and their own HOME."""
    assert distributed is not None
    fake = tmp_path_factory.mktemp("fake-bin")
    (fake / "mock").write_text(FAKE_MOCK)
    (fake / "mock").chmod(0o755)
    home = tmp_path_factory.mktemp("worker-home")
    saved = {k: os.environ.get(k) for k in ("PATH", "HOME")}
    os.environ["PATH"] = f"{fake}{os.pathsep}{os.environ['PATH']}"
    os.environ["HOME"] = os.fspath(home)
    try:
        with distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.CRITICAL,
            resources={"mock": 1},
            preload=["superbuild.worker"],
        ) as local:
            yield local
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def client(cluster: Any) -> Iterator[Any]:
    """A client of the module's cluster, for the tests' own questions."""
    assert distributed is not None
    with distributed.Client(cluster, set_as_default=False) as c:
        yield c


def plan_all(repo: Path) -> Any:
    product, links = load_head(repo, resolve_range(repo, None, "HEAD"))
    return select(product, PlanRequest(mode="all"), links)


def build_with(
    repo: Path,
    output: Path,
    executor: str,
    *,
    builder: str = "rpmbuild",
    executor_options: Mapping[str, Any] | None = None,
    jobs: int = 2,
) -> BuildResult:
    options = BuildOptions(
        jobs=jobs,
        builder=builder,
        output=output,
        executor=executor,
        executor_options=dict(executor_options or {}),
    )
    return execute(prepare(repo, plan_all(repo), options), options)


def statuses(result: BuildResult) -> dict[str, tuple[str, str]]:
    return {p["package"]: (p["status"], p["reason"]) for p in result.report().to_json()["packages"]}


#: Set (through the manifests' ``env:``) in every build process these tests start, so
#: that they find their own processes, never another test run's on the same machine.
TEST_MARK = ("SUPERBUILD_TEST_MARK", f"test-dask-{os.getpid()}-{time.time_ns()}")


def command_product(repo: Repo, steps: Mapping[str, tuple[str, tuple[str, ...]]]) -> Path:
    """A superproject of ``command`` packages (``source: none``): name -> (step, requires)."""
    mark = f"env: {{{TEST_MARK[0]}: {TEST_MARK[1]}}}\n"
    for name, (step, requires) in steps.items():
        req = f"requires: [{', '.join(requires)}]\n" if requires else ""
        repo.manifest(
            name,
            f"path: repos/{name}\npipeline: command\nsource: none\n{req}{mark}"
            f"commands: [{json.dumps(step)}]\n",
        )
        repo.link(f"repos/{name}")
    repo.commit("product")
    return repo.path


def output_files(output: Path) -> list[str]:
    return sorted(
        p.relative_to(output).as_posix()
        for p in output.rglob("*")
        if p.is_file() and "repodata" not in p.parts and p.name != ".superbuild.lock"
    )


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def describe(pid: int) -> str:
    """``pid: command line (state)`` of a process, for failure messages."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return f"{pid}: gone"
    return f"{pid}: {cmdline.strip()} ({state})"


def sleeping_builds(step: str) -> list[int]:
    """Build processes of these tests (:data:`TEST_MARK`) whose command line is ``step``."""
    needle = "=".join(TEST_MARK).encode()
    found = []
    for pid in worker.marked_processes(""):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in environ and cmdline.strip() == step:
            found.append(pid)
    return found


# --------------------------------------------------------------------------- unit


def test_registry_does_not_import_dask() -> None:
    code = (
        "import sys, superbuild.executors, superbuild.worker, superbuild.build\n"
        "assert 'dask' in superbuild.executors.EXECUTORS\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unreachable_scheduler_is_a_one_line_error() -> None:
    from superbuild.errors import UsageError

    with pytest.raises(UsageError, match=r"cannot connect to the Dask scheduler at tcp://127"):
        make_executor("dask", parallel=1, address="tcp://127.0.0.1:1", connect_timeout=1)


def test_dependency_exports_are_transitive_and_this_runs_only() -> None:
    from superbuild.executors.dask import dependency_exports

    requires = {"a": (), "b": ("a", "outside"), "c": ("b",), "d": ()}
    exports = {"a": ("/o/rpms/noarch/a.rpm",), "b": ("/o/rpms/x86_64/b.rpm",), "d": ("/o/d",)}
    assert dependency_exports("c", requires, exports) == (
        "/o/rpms/noarch/a.rpm",
        "/o/rpms/x86_64/b.rpm",
    )
    assert dependency_exports("a", requires, exports) == ()


def test_outputs_with_a_bad_checksum_fail_and_write_nothing(tmp_path: Path) -> None:
    step = 'mkdir "$SUPERBUILD_OUTPUT/d" && echo payload > "$SUPERBUILD_OUTPUT/d/f.txt"'
    package = make_package("docs", pipeline="command", commands=(step,), source="none")
    ctx = make_context(tmp_path, package, "f" * 40, tmp_path / "nowhere")
    outputs = build_remote(prepare_inputs(ctx))
    assert outputs.failure is None
    assert outputs.files is not None
    assert [b.name for b in outputs.files] == ["d", "d/f.txt"]

    # Intact: collected as the local executor would.
    built = collect_outputs(ctx, outputs)
    assert built.artifacts == ["files/docs/d/f.txt"]
    assert list(built.stage_durations) == ["command", "collect"]
    assert (tmp_path / "output/files/docs/d/f.txt").read_text() == "payload\n"

    # One flipped byte in transit: the package fails, the output keeps the old files.
    blob = outputs.files[1]
    corrupt = dataclasses.replace(blob, data=b"pAyload\n")
    bad = dataclasses.replace(outputs, files=(outputs.files[0], corrupt))
    ctx2 = make_context(tmp_path, package, "f" * 40, tmp_path / "nowhere", run="run2")
    with pytest.raises(PipelineFailed) as info:
        collect_outputs(ctx2, bad)
    message = str(info.value)
    assert "sha256 mismatch for d/f.txt" in message
    assert "nothing was written to the output repository" in message
    assert info.value.stage == "collect"
    assert info.value.log == ctx2.log_dir / "collect.log"
    assert (tmp_path / "output/files/docs/d/f.txt").read_text() == "payload\n"
    assert (ctx2.log_dir / "command.log").is_file()  # the intact logs still arrive


def test_worker_failure_comes_back_with_its_logs(tmp_path: Path) -> None:
    package = make_package(
        "bad", pipeline="command", commands=("echo boom >&2; exit 4",), source="none"
    )
    ctx = make_context(tmp_path, package, "f" * 40, tmp_path)
    outputs = build_remote(prepare_inputs(ctx))
    assert outputs.failure is not None
    log = ctx.log_dir / "command.log"
    with pytest.raises(PipelineFailed) as info:
        collect_outputs(ctx, outputs)
    assert str(info.value) == (
        f"bad: command stage failed (exit 4) in step 1 (echo boom >&2; exit 4), see {log}"
    )
    assert info.value.log == log
    assert b"boom" in log.read_bytes()
    assert not (tmp_path / "output").exists()


def test_corrupted_inputs_are_refused_by_the_worker(tmp_path: Path) -> None:
    from superbuild.pipelines.source import inputs_for
    from superbuild.pipelines.task import absolute_context
    from superbuild.pipelines.transport import Blob

    package = make_package("x", pipeline="command", commands=("true",))
    ctx = absolute_context(make_context(tmp_path, package, "f" * 40, tmp_path))
    tarball = Blob.of("x-fffffff.tar.gz", b"data")
    inputs = inputs_for(ctx, {}, sources=[dataclasses.replace(tarball, data=b"date")])
    outputs = build_remote(inputs)
    assert outputs.failure is not None
    assert "x: inputs corrupted in transit (sha256 mismatch: x-fffffff.tar.gz)" in str(
        outputs.failure
    )


# --------------------------------------------------------------------------- on the cluster


@pytest.mark.rpm
def test_same_report_and_repository_as_the_local_executor(
    cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_build import PRODUCT, write_manifests

    sample = make_sample_superproject(
        tmp_path / "sp", write_manifests(tmp_path / "manifests", PRODUCT), settings=None
    )
    monkeypatch.chdir(sample.path)
    local = build_with(sample.path, tmp_path / "out-local", "local")
    remote = build_with(
        sample.path,
        tmp_path / "out-dask",
        "dask",
        executor_options={"address": cluster.scheduler_address},
    )
    assert local.result == remote.result == "success"
    lrep, rrep = local.report().to_json(), remote.report().to_json()

    def shape(report: dict[str, Any]) -> list[tuple[str, str, str, list[str]]]:
        return [
            (p["package"], p["status"], p["reason"], [Path(a).name for a in p["artifacts"]])
            for p in report["packages"]
        ]

    assert shape(lrep) == shape(rrep)
    lout, rout = tmp_path / "out-local", tmp_path / "out-dask"
    assert output_files(lout) == output_files(rout)
    assert len(output_files(lout)) == 2 * len(PRODUCT)
    for rel in output_files(lout):
        qf = "%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{VCS}"
        assert rpmq(lout / rel, qf) == rpmq(rout / rel, qf)
        if not rel.startswith("srpms/"):
            assert rpm_payload(lout / rel) == rpm_payload(rout / rel)
    for sub in ("rpms", "srpms"):
        assert (rout / sub / "repodata" / "repomd.xml").is_file()
    for name in PRODUCT:
        logs = sorted(p.name for p in remote.run.contexts[name].log_dir.iterdir())
        assert logs == sorted(p.name for p in local.run.contexts[name].log_dir.iterdir())
        assert logs == ["collect.log", "rpm.log", "source.log", "srpm.log"]
        result = remote.outcomes[name].result
        assert result is not None and result.worker
    # nothing half-written, no scratch left behind
    assert not [f for f in rout.rglob("*") if f.name.startswith(".") and f.suffix != ".lock"]
    assert not list((sample.path / ".superbuild" / "work").rglob("*.rpm"))


@pytest.mark.rpm
def test_mock_builds_get_this_runs_rpms_shipped(
    cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_build import write_manifests

    product = {"base": [], "client": ["base"]}
    sample = make_sample_superproject(
        tmp_path / "sp", write_manifests(tmp_path / "manifests", product), settings=None
    )
    monkeypatch.chdir(sample.path)
    output = tmp_path / "out"
    result = build_with(
        sample.path,
        output,
        "dask",
        builder="mock",
        executor_options={"address": cluster.scheduler_address},
    )
    assert result.result == "success", statuses(result)
    client_logs = result.run.contexts["client"].log_dir
    mock_log = (client_logs / "mock-build.log").read_text()
    first = mock_log.splitlines()[0]
    assert first.startswith("fake mock -r default --rebuild ")
    assert f"--addrepo file://{output}" not in first  # no coordinator path on a worker
    assert "/deps-repo" in first
    base_rpm = next(output.glob("rpms/noarch/base-*.noarch.rpm"))
    assert base_rpm.name in mock_log  # shipped and made a repository for the worker
    assert "repodata" in mock_log
    assert "1 RPM(s) of this run" in (client_logs / "rpm.log").read_text()
    srpm_call = (client_logs / "mock-srpm-build.log").read_text().splitlines()[0]
    assert srpm_call.startswith("fake mock -r default --buildsrpm --spec ")
    assert f"{output}" not in srpm_call and "--addrepo" not in srpm_call
    base_log = (result.run.contexts["base"].log_dir / "mock-build.log").read_text()
    assert "--addrepo" not in base_log.splitlines()[0]  # base needs nothing of this run
    assert (output / "rpms" / "repodata" / "repomd.xml").is_file()  # published for mock


def test_mock_without_mock_workers_fails_clearly(tmp_path: Path, repo: Repo) -> None:
    assert distributed is not None
    repo.manifest("m", "path: repos/m\nbuilder: mock\n")
    repo.link("repos/m")
    repo.commit()
    with distributed.LocalCluster(
        n_workers=1,
        processes=False,
        dashboard_address="127.0.0.1:0",
        silence_logs=logging.CRITICAL,
    ) as plain:
        result = build_with(
            repo.path,
            tmp_path / "out",
            "dask",
            builder="mock",
            executor_options={"address": plain.scheduler_address},
        )
    status, reason = statuses(result)["m"]
    assert status == "failed"
    assert "no Dask worker offers the resource mock=1" in reason
    assert "--resources mock=1" in reason


def test_plain_jobs_run_as_they_are(cluster: Any) -> None:
    jobs = {
        "ok": Job("ok", frozenset(), call(JobResult, "succeeded", "", ["a"])),
        # int("not a number") raises ValueError on the worker
        "boom": Job("boom", frozenset(), call(int, "not a number")),
        "after": Job("after", frozenset({"boom"}), call(JobResult, "succeeded")),
    }
    with make_executor("dask", parallel=2, address=cluster.scheduler_address) as ex:
        outcomes = run_jobs(jobs, ex, parallel=2)
    assert outcomes["ok"].status == "succeeded"
    assert outcomes["ok"].result is not None and outcomes["ok"].result.artifacts == ["a"]
    assert outcomes["boom"].status == "failed"
    assert outcomes["boom"].reason.startswith("ValueError: invalid literal for int()")
    assert outcomes["after"].status == "skipped"


class Unpicklable(Exception):
    """An exception Dask cannot send back: it holds a lock."""

    def __init__(self) -> None:
        super().__init__("the step failed, holding a lock")
        self.lock = threading.Lock()


def raise_unpicklable() -> None:
    raise Unpicklable


def test_an_exception_that_cannot_be_pickled_still_fails_the_job(cluster: Any) -> None:
    """An exception Dask cannot serialize still ends the job, as a failure naming it
    (distributed sends a plain Exception with its repr)."""
    jobs = {"odd": Job("odd", frozenset(), call(raise_unpicklable))}
    with make_executor("dask", parallel=1, address=cluster.scheduler_address) as ex:
        outcomes = run_jobs(jobs, ex, parallel=1)
    assert outcomes["odd"].status == "failed"
    assert "Unpicklable" in outcomes["odd"].reason
    assert "the step failed, holding a lock" in outcomes["odd"].reason


def first_attempt_hangs(flag: Path) -> str:
    """A step whose first attempt sleeps 30 s (to be killed); a retry goes straight on."""
    return f"if mkdir {flag} 2>/dev/null; then sleep 30; fi"


def kill_worker_running(client: Any, step: str) -> int:
    """SIGKILL the worker process whose build runs ``step``; its pid."""
    sleeper: int = wait_for(lambda: sleeping_builds(step), 30, f"a build running {step!r}")[0]
    workers = set(client.run(os.getpid).values())
    pid = sleeper
    while pid not in workers:
        pid = parent_of(pid)
        assert pid > 1, "the build is not under a worker of the cluster"
    os.kill(pid, signal.SIGKILL)
    return sleeper


def build_in_thread(
    repo: Path, output: Path, address: str
) -> tuple[threading.Thread, dict[str, BuildResult]]:
    box: dict[str, BuildResult] = {}

    def target() -> None:
        box["result"] = build_with(
            repo, output, "dask", jobs=2, executor_options={"address": address}
        )

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


WRITE = 'echo {name} > "$SUPERBUILD_OUTPUT/{name}.txt"'


def test_killed_worker_task_is_retried_once_and_collected_once(
    cluster: Any, client: Any, tmp_path: Path, repo: Repo
) -> None:
    steps = {
        "slow": (f"{first_attempt_hangs(tmp_path / 'flag')}; {WRITE.format(name='slow')}", ()),
        "after": (WRITE.format(name="after"), ("slow",)),
        "other": (WRITE.format(name="other"), ()),
    }
    path = command_product(repo, steps)
    output = tmp_path / "out"
    thread, box = build_in_thread(path, output, cluster.scheduler_address)
    orphan = kill_worker_running(client, "sleep 30")
    thread.join(60)
    assert not thread.is_alive()
    result = box["result"]
    assert statuses(result) == {n: ("succeeded", "") for n in steps}
    assert [p["package"] for p in result.report().to_json()["packages"]].count("slow") == 1
    assert output_files(output) == [f"files/{n}/{n}.txt" for n in ("after", "other", "slow")]
    assert not alive(orphan)  # the killed worker's reaper (or close()) stopped its build
    client.wait_for_workers(2, timeout=30)  # the nanny restarted it


def test_worker_dying_too_often_fails_the_package_clearly(
    cluster: Any, client: Any, tmp_path: Path, repo: Repo
) -> None:
    steps = {
        "slow": (f"sleep 30; {WRITE.format(name='slow')}", ()),
        "after": (WRITE.format(name="after"), ("slow",)),
        "other": (WRITE.format(name="other"), ()),
    }
    path = command_product(repo, steps)
    output = tmp_path / "out"
    cluster.scheduler.allowed_failures = 0
    try:
        thread, box = build_in_thread(path, output, cluster.scheduler_address)
        orphan = kill_worker_running(client, "sleep 30")
        thread.join(60)
    finally:
        cluster.scheduler.allowed_failures = 3
    assert not thread.is_alive()
    assert not alive(orphan)
    found = statuses(box["result"])
    status, reason = found["slow"]
    assert status == "failed"
    assert reason.startswith("slow: worker died 1 time while building slow (last on tcp://")
    assert found["after"] == ("skipped", "dependency slow failed")
    assert found["other"] == ("succeeded", "")
    assert output_files(output) == ["files/other/other.txt"]
    client.wait_for_workers(2, timeout=30)


def test_fail_fast_cancels_builds_running_on_the_workers(
    cluster: Any, client: Any, tmp_path: Path, repo: Repo
) -> None:
    steps = {"bad": ("sleep 0.5; exit 3", ()), "slow": ("sleep 30", ())}
    path = command_product(repo, steps)
    options = BuildOptions(
        jobs=2,
        output=tmp_path / "out",
        on_error=OnError.interrupt,
        executor="dask",
        executor_options={"address": cluster.scheduler_address},
    )
    box: dict[str, BuildResult] = {}
    thread = threading.Thread(
        target=lambda: box.update(result=execute(prepare(path, plan_all(path), options), options)),
        daemon=True,
    )
    start = time.monotonic()
    thread.start()
    sleeper = wait_for(lambda: sleeping_builds("sleep 30"), 30, "the slow build")[0]
    thread.join(60)
    assert not thread.is_alive()
    assert time.monotonic() - start < 20
    found = statuses(box["result"])
    assert found["bad"][0] == "failed"
    assert found["slow"] == ("cancelled", "--fail-fast after bad failed")
    assert not alive(sleeper)  # stopped on the worker, not left to finish
    assert client.submit(sum, [1, 2], pure=False).result() == 3  # the cluster is still up


def test_ctrl_c_cancels_stops_the_cluster_and_exits_130(tmp_path: Path, repo: Repo) -> None:
    steps = {"a": ("sleep 60", ()), "b": ("sleep 60", ()), "c": ("true", ("a",))}
    path = command_product(repo, steps)
    report = tmp_path / "report.json"
    child = subprocess.Popen(
        [
            *(sys.executable, "-m", "superbuild", "build", "--all", "-j", "2"),
            *("--executor", "dask", "--report", os.fspath(report)),
        ],
        cwd=path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def both_sleeping() -> set[int]:
            kids = descendants(child.pid)
            mine = {p for p in sleeping_builds("sleep 60") if p in kids}
            return mine if len(mine) == 2 else set()

        sleepers = wait_for(both_sleeping, 60, "both builds sleeping on the workers")
        family = descendants(child.pid)
        assert len(family) >= 4  # two workers (their sh and sleep), at least
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 130, err
    assert "Traceback" not in err, err
    # A process may still be exiting (its memory freed, not yet reaped) as we look.
    deadline = time.monotonic() + 5
    while (left := [p for p in family | sleepers if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, [describe(p) for p in left]
    data = json.loads(report.read_text())
    assert data["result"] == "interrupted"
    assert {p["package"]: p["status"] for p in data["packages"]} == {
        "a": "cancelled",
        "b": "cancelled",
        "c": "cancelled",
    }


@pytest.mark.rpm
def test_cli_dask_build_records_the_same_state_as_local(cluster: Any, tmp_path: Path) -> None:
    """``superbuild build --executor dask``: same report and state rows as ``--executor local``."""
    import sqlite3

    from tests.test_build import PRODUCT, write_manifests

    sample = make_sample_superproject(
        tmp_path / "sp", write_manifests(tmp_path / "manifests", PRODUCT), settings=None
    )

    def build(executor: str, *extra: str) -> dict[str, Any]:
        report = tmp_path / f"{executor}.json"
        result = subprocess.run(
            [
                *(sys.executable, "-m", "superbuild", "build", "--all", "-j", "2"),
                *("--builder", "rpmbuild", "--executor", executor, *extra),
                *("--output", os.fspath(tmp_path / f"out-{executor}")),
                *("--report", os.fspath(report)),
            ],
            cwd=sample.path,
            env=sample.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        data: dict[str, Any] = json.loads(report.read_text())
        return data

    local = build("local")
    remote = build("dask", "--scheduler-address", cluster.scheduler_address)

    def shape(report: dict[str, Any]) -> list[tuple[str, str, str, list[str]]]:
        # The second build of the same commits is a rebuild: its Releases end in ".1".
        def name(p: dict[str, Any], artifact: str) -> str:
            sha = f"g{p['commit'][:7]}"
            return Path(artifact).name.replace(f"{sha}.{p['rebuild']}.", f"{sha}.")

        return [
            (p["package"], p["commit"], p["status"], sorted(name(p, a) for a in p["artifacts"]))
            for p in report["packages"]
        ]

    assert shape(local) == shape(remote)
    assert {p["rebuild"] for p in local["packages"]} == {0}
    assert {p["rebuild"] for p in remote["packages"]} == {1}
    db = sqlite3.connect(sample.path / ".superbuild" / "state.db")
    rows = {
        run: sorted(
            db.execute(
                "SELECT package, commit_id, status, build_key FROM builds WHERE run_id = ?",
                (run,),
            )
        )
        for run in (local["run"], remote["run"])
    }
    db.close()
    assert rows[local["run"]] == rows[remote["run"]]
    assert len(rows[local["run"]]) == len(PRODUCT)


# --------------------------------------------------------------------------- cluster checks


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_a_scheduler_without_workers_is_a_one_line_error(tmp_path: Path) -> None:
    """A real `dask scheduler` process with no worker: exit-2 error, not a silent hang."""
    from superbuild.errors import UsageError

    port = _free_port()
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", str(port), "--dashboard-address", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    address = f"tcp://127.0.0.1:{port}"
    try:
        with pytest.raises(UsageError) as info:
            make_executor("dask", parallel=1, address=address, connect_timeout=20, worker_wait=1)
        message = str(info.value)
        assert f"the Dask scheduler at {address} has no workers" in message
        assert f"dask worker {address}" in message
    finally:
        os.killpg(scheduler.pid, signal.SIGKILL)
        scheduler.wait()


@pytest.mark.parametrize(
    ("preload", "problem"),
    [
        ("import sys\nsys.modules['superbuild'] = None\n", "cannot import superbuild"),
        ("import superbuild\nsuperbuild.__version__ = '0.0-other'\n", "superbuild 0.0-other"),
    ],
    ids=["no-superbuild", "other-version"],
)
def test_workers_that_cannot_run_superbuild_are_named(
    tmp_path: Path, preload: str, problem: str
) -> None:
    """Workers (real processes) whose Python lacks this superbuild: one line naming them."""
    from superbuild.errors import UsageError

    script = tmp_path / "worker_preload.py"
    script.write_text(preload)
    with preloaded_cluster(script) as local:
        with pytest.raises(UsageError) as info:
            make_executor("dask", parallel=1, address=local.scheduler_address, worker_wait=20)
        message = str(info.value)
        assert "Dask workers that cannot run this build" in message
        assert problem in message
        assert next(iter(local.workers.values())).worker_address in message
