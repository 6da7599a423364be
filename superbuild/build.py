"""``superbuild build``: turn a plan into jobs, run them, report.

The verb's library side: it knows where things go in the superproject, makes one
:class:`~superbuild.pipelines.BuildContext` per package, hands jobs to the scheduler with
an executor, and turns outcomes into the JSON report.  It never prints: progress and
summaries are observers (``superbuild.progress``).

Where things go in the superproject: :mod:`superbuild.layout`.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from superbuild import layout
from superbuild.errors import SuperbuildError
from superbuild.jobs import Event, Job, JobResult, OnError, RunResult
from superbuild.pipelines import BuildContext, PackageBuild, PipelineFailed, run_package
from superbuild.planning import Plan
from superbuild.scheduler import run_jobs

if TYPE_CHECKING:
    from superbuild.state import RunRecorder

BUILDERS = ("rpmbuild", "mock")


@dataclass(frozen=True)
class BuildOptions:
    jobs: int
    builder: str | None = None  # --builder; None: manifest/settings, else mock if installed
    output: Path | None = None  # --output; None: settings ``output:``
    on_error: OnError = OnError.continue_
    executor: str = "local"
    executor_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class BuildRun:
    """Everything a build run needs, prepared before any job starts."""

    repo: Path
    plan: Plan
    run_id: str
    output: Path
    log_root: Path
    work_root: Path
    contexts: dict[str, BuildContext]
    jobs: dict[str, Job]


@dataclass
class BuildResult:
    run: BuildRun
    outcomes: RunResult
    metadata_error: str | None = None

    @property
    def result(self) -> Literal["success", "failure", "interrupted"]:
        if self.outcomes.interrupted:
            return "interrupted"
        if self.metadata_error or not all(o.status == "succeeded" for o in self.outcomes.values()):
            return "failure"
        return "success"

    def log_of(self, name: str) -> Path | None:
        """The most telling log: the failing stage's, else the package's log folder."""
        outcome = self.outcomes[name]
        exc = outcome.exception
        if isinstance(exc, PipelineFailed) and exc.log is not None:
            return Path(exc.log)
        folder = self.run.contexts[name].log_dir
        return folder if folder.exists() else None

    def report(self) -> dict[str, Any]:
        plan = self.run.plan
        packages = []
        for name in plan.packages:
            outcome = self.outcomes[name]
            result = outcome.result
            log = self.log_of(name)
            packages.append(
                {
                    "package": name,
                    "commit": plan.commits[name],
                    "status": outcome.status,
                    "reason": outcome.reason,
                    "duration_s": round(outcome.duration_s, 3),
                    "log": str(log) if log else None,
                    "artifacts": [str(self.run.output / a) for a in result.artifacts]
                    if result
                    else [],
                }
            )
        return {
            "result": self.result,
            "run": self.run.run_id,
            "base": plan.changeset.base if plan.changeset else None,
            "head": plan.product.commit,
            "output": str(self.run.output),
            "packages": packages,
            **({"metadata_error": self.metadata_error} if self.metadata_error else {}),
        }


def default_builder() -> str:
    return "mock" if shutil.which("mock") else "rpmbuild"


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def build_job(ctx: BuildContext) -> JobResult:
    """The job a worker runs for one package (module level: executors may pickle it)."""
    built: PackageBuild = run_package(ctx)
    publish(ctx)
    return job_result(built)


def publish(ctx: BuildContext) -> None:
    """After a package is collected: drop its scratch, let dependents see it.

    Runs where the executor finishes a job (a worker thread, the Dask coordinator's
    pool), so the clean-up overlaps other builds instead of trailing the run.
    """
    shutil.rmtree(ctx.work_dir, ignore_errors=True)
    if ctx.builder == "mock" and ctx.package.pipeline == "rpm":
        # Dependents built by mock read this run's repository (--addrepo): publish now.
        from superbuild import outrepo

        outrepo.refresh_metadata(ctx.output)


def job_result(built: PackageBuild) -> JobResult:
    """What the scheduler records for a package that was built and collected."""
    return JobResult(
        status="succeeded",
        artifacts=list(built.artifacts),
        log=built.log_dir,
        data={
            "version": built.version,
            "release": built.release,
            "stage_durations": dict(built.stage_durations),
        },
    )


def prepare(
    repo: Path,
    plan: Plan,
    options: BuildOptions,
    *,
    weights: Mapping[str, float] | None = None,
    run_id: str | None = None,
) -> BuildRun:
    product = plan.product
    settings = product.settings
    layout.state_dir(repo)
    output = layout.output_dir(repo, options.output or settings.output)
    run_id = run_id or new_run_id()
    log_root = layout.run_logs(repo, run_id)
    work_root = layout.run_work(repo, run_id)
    auto_builder: str | None = None
    contexts: dict[str, BuildContext] = {}
    selected = set(plan.packages)
    jobs: dict[str, Job] = {}
    for name in plan.packages:
        pkg = product.packages[name]
        builder = options.builder or pkg.builder
        if builder is None:
            auto_builder = auto_builder or default_builder()
            builder = auto_builder
        ctx = BuildContext(
            package=pkg,
            commit=plan.commits[name],
            source_repo=repo / pkg.path,
            output=output,
            work_dir=work_root / name,
            log_dir=log_root / name,
            builder=builder,
            mock_config=pkg.mock_config,
            extra_repos=(output / "rpms",) if builder == "mock" else (),
            sign_key=settings.sign_key,
            gpg_home=settings.gpg_home,
            env=pkg.env,
        )
        contexts[name] = ctx
        jobs[name] = Job(
            id=name,
            dependencies=frozenset(r for r in pkg.requires if r in selected),
            fn=build_job,
            args=(ctx,),
            weight=(weights or {}).get(name, 1.0),
        )
    return BuildRun(repo, plan, run_id, output, log_root, work_root, contexts, jobs)


def _link_latest(run: BuildRun) -> None:
    latest = run.log_root.parent / "latest"
    tmp = latest.with_name(f".latest-{run.run_id}")
    try:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(run.run_id)
        tmp.replace(latest)
    except OSError:
        pass  # no symlinks on this filesystem: the run id is in the report


def execute(
    run: BuildRun,
    options: BuildOptions,
    observers: Iterable[Callable[[Event], None]] = (),
    *,
    recorder: RunRecorder | None = None,
) -> BuildResult:
    """Run the jobs; refresh the repository metadata once at the end.

    ``recorder`` (:class:`superbuild.state.RunRecorder`) records the run in the
    build state: started before the first job, fed every scheduler event, finished with
    the run's result -- ``interrupted`` or ``failure`` too when this function raises.
    """
    from superbuild import outrepo
    from superbuild.executors import make_executor

    run.log_root.mkdir(parents=True, exist_ok=True)
    run.output.mkdir(parents=True, exist_ok=True)
    _link_latest(run)
    all_observers: list[Callable[[Event], None]] = list(observers)
    if recorder is not None:
        all_observers.append(recorder)
        recorder.start()
    try:
        with make_executor(
            options.executor, parallel=options.jobs, **options.executor_options
        ) as ex:
            outcomes = run_jobs(
                run.jobs,
                ex,
                parallel=options.jobs,
                on_error=options.on_error,
                observers=all_observers,
            )
        result = BuildResult(run, outcomes)
        if not outcomes.interrupted and any(o.status == "succeeded" for o in outcomes.values()):
            try:
                outrepo.refresh_metadata(run.output)
            except SuperbuildError as exc:
                result.metadata_error = str(exc)
    except BaseException as exc:
        if recorder is not None:
            recorder.finish("interrupted" if isinstance(exc, KeyboardInterrupt) else "failure")
        raise
    if recorder is not None:
        recorder.finish(result.result)
    return result


def plan_links(repo: Path, plan: Plan) -> dict[str, str]:
    """The gitlinks (path -> recorded commit) of the plan's commit, for build keys."""
    if plan.changeset is not None and plan.changeset.links:
        return plan.changeset.links
    from superbuild import git as g

    assert plan.product.commit is not None
    return g.gitlinks(repo, plan.product.commit)


def tail(path: Path | None, lines: int = 20) -> list[str]:
    """The last lines of a log file (empty if there is none)."""
    if path is None or not path.is_file():
        return []
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 64 * 1024))
        data = fh.read()
    return data.decode("utf-8", "replace").splitlines()[-lines:]


def junit_xml(result: BuildResult) -> str:
    """JUnit XML: one testcase per package; a failure's text is its log tail."""
    from xml.etree import ElementTree as ET

    report = result.report()
    pkgs = report["packages"]
    suite = ET.Element(
        "testsuite",
        name="superbuild",
        tests=str(len(pkgs)),
        failures=str(sum(p["status"] == "failed" for p in pkgs)),
        skipped=str(sum(p["status"] in ("skipped", "cancelled") for p in pkgs)),
        time=f"{sum(p['duration_s'] for p in pkgs):.3f}",
    )
    for p in pkgs:
        pipeline = result.run.plan.product.packages[p["package"]].pipeline
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"superbuild.{pipeline}",
            name=p["package"],
            time=f"{p['duration_s']:.3f}",
        )
        if p["status"] == "failed":
            failure = ET.SubElement(case, "failure", message=p["reason"])
            log = Path(p["log"]) if p["log"] else None
            failure.text = "\n".join(tail(log, 50))
        elif p["status"] in ("skipped", "cancelled"):
            ET.SubElement(case, "skipped", message=f"{p['status']}: {p['reason']}")
        ET.SubElement(case, "system-out").text = f"commit {p['commit']}\nlog {p['log']}"
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
