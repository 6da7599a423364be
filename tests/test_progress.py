"""Progress output: timestamped lines for CI, a live view on terminals."""

from __future__ import annotations

import io
import re

from rich.console import Console

from superbuild.jobs import JobFinished, JobSkipped, JobStarted
from superbuild.progress import LiveProgress, PlainProgress, summary_table


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


def test_live_view_shows_running_builds_and_counts() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    progress = LiveProgress(4, console)
    progress(JobStarted("glance", 0.0))
    progress(JobStarted("nova", 0.0))
    progress(JobFinished("nova", "succeeded", "", 2.0, None))
    render = Console(file=io.StringIO(), width=120)
    render.print(progress._render())
    text = render.file.getvalue()  # type: ignore[attr-defined]
    assert "building glance" in text and "building nova" not in text
    assert "1/4 done" in text and "1 succeeded" in text and "1 running" in text


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
