"""Build the selected packages (selection as superbuild plan) in dependency order,
N at a time.  Logs go to .superbuild/logs/<run>, packages to the output repository.

Options come from the command line, then the environment (SUPERBUILD_EXECUTOR,
SUPERBUILD_SCHEDULER_ADDRESS), then superbuild.yaml.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from rich.markup import escape

from superbuild import layout, planning
from superbuild.build import BuildOptions, BuildResult, execute, new_run_id, prepare
from superbuild.cleanup import remove_stale_scratch
from superbuild.commands import add_range, add_selection, add_targets, plural, superproject
from superbuild.commands.planargs import print_notes, request_from_args
from superbuild.config import BuildConfig, BuildFlags, resolve
from superbuild.errors import EXIT_FAILED, EXIT_INTERRUPTED
from superbuild.fileio import write_json_atomic, write_text_atomic
from superbuild.jobs import OnError
from superbuild.planning import NoPlan, Plan
from superbuild.report import junit_xml, tail

if TYPE_CHECKING:
    from rich.console import Console

    from superbuild.state import BuildState


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_range(p)
    add_selection(p)
    add_targets(p)
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        metavar="N",
        help="packages built at a time; 0: the CPU count (default: settings jobs, else the CPU count)",
    )
    p.add_argument(
        "--builder",
        choices=["rpmbuild", "mock"],
        help="rpm pipeline: what builds binary RPMs "
        "(default: the manifest or settings, else mock if installed, else rpmbuild)",
    )
    p.add_argument(
        "--output",
        metavar="DIR",
        help="the output repository (default: settings output, else .superbuild/output)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--keep-going",
        action="store_true",
        help="after a failure, build what does not depend on it (the default)",
    )
    mode.add_argument(
        "--fail-fast", action="store_true", help="stop everything at the first failure"
    )
    p.add_argument("--report", metavar="FILE", help="write a JSON report to FILE")
    p.add_argument("--junit", metavar="FILE", help="write a JUnit XML report to FILE")
    p.add_argument("--dry-run", action="store_true", help="print the plan and build nothing")
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="rebuild what the last run did not finish (failed, skipped, cancelled)",
    )
    p.add_argument(
        "--executor",
        choices=["local", "dask"],
        help="where jobs run (default: $SUPERBUILD_EXECUTOR, else executor: in superbuild.yaml, else local)",
    )
    p.add_argument(
        "--scheduler-address",
        metavar="ADDR",
        help="dask: the scheduler to connect to, e.g. tcp://10.0.0.5:8786 "
        "(default: $SUPERBUILD_SCHEDULER_ADDRESS, else scheduler_address: in superbuild.yaml, "
        "else an embedded LocalCluster)",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        help="dask: allow a scheduler that is not on this host without TLS and a client "
        "certificate (it and its workers can run code on this host: docs/security.md)",
    )


def flags_from(args: argparse.Namespace) -> BuildFlags:
    """The build options the command line gives (see :mod:`superbuild.config`)."""
    return BuildFlags(
        jobs=args.jobs,
        builder=args.builder,
        output=args.output,
        fail_fast=args.fail_fast,
        executor=args.executor,
        scheduler_address=args.scheduler_address,
        insecure=args.insecure,
    )


def build_options(config: BuildConfig) -> BuildOptions:
    """The library's options for a resolved configuration."""
    return BuildOptions(
        jobs=config.jobs,
        builder=config.builder,
        output=config.output,
        on_error=OnError.interrupt if config.fail_fast else OnError.continue_,
        executor=config.executor,
        executor_options=config.executor_options,
    )


def executor_line(options: BuildOptions) -> str:
    """Where the jobs run: ``executor local, -j 4``, ``executor dask, scheduler ADDR``."""
    address = options.executor_options.get("address")
    if options.executor == "dask":
        where = f"scheduler {address}" if address else "embedded LocalCluster"
        return f"executor dask, {where}, -j {options.jobs}"
    return f"executor {options.executor}, -j {options.jobs}"


def building_line(
    count: int, jobs: int, run_id: str, logs: Path, targets: Sequence[str | None] = (None,)
) -> str:
    """``building 3 packages, 2 at a time (run ..., logs in ...)``; with named targets
    ``count`` is the number of jobs: ``building 4 jobs for 2 targets (el9, fc42), ...``."""
    at_a_time = f", {min(jobs, count)} at a time" if count > 1 and jobs > 1 else ""
    named = [t for t in targets if t is not None]
    what = plural(count, "package")
    if named:
        what = f"{plural(count, 'job')} for {plural(len(named), 'target')} ({', '.join(named)})"
    return f"building {what}{at_a_time} (run {run_id}, logs in {logs})"


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM, and SIGHUP (an ssh session dropping), stop a build the way Ctrl-C does:
    running builds killed, the report written, exit 130."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signals = (signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run(args: argparse.Namespace) -> int:
    from superbuild.state import BuildLock, BuildState
    from superbuild.ui import console as ui_console

    repo = superproject(args)
    request = request_from_args(args)
    if args.dry_run:
        from superbuild.ui import show_plan

        found = planning.plan(repo, request)  # reads the state only if the mode needs it
        print_notes(found.notes)
        if isinstance(found, Plan):
            show_plan(found)
        return 0
    err = ui_console(stderr=True)  # not cut to 80 columns when stderr is a CI log
    run_id = new_run_id()
    with BuildLock(repo, run_id), BuildState.open(repo) as state:
        remove_stale_scratch(repo, running=run_id)  # left by killed runs
        for killed in state.recover():
            print(
                f"superbuild: note: run {killed.id} (pid {killed.pid}) was killed; "
                "recorded as interrupted",
                file=sys.stderr,
            )
        found = planning.plan(repo, request, state)
        print_notes(found.notes)
        if isinstance(found, NoPlan):
            flags = flags_from(args)
            _recover_outputs(layout.output_dir(repo, flags.output), found.target_names, err)
            return 0
        return _build(repo, args, found, state=state, run_id=run_id, err=err)


def _recover_outputs(root: Path, targets: Sequence[str], err: Console) -> None:
    """Finish what a killed run left in each target's output repository (``targets``:
    superbuild.yaml's; none: the output root itself): a journaled refresh, dead staging."""
    from superbuild import outrepo

    for output in layout.target_outputs(root, targets):
        if outrepo.pending(output):
            err.print(
                "completing the metadata refresh a killed run left pending in "
                f"{escape(str(output))}"
            )
        outrepo.recover(output)


def _build(
    repo: Path,
    args: argparse.Namespace,
    plan: Plan,
    *,
    state: BuildState,
    run_id: str,
    err: Console,
) -> int:
    from superbuild.progress import make_progress, summary_table
    from superbuild.state import RunRecorder, build_inputs

    options = build_options(resolve(flags_from(args), plan.product.settings))
    run_ = prepare(
        repo,
        plan,
        options,
        weights=state.weights(plan.job_ids),
        run_id=run_id,
        rebuilds=state.rebuilds(plan.job_commits()),
    )
    from superbuild import preflight

    reports = {
        "--report": Path(args.report) if args.report else None,
        "--junit": Path(args.junit) if args.junit else None,
    }
    preflight.check(
        repo, run_.contexts, output=run_.output, reports=reports, remote=options.executor != "local"
    )
    _recover_outputs(run_.output, plan.product.target_names, err)
    recorder = None
    jobs = plan.job_ids
    if not jobs:
        err.print("nothing to build")
    else:
        err.print(executor_line(options), highlight=False)
        err.print(
            building_line(len(jobs), options.jobs, run_.run_id, run_.log_root, plan.target_names)
        )
        recorder = RunRecorder.for_packages(
            state,
            run_id,
            head=plan.product.commit,
            base=plan.changeset.base if plan.changeset else None,
            inputs=build_inputs(plan.product, plan.links),
            packages=jobs,
            output=run_.output,
            pool=layout.pool_root(repo),
        )
    progress = make_progress(len(jobs), err, queues=options.executor != "local")
    try:
        with sigterm_as_interrupt(), progress:
            result = execute(run_, options, observers=[progress], recorder=recorder)
    finally:
        # The run's scratch goes when it ends, however it ends (a kill: the next build).
        shutil.rmtree(run_.work_root, ignore_errors=True)
    report = result.report()
    if run_.log_root.is_dir():  # not made by a run that never started
        write_json_atomic(run_.log_root / "report.json", report.to_json())
    if args.report:
        write_json_atomic(Path(args.report), report.to_json())
    if args.junit:
        write_text_atomic(Path(args.junit), junit_xml(report))
    _show_failures(err, result)
    if plan.packages:
        err.print(summary_table(report.to_json()))
        err.print(f"output repository: {escape(str(run_.output))}")
    if result.metadata_error:
        err.print(f"[red]repository metadata not refreshed[/]: {escape(result.metadata_error)}")
    if report.result == "interrupted":
        print("superbuild: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0 if report.result == "success" else EXIT_FAILED


def _show_failures(err: object, result: BuildResult) -> None:
    from rich.console import Console

    assert isinstance(err, Console)
    for name, outcome in result.outcomes.items():
        if outcome.status != "failed":
            continue
        log = result.log_of(name)
        err.print(f"[red bold]{escape(name)} failed[/]: {escape(outcome.reason)}")
        lines = tail(log if log and log.is_file() else None, 20)
        if lines:
            err.print(f"[dim]--- last lines of {escape(str(log))} ---[/]")
            for line in lines:
                err.out(f"  {line}", highlight=False)
