"""The build report's writers: JUnit XML from the same records as the JSON report."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from superbuild.report import BuildReport, PackageReport, junit_xml


def package(name: str, status: str, duration: float, log: str | None) -> PackageReport:
    return PackageReport(
        package=name,
        commit="c" * 40,
        pipeline="rpm",
        status=status,  # type: ignore[arg-type]
        reason="" if status == "succeeded" else f"{name} {status}",
        duration_s=duration,
        log=log,
        artifacts=(),
    )


def test_junit_time_is_wall_time_and_skipped_packages_name_no_log(tmp_path: Path) -> None:
    log = tmp_path / "rpm.log"
    log.write_text("line 1\nerror: exit 3\n")
    report = BuildReport(
        result="failure",
        run="r1",
        base=None,
        head="h" * 40,
        output=str(tmp_path / "out"),
        packages=(
            package("a", "succeeded", 10.0, str(tmp_path)),
            package("b", "failed", 10.0, str(log)),  # ran alongside a
            package("c", "skipped", 0.0, None),
        ),
        started=1000.0,
        finished=1012.5,
    )
    suite = ET.fromstring(junit_xml(report)).find("testsuite")
    assert suite is not None
    assert suite.get("time") == "12.500"  # the run's wall time, not 20 s of package time
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    outs = {c.get("name"): c.findtext("system-out") for c in suite.iter("testcase")}
    assert outs["c"] == f"commit {'c' * 40}"  # no "log None"
    assert outs["b"] == f"commit {'c' * 40}\nlog {log}"
    failure = suite.find("testcase[@name='b']/failure")
    assert failure is not None and "error: exit 3" in (failure.text or "")
    assert report.to_json()["duration_s"] == 12.5
