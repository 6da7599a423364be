"""Bounded resources: the per-stage log cap and captured output that is never held whole."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from superbuild import proc
from superbuild.errors import UsageError
from tests.conftest import Repo
from tests.helpers import run_superbuild

MIB = 1 << 20
#: What ``yes | head -c BIG`` writes: 300 MB of "y\n".
BIG = 300_000_000
CUT = b"[... superbuild: "


def _cut_count(data: bytes) -> int:
    """N of the one cut line ``[... superbuild: N bytes cut ...]`` in ``data``."""
    [line] = [line for line in data.split(b"\n") if line.startswith(CUT)]
    assert line.endswith(b" bytes, SUPERBUILD_LOG_CAP) ...]"), line
    return int(line[len(CUT) :].split()[0])


# --------------------------------------------------------------------------- the setting


@pytest.mark.parametrize(
    ("value", "cap"),
    [
        (None, 64 * MIB),
        ("", 64 * MIB),
        ("0", 0),
        ("1000", 1000),
        ("512K", 512 * 1024),
        ("1m", MIB),
        ("2G", 2 << 30),
        ("8MiB", 8 * MIB),
    ],
)
def test_log_cap_from_the_environment(value: str | None, cap: int) -> None:
    environ = {} if value is None else {"SUPERBUILD_LOG_CAP": value}
    assert proc.log_cap(environ) == cap


@pytest.mark.parametrize("value", ["lots", "-1", "1.5M", "1T", "M"])
def test_a_bad_log_cap_names_the_variable(value: str) -> None:
    with pytest.raises(UsageError) as info:
        proc.log_cap({"SUPERBUILD_LOG_CAP": value})
    [line] = info.value.lines
    assert line.startswith(f"SUPERBUILD_LOG_CAP={value!r} is not a size")


# --------------------------------------------------------------------------- CappedLog


def _expected(stream: bytes, cap: int) -> bytes:
    """What a log capped at ``cap`` holds of ``stream``."""
    if cap == 0 or len(stream) <= cap:
        return stream
    head, tail = stream[: cap // 2], stream[len(stream) - (cap - cap // 2) :]
    gap = b"" if not head or head.endswith(b"\n") else b"\n"
    return head + gap + proc.cut_line(len(stream) - len(head) - len(tail), cap) + tail


@pytest.mark.parametrize("seed", range(40))
def test_capped_log_keeps_head_and_tail_whatever_the_writes(tmp_path: Path, seed: int) -> None:
    rnd = random.Random(seed)
    cap = rnd.choice([1, 2, 7, 64, 1000, 4096])
    stream = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 4 * cap + 50)))
    path = tmp_path / "stage.log"
    with proc.CappedLog(path, cap) as log:
        at = 0
        while at < len(stream):
            size = rnd.choice([1, 3, cap // 2 or 1, cap, 2 * cap, rnd.randrange(1, 100)])
            assert log.write(stream[at : at + size]) == len(stream[at : at + size])
            at += size
    assert path.read_bytes() == _expected(stream, cap)


def test_capped_log_is_written_as_it_comes_until_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "stage.log"
    with proc.CappedLog(path, 100) as log:
        log.write(b"a" * 60)
        assert path.read_bytes() == b"a" * 60  # a reader sees it at once
        log.write(b"b" * 60)
        assert path.read_bytes() == b"a" * 50  # the head; the tail waits in memory
    assert path.read_bytes() == b"a" * 50 + b"\n" + proc.cut_line(20, 100) + b"b" * 50


KILLED_WRITER = """
import sys, time
from superbuild import proc
log = proc.CappedLog(sys.argv[1], 100)
log.write(b"h" * 120)
for n in range(3):
    time.sleep(proc.CappedLog.TAIL_SYNC_S + 0.1)
    log.write(f"line {n}\\n".encode())
print("written", flush=True)
time.sleep(600)
"""


def test_a_sigkilled_writers_capped_log_still_ends_with_its_last_lines(tmp_path: Path) -> None:
    """The tail is written to the file as it comes (at most every TAIL_SYNC_S), not only at
    close: a run killed with SIGKILL leaves a log with the step's last words."""
    path = tmp_path / "stage.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(path)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"written\n"
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    data = path.read_bytes()
    assert data.startswith(b"h" * 50 + b"\n" + CUT), data
    assert data.endswith(b"line 2\n"), data
    assert len(data) <= 100 + len(proc.cut_line(10**6, 100))


def test_captured_output_is_capped_like_a_log() -> None:
    script = "yes | head -c 3000; echo first >&2; yes e | head -c 5000 >&2; echo the reason >&2"
    done = proc.Session().run(["sh", "-c", script], cap=1000, check=False)
    assert done.ok
    assert done.stdout == _expected(b"y\n" * 1500, 1000)
    assert done.stderr.startswith(b"first\ne\n")
    assert done.stderr.endswith(b"e\ne\nthe reason\n")
    assert _cut_count(done.stderr) == 6 + 5000 + 11 - 1000
    # Without a cap (git plumbing) the output stays complete.
    assert proc.Session().run(["sh", "-c", script]).stdout == b"y\n" * 1500


def test_a_capped_capture_still_holds_a_timeout_with_a_daemon_on_the_pipes() -> None:
    done = proc.Session().run(
        ["sh", "-c", "setsid sleep 30 & yes | head -c 100000; sleep 30"],
        cap=1000,
        timeout=0.5,
        check=False,
    )
    assert done.timed_out
    assert len(done.stdout) <= 1000 + len(proc.cut_line(10**6, 1000))


def test_a_capped_log_step_leaving_a_daemon_on_the_pipe_ends_with_its_main_process(
    tmp_path: Path,
) -> None:
    path = tmp_path / "stage.log"
    with proc.CappedLog(path, 1000) as log:
        done = proc.Session().run_logged(
            ["sh", "-c", "setsid sleep 600 & yes | head -c 5000; echo the end"], log=log
        )
    assert done.ok
    data = path.read_bytes()
    assert data.endswith(b"y\nthe end\n# stopped 1 process(es) the step left running\n")
    assert (
        _cut_count(data)
        == 5000 + 8 + len(b"# stopped 1 process(es) the step left running\n") - 1000
    )


# --------------------------------------------------------------------------- a build


def _product(repo: Repo, steps: dict[str, str]) -> None:
    for name, step in steps.items():
        repo.manifest(
            name,
            f"path: repos/{name}\npipeline: command\nsource: none\ncommands: [{json.dumps(step)}]\n",
        )
        repo.link(f"repos/{name}")
    repo.commit("product")


def _build(
    repo: Repo, cap: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, str]]]:
    report = repo.path.parent / "report.json"
    result = run_superbuild(
        "build", "--all", "--keep-going", "--report", str(report),
        cwd=repo.path, env={"SUPERBUILD_LOG_CAP": cap},
    )  # fmt: skip
    packages = {p["package"]: p for p in json.loads(report.read_text())["packages"]}
    return result, packages


def _command_log(package: dict[str, str]) -> Path:
    """The ``command.log`` of a package in the report (which names a failure's log, else
    the package's log folder)."""
    log = Path(package["log"])
    return log / "command.log" if log.is_dir() else log


def test_a_step_writing_300_mb_keeps_a_capped_log_and_its_own_result(repo: Repo) -> None:
    _product(
        repo,
        {
            "chatty": f"echo first line; yes | head -c {BIG}; echo last line",
            "failing": f"echo first line; yes | head -c {BIG}; echo last line; exit 3",
            "quiet": "echo just this",
        },
    )
    result, packages = _build(repo, "1M")
    assert result.returncode == 1, result.stderr
    states = {name: p["status"] for name, p in packages.items()}
    assert states == {"chatty": "succeeded", "failing": "failed", "quiet": "succeeded"}
    assert "failing: command stage failed (exit 3)" in result.stderr
    for name in ("chatty", "failing"):
        log = _command_log(packages[name])
        data = log.read_bytes()
        cut = _cut_count(data)
        assert len(data) <= MIB + len(proc.cut_line(cut, MIB)) + 1
        assert len(data) >= MIB  # the head and the tail are both there, in full
        head, tail = data.split(b"\n" + CUT, 1)
        assert head.startswith(b"# step 1/1\n$ sh -c ")
        assert b"\nfirst line\ny\ny\n" in head
        assert set(tail.split(b"\n", 1)[1][:1000]) == set(b"y\n")  # the middle of `yes`
        assert tail.endswith(b"y\nlast line\n" + (b"# exit 3\n" if name == "failing" else b""))
        # Every byte is accounted for: what is kept plus what was cut.
        assert len(data) - len(proc.cut_line(cut, MIB)) - (b"\n" + CUT in data) + cut >= BIG
    quiet = _command_log(packages["quiet"]).read_bytes()
    assert CUT not in quiet
    assert quiet.endswith(b"just this\n")


def test_no_cap_keeps_the_whole_log(repo: Repo) -> None:
    _product(repo, {"chatty": "yes | head -c 3000000"})
    result, packages = _build(repo, "0")
    assert result.returncode == 0, result.stderr
    data = _command_log(packages["chatty"]).read_bytes()
    assert CUT not in data
    assert data.endswith(b"y\n" * 1_500_000)


def test_a_bad_log_cap_stops_the_build_before_it_starts(repo: Repo) -> None:
    _product(repo, {"quiet": "echo just this"})
    result = run_superbuild("build", "--all", cwd=repo.path, env={"SUPERBUILD_LOG_CAP": "big"})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "superbuild: error: SUPERBUILD_LOG_CAP='big' is not a size: give a number of bytes, "
        "optionally with a K, M or G suffix (0 for no cap)"
    ]
    assert not list((repo.path / ".superbuild").glob("logs/*/quiet"))


# --------------------------------------------------------------------------- the hook's verify

VERIFY = """
import json, sys
from pathlib import Path
from superbuild.hooks.verify import verify
from superbuild.package import Package

package = Package(name="noisy", path="repos/noisy", manifest="manifests/noisy.yaml",
                  verify=("sh", "-c", sys.argv[3]))
outcome = verify(Path(sys.argv[1]), package, sys.argv[2], "noisy")
# The peak resident size of this process: VmHWM, the high-water mark of the memory it
# exec'ed into (ru_maxrss would also count the parent it was forked from).
[peak] = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")]
print(json.dumps({"problem": outcome.problem, "maxrss_kib": int(peak)}))
"""


def _verify(repo: Repo, script: str, cap: str) -> tuple[str, int]:
    sub = Repo(repo.path / "repos" / "noisy")
    sub.write("README", "hello\n")
    commit = sub.commit("noisy")
    result = subprocess.run(
        [sys.executable, "-c", VERIFY, str(repo.path), commit, script],
        capture_output=True,
        text=True,
        env={**os.environ, "SUPERBUILD_LOG_CAP": cap},
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    said = json.loads(result.stdout)
    return said["problem"], said["maxrss_kib"]


def test_verify_writing_300_mb_stays_small_and_gives_its_last_line(repo: Repo) -> None:
    script = textwrap.dedent(
        f"""
        yes | head -c {BIG}
        echo 'first complaint' >&2
        yes e | head -c {BIG} >&2
        echo 'the real reason' >&2
        exit 5
        """
    )
    problem, maxrss_kib = _verify(repo, script, "1M")
    assert "verify `sh -c" in problem
    assert "failed (exit 5) on commit " in problem
    assert ": the real reason: fix it, or run it in a checkout of that commit" in problem
    # 600 MB went through; the hook held at most the cap of each stream (a Python
    # interpreter with superbuild loaded is some 30-40 MiB here).
    assert maxrss_kib * 1024 < 120 * MIB, maxrss_kib
