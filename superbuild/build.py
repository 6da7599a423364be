"""``superbuild build``: turn a plan into jobs, run them, report.

The verb's library side: it knows where things go in the superproject, makes one
:class:`~superbuild.pipelines.BuildContext` per package, hands jobs to the scheduler with
an executor, and turns outcomes into the JSON report.  It never prints: progress and
summaries are observers (``superbuild.progress``).

Where things go in the superproject: :mod:`superbuild.layout`.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from superbuild import layout, proc
from superbuild.errors import SuperbuildError, UsageError
from superbuild.jobs import Event, Job, OnError, Outcome, RunResult
from superbuild.package import job_id
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
    """Everything a build run needs, prepared before any job starts.

    ``contexts`` and ``jobs`` are keyed by job id (``pkg``, or ``pkg@target``); ``output``
    is the output root, each target's repository below it (``ctx.output``).
    """

    repo: Path
    plan: Plan
    run_id: str
    output: Path
    log_root: Path
    work_root: Path
    contexts: dict[str, BuildContext]
    jobs: dict[str, Job]

    @property
    def outputs(self) -> list[Path]:
        """The output repositories this run writes: one per target it builds for."""
        return list(dict.fromkeys(ctx.output for ctx in self.contexts.values()))


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

    def log_of(self, job: str) -> Path | None:
        """The most telling log: the failing stage's, else the build's log folder."""
        outcome = self.outcomes[job]
        exc = outcome.exception
        if isinstance(exc, PipelineFailed) and exc.log is not None:
            return Path(exc.log)
        folder = self.run.contexts[job].log_dir
        return folder if folder.exists() else None

    def report(self) -> BuildReport:
        """The run's report (JSON, JUnit and the summary all read it)."""
        plan = self.run.plan
        packages = []
        for name, target in plan.jobs:
            job = job_id(name, target)
            outcome = self.outcomes[job]
            result = outcome.result
            log = self.log_of(job)
            ctx = self.run.contexts[job]
            packages.append(
                PackageReport(
                    package=name,
                    commit=plan.commits[name],
                    pipeline=ctx.package.pipeline,
                    status=outcome.status,
                    reason=outcome.reason,
                    duration_s=outcome.duration_s,
                    log=str(log) if log else None,
                    artifacts=tuple(str(ctx.output / a) for a in result.artifacts)
                    if result
                    else (),
                    rebuild=ctx.rebuild,
                    target=target,
                    queued_s=outcome.queued_s,
                    stages=tuple(result.stage_durations.items()) if result else (),
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
            manifests=plan.product.manifests,
        )


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def _work_root(repo: Path, run_id: str) -> Path:
    """The run's scratch: ``.superbuild/work/<run>``, or, when that path is not valid
    UTF-8 (rpm refuses a spec whose expansion is not: ``_topdir`` is in it), an
    owner-named folder in the system's temporary folder (removed after a kill by the
    next run, :func:`superbuild.cleanup.remove_dead_temp`)."""
    work = layout.run_work(repo, run_id)
    if _utf8(work):
        return work
    temp = Path(tempfile.gettempdir()).absolute()
    if not _utf8(temp):
        raise UsageError(
            f"{os.fsdecode(repo)!r} and the temporary folder {os.fsdecode(temp)!r} are not "
            "UTF-8 paths, which rpm cannot build under: set TMPDIR to a UTF-8 path"
        )
    return temp / f"superbuild-run-{proc.owner_tag()}-{run_id.replace('-', '_')}"


def _utf8(path: Path) -> bool:
    try:
        os.fsencode(path.absolute()).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


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
    work_root = _work_root(repo, run_id)
    contexts: dict[str, BuildContext] = {}
    selected = set(plan.job_ids)
    jobs: dict[str, Job] = {}
    # One job per (package, target): a target is one more part of the job's id, of its
    # output repository and of its package's settings; its dependencies are the same
    # target's builds of this run.
    for name, target in plan.jobs:
        job = job_id(name, target)
        pkg = product.package_for(name, target)
        target_root = layout.target_output(output, target)
        pipeline = registry.get(pkg.pipeline, name)
        pipeline_options = pipeline.options(
            pkg, settings, builder=options.builder, output=target_root
        )
        ctx = BuildContext(
            package=pkg,
            commit=plan.commits[name],
            source_repo=repo / pkg.path,
            output=target_root,
            work_dir=work_root / job,
            log_dir=log_root / job,
            options=pipeline_options,
            env=pkg.env,
            rebuild=(rebuilds or {}).get(job, 0),
            target=target,
        )
        contexts[job] = ctx
        jobs[job] = Job(
            id=job,
            dependencies=frozenset(
                job_id(r, target) for r in pkg.requires if job_id(r, target) in selected
            ),
            task=PackageTask(ctx),
            weight=(weights or {}).get(job, 1.0),
        )
    return BuildRun(repo, plan, run_id, output, log_root, work_root, contexts, jobs)


def preview(repo: Path, plan: Plan, *, builder: str | None = None) -> dict[str, dict[str, str]]:
    """Per build of ``plan`` (by job id), what its pipeline says a build would make
    (``plan --verbose``: the NEVR, the archive and its top folder), or ``{"problem":
    ...}`` with the one line the build would fail with first.  Nothing is built or
    written outside a temporary folder."""
    import tempfile

    from superbuild.pipelines.api import PipelineFailed

    product = plan.product
    found: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="superbuild-preview-") as tmp:
        scratch = Path(tmp)
        for name, target in plan.jobs:
            job = job_id(name, target)
            pkg = product.package_for(name, target)
            try:
                pipeline = registry.get(pkg.pipeline, name)
                ctx = BuildContext(
                    package=pkg,
                    commit=plan.commits[name],
                    source_repo=repo / pkg.path,
                    output=scratch / "output",
                    work_dir=scratch / "work" / job,
                    log_dir=scratch / "logs" / job,
                    options=pipeline.options(
                        pkg, product.settings, builder=builder, output=scratch / "output"
                    ),
                    env=pkg.env,
                )
                found[job] = dict(pipeline.preview(ctx))
            except PipelineFailed as exc:
                found[job] = {"problem": str(exc).removesuffix(f", see {exc.log}")}
            except SuperbuildError as exc:
                found[job] = {"problem": str(exc)}
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
            for output in (run.output, *run.outputs):
                output.mkdir(parents=True, exist_ok=True)
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
        # journaled: refresh now rather than leave it to the next run.  Each target's
        # repository has its own journal, lock and metadata.
        errors = []
        for output in run.outputs:
            if outrepo.pending(output):
                try:
                    outrepo.refresh_metadata(output)
                except SuperbuildError as exc:
                    errors.append(str(exc))
        result.metadata_error = "; ".join(errors) or None
    except BaseException as exc:
        if recorder is not None:
            recorder.finish("interrupted" if isinstance(exc, KeyboardInterrupt) else "failure")
        raise
    result.finished = time.time()
    if recorder is not None:
        recorder.finish(result.result)
    return result
