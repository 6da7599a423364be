"""The report of a build run: typed records shared by the JSON report, JUnit and the summary.

:class:`BuildReport` is made once from a finished run (``BuildResult.report()``); the
JSON report (docs/formats.md) is :meth:`BuildReport.to_json`, the JUnit XML
:func:`junit_xml`, and the terminal summary reads the same records.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

RunResult = Literal["success", "failure", "interrupted"]
PackageStatus = Literal["succeeded", "failed", "skipped", "cancelled"]


@dataclass(frozen=True)
class PackageReport:
    """How one package of the run ended."""

    package: str
    commit: str
    pipeline: str
    status: PackageStatus
    reason: str
    duration_s: float
    #: The most telling log: the failing stage's, else the package's log folder.
    log: str | None
    #: Absolute paths of the artifacts written into the output repository.
    artifacts: tuple[str, ...]
    #: Successful builds of the same commit before this one (0: a first build).
    rebuild: int = 0
    #: The target built for (None: the implicit target, ``null`` in JSON).
    target: str | None = None
    #: Seconds it waited for a worker (Dask) before its build began; not in duration_s.
    queued_s: float = 0.0
    #: Seconds per stage (``source``, ``srpm``, ``rpm``, ``collect``...), in the order
    #: they ran; empty for a package that did not finish (skipped, cancelled, failed).
    stages: tuple[tuple[str, float], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "target": self.target,
            "commit": self.commit,
            "status": self.status,
            "reason": self.reason,
            "duration_s": round(self.duration_s, 3),
            "queued_s": round(self.queued_s, 3),
            "stages": {stage: round(seconds, 3) for stage, seconds in self.stages},
            "log": self.log,
            "artifacts": list(self.artifacts),
            "rebuild": self.rebuild,
        }


@dataclass(frozen=True)
class BuildReport:
    """How a run ended: its packages in build order, and its wall-clock span."""

    result: RunResult
    run: str
    base: str | None
    head: str | None
    output: str
    packages: tuple[PackageReport, ...]
    #: Epoch seconds when the run started and ended (wall clock, not a sum of packages).
    started: float
    finished: float
    metadata_error: str | None = None
    #: The commit whose ``manifests/`` described head (``--manifests-from``), if not head.
    manifests: str | None = None

    @property
    def duration_s(self) -> float:
        return max(0.0, self.finished - self.started)

    def count(self, *statuses: str) -> int:
        return sum(p.status in statuses for p in self.packages)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "result": self.result,
            "run": self.run,
            "base": self.base,
            "head": self.head,
            "output": self.output,
            "duration_s": round(self.duration_s, 3),
            "packages": [p.to_json() for p in self.packages],
        }
        if self.metadata_error:
            data["metadata_error"] = self.metadata_error
        if self.manifests is not None and self.manifests != self.head:
            data["manifests"] = self.manifests
        return data


def tail(path: Path | str | None, lines: int = 20) -> list[str]:
    """The last lines of a log file (empty if there is none or it is a folder)."""
    if path is None:
        return []
    path = Path(path)
    if not path.is_file():
        return []
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 64 * 1024))
        data = fh.read()
    return data.decode("utf-8", "replace").splitlines()[-lines:]


def junit_xml(report: BuildReport) -> str:
    """JUnit XML: one testsuite per target (``superbuild``, or ``superbuild.<target>``),
    one testcase per package; a failure's text is its log tail.

    A testsuite's ``time`` is the run's wall-clock time; a package's ``system-out``
    names its commit, and its log when it has one.
    """
    from xml.etree import ElementTree as ET

    root = ET.Element("testsuites")
    targets = list(dict.fromkeys(p.target for p in report.packages)) or [None]
    for target in targets:
        cases = [p for p in report.packages if p.target == target]
        suite = ET.SubElement(
            root,
            "testsuite",
            name="superbuild" if target is None else f"superbuild.{target}",
            tests=str(len(cases)),
            failures=str(sum(p.status == "failed" for p in cases)),
            skipped=str(sum(p.status in ("skipped", "cancelled") for p in cases)),
            time=f"{report.duration_s:.3f}",
        )
        for p in cases:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"superbuild.{p.pipeline}",
                name=p.package,
                time=f"{p.duration_s:.3f}",
            )
            if p.status == "failed":
                failure = ET.SubElement(case, "failure", message=p.reason)
                failure.text = "\n".join(tail(p.log, 50))
            elif p.status in ("skipped", "cancelled"):
                ET.SubElement(case, "skipped", message=f"{p.status}: {p.reason}")
            out = f"commit {p.commit}" + (f"\ntarget {p.target}" if p.target else "")
            out += f"\nlog {p.log}" if p.log else ""
            ET.SubElement(case, "system-out").text = out
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
