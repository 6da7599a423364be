"""Progress output: timestamped lines for CI, a live view on terminals."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from superbuild.jobs import JobFinished, JobSkipped, JobStarted
from superbuild.progress import LiveProgress, PlainProgress, make_progress, summary_table


def test_plain_lines_are_timestamped_and_counted() -> None:
    out = io.StringIO()
    progress = PlainProgress(3, out)
    progress(JobStarted("a", 0.0))
    progress(JobFinished("a", "succeeded", "", 1.25, None))
    progress(JobStarted("b", 0.0))
    progress(JobFinished("b", "failed", "b: rpm stage failed (exit 1)", 0.5, None))
    progress(JobSkipped("c", "dependency b failed"))
    lines = out.getvalue().splitlines()
    assert all(re.match(r"\d\d:\d\d:\d\d \[\d/3\] ", line) for line in lines)
    assert lines[1].endswith("succeeded a (1.2s)") or lines[1].endswith("succeeded a (1.3s)")
    assert lines[3].endswith("failed    b (0.5s): b: rpm stage failed (exit 1)")
    assert lines[4].endswith("[3/3] skipped   c: dependency b failed")


def shown(progress: LiveProgress, width: int) -> list[str]:
    """The lines of the live view on a terminal ``width`` columns wide."""
    screen = Console(record=True, width=width, force_terminal=True, file=io.StringIO())
    screen.print(progress)
    return screen.export_text().splitlines()


def test_live_view_shows_running_builds_and_counts() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    progress = LiveProgress(4, console)
    progress(JobStarted("glance", 0.0))
    progress(JobStarted("nova", 0.0))
    progress(JobFinished("nova", "succeeded", "", 2.0, None))
    text = "\n".join(shown(progress, 120))
    assert "building glance" in text and "building nova" not in text
    assert "1/4 done" in text and "1 succeeded" in text and "1 running" in text


@pytest.mark.parametrize("width", [80, 100])
def test_live_view_fits_the_terminal(width: int) -> None:
    progress = LiveProgress(1200, Console(file=io.StringIO(), force_terminal=True, width=width))
    for i in range(25):
        progress(JobStarted(f"python-openstack-package-with-a-long-name-{i}", 0.0))
    for i in range(1000):
        progress(JobFinished(f"p{i}", "succeeded", "", 1.0, None))
    lines = shown(progress, width)
    assert all(len(line) <= width for line in lines), lines
    assert any("1000/1200 done" in line and "25 running" in line for line in lines)
    assert any("... and 5 more" in line for line in lines)
    assert all(len(line) <= 40 for line in shown(progress, 40))  # narrower: cut, not wrapped


def test_failures_are_printed_whole_above_the_live_view() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    progress = LiveProgress(1, console)
    log = "/very/long/path/to/.superbuild/logs/20261202-071500-abcdef/nova/rpm.log"
    progress(JobFinished("nova", "failed", f"nova: rpm stage failed (exit 1), log {log}", 1, None))
    assert log in out.getvalue()


def test_ci_gives_plain_lines_even_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True, width=80)
    monkeypatch.setenv("CI", "true")
    assert isinstance(make_progress(2, terminal), PlainProgress)
    monkeypatch.delenv("CI")
    assert isinstance(make_progress(2, terminal), LiveProgress)


def test_summary_table_lists_every_package() -> None:
    report = {
        "result": "failure",
        "packages": [
            {
                "package": "a",
                "status": "succeeded",
                "duration_s": 1.0,
                "reason": "",
                "artifacts": ["x", "y"],
            },
            {
                "package": "b",
                "status": "skipped",
                "duration_s": 0.0,
                "reason": "dependency c failed",
                "artifacts": [],
            },
        ],
    }
    console = Console(file=io.StringIO(), width=120)
    console.print(summary_table(report))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "build failure" in text and "2 file(s)" in text and "dependency c failed" in text


def test_summary_of_a_big_build_lists_only_what_did_not_succeed() -> None:
    packages = [
        {
            "package": f"p{i}",
            "status": "succeeded",
            "duration_s": 1.0,
            "reason": "",
            "artifacts": [],
        }
        for i in range(60)
    ]
    packages[7] = {**packages[7], "status": "failed", "reason": "p7: rpm stage failed"}
    console = Console(file=io.StringIO(), width=120)
    console.print(summary_table({"result": "failure", "packages": packages}))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "p7: rpm stage failed" in text and "p8 " not in text
    assert "59 of 60 package(s) succeeded" in text
