"""``superbuild build``: turn a plan into jobs, run them, report.

The verb's library side: it knows where things go in the superproject, makes one
:class:`~superbuild.pipelines.BuildContext` per package, hands jobs to the scheduler with
an executor, and turns outcomes into the JSON report.  It never prints: progress and
summaries are observers (``superbuild.progress``).

Where things go in the superproject: :mod:`superbuild.layout`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from superbuild import layout
from superbuild.errors import SuperbuildError, UsageError
from superbuild.jobs import Event, Job, OnError, Outcome, RunResult
from superbuild.pipelines import registry
from superbuild.pipelines.api import BuildContext, PipelineFailed
from superbuild.pipelines.task import PackageTask
from superbuild.planning import Plan
from superbuild.proc import Session, session_watchdog
from superbuild.report import BuildReport, PackageReport
from superbuild.scheduler import run_jobs

if TYPE_CHECKING:
    from superbuild.state import RunRecorder


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
    #: Epoch seconds: the run's wall-clock span (set by :func:`execute`).
    started: float = 0.0
    finished: float = 0.0

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

    def report(self) -> BuildReport:
        """The run's report (JSON, JUnit and the summary all read it)."""
        plan = self.run.plan
        packages = []
        for name in plan.packages:
            outcome = self.outcomes[name]
            result = outcome.result
            log = self.log_of(name)
            packages.append(
                PackageReport(
                    package=name,
                    commit=plan.commits[name],
                    pipeline=plan.product.packages[name].pipeline,
                    status=outcome.status,
                    reason=outcome.reason,
                    duration_s=outcome.duration_s,
                    log=str(log) if log else None,
                    artifacts=tuple(str(self.run.output / a) for a in result.artifacts)
                    if result
                    else (),
                    rebuild=self.run.contexts[name].rebuild,
                    queued_s=outcome.queued_s,
                )
            )
        return BuildReport(
            result=self.result,
            run=self.run.run_id,
            base=plan.changeset.base if plan.changeset else None,
            head=plan.product.commit,
            output=str(self.run.output),
            packages=tuple(packages),
            started=self.started,
            finished=self.finished,
            metadata_error=self.metadata_error,
        )


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def prepare(
    repo: Path,
    plan: Plan,
    options: BuildOptions,
    *,
    weights: Mapping[str, float] | None = None,
    run_id: str | None = None,
    rebuilds: Mapping[str, int] | None = None,
) -> BuildRun:
    product = plan.product
    settings = product.settings
    layout.state_dir(repo)
    output = layout.output_dir(repo, options.output or settings.output)
    if options.output is None and not layout.inside(repo, output):
        # The analysed commit may not write outside the superproject by itself.
        raise UsageError(
            f"superbuild.yaml sets output: {settings.output}, outside the superproject: a "
            f"commit cannot choose that by itself; pass --output {output} to allow it"
        )
    run_id = run_id or new_run_id()
    log_root = layout.run_logs(repo, run_id)
    work_root = layout.run_work(repo, run_id)
    contexts: dict[str, BuildContext] = {}
    selected = set(plan.packages)
    jobs: dict[str, Job] = {}
    for name in plan.packages:
        pkg = product.packages[name]
        pipeline = registry.get(pkg.pipeline, name)
        pipeline_options = pipeline.options(pkg, settings, builder=options.builder, output=output)
        ctx = BuildContext(
            package=pkg,
            commit=plan.commits[name],
            source_repo=repo / pkg.path,
            output=output,
            work_dir=work_root / name,
            log_dir=log_root / name,
            options=pipeline_options,
            env=pkg.env,
            rebuild=(rebuilds or {}).get(name, 0),
        )
        contexts[name] = ctx
        jobs[name] = Job(
            id=name,
            dependencies=frozenset(r for r in pkg.requires if r in selected),
            task=PackageTask(ctx),
            weight=(weights or {}).get(name, 1.0),
        )
    return BuildRun(repo, plan, run_id, output, log_root, work_root, contexts, jobs)


def preview(repo: Path, plan: Plan, *, builder: str | None = None) -> dict[str, dict[str, str]]:
    """Per package of ``plan``, what its pipeline says a build would make (``plan
    --verbose``: the NEVR, the archive and its top folder), or ``{"problem": ...}`` with
    the one line the build would fail with first.  Nothing is built or written outside
    a temporary folder."""
    import tempfile

    from superbuild.pipelines.api import PipelineFailed

    product = plan.product
    found: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="superbuild-preview-") as tmp:
        scratch = Path(tmp)
        for name in plan.packages:
            pkg = product.packages[name]
            try:
                pipeline = registry.get(pkg.pipeline, name)
                ctx = BuildContext(
                    package=pkg,
                    commit=plan.commits[name],
                    source_repo=repo / pkg.path,
                    output=scratch / "output",
                    work_dir=scratch / "work" / name,
                    log_dir=scratch / "logs" / name,
                    options=pipeline.options(
                        pkg, product.settings, builder=builder, output=scratch / "output"
                    ),
                    env=pkg.env,
                )
                found[name] = dict(pipeline.preview(ctx))
            except PipelineFailed as exc:
                found[name] = {"problem": str(exc).removesuffix(f", see {exc.log}")}
            except SuperbuildError as exc:
                found[name] = {"problem": str(exc)}
    return found


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

    started = time.time()
    all_observers: list[Callable[[Event], None]] = list(observers)
    # The run's processes: cancelling them (--fail-fast, Ctrl-C) stops this run only,
    # not the metadata refresh below.
    session = Session()
    session.start_watchdog()  # nothing the run starts outlives it (even a SIGKILL)
    with session_watchdog(session):
        # The executor first: one that cannot start (a dead scheduler address, a cluster
        # that cannot run the jobs) raises before the run is recorded, its log folder
        # made or ``logs/latest`` moved; Ctrl-C meanwhile ends a run that never started.
        try:
            executor = make_executor(
                options.executor, parallel=options.jobs, session=session, **options.executor_options
            )
        except KeyboardInterrupt:
            reason = "not started: interrupted"
            never = RunResult(
                ((j, Outcome("cancelled", reason)) for j in run.jobs), interrupted=True
            )
            return BuildResult(run, never, started=started, finished=time.time())
        try:
            run.log_root.mkdir(parents=True, exist_ok=True)
            run.output.mkdir(parents=True, exist_ok=True)
            _link_latest(run)
            if recorder is not None:
                all_observers.append(recorder)
                recorder.start()
            with executor as ex:
                outcomes = run_jobs(
                    run.jobs,
                    ex,
                    parallel=options.jobs,
                    on_error=options.on_error,
                    observers=all_observers,
                )
        except BaseException as exc:
            if recorder is not None:
                recorder.finish("interrupted" if isinstance(exc, KeyboardInterrupt) else "failure")
            raise
    try:
        result = BuildResult(run, outcomes, started=started)
        # Whatever changed the output (even in a run that failed or was interrupted) is
        # journaled: refresh now rather than leave it to the next run.
        if outrepo.pending(run.output):
            try:
                outrepo.refresh_metadata(run.output)
            except SuperbuildError as exc:
                result.metadata_error = str(exc)
    except BaseException as exc:
        if recorder is not None:
            recorder.finish("interrupted" if isinstance(exc, KeyboardInterrupt) else "failure")
        raise
    result.finished = time.time()
    if recorder is not None:
        recorder.finish(result.result)
    return result
