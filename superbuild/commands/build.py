"""``superbuild build``: build the selected packages in dependency order, N at a time."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from superbuild import planning
from superbuild.build import (
    BuildOptions,
    BuildResult,
    execute,
    new_run_id,
    prepare,
)
from superbuild.commands import superproject
from superbuild.commands.planargs import print_notes, request_from_args
from superbuild.errors import EXIT_FAILED, EXIT_INTERRUPTED, UsageError
from superbuild.fileio import write_json_atomic, write_text_atomic
from superbuild.jobs import OnError
from superbuild.package import Settings
from superbuild.planning import NoPlan, Plan
from superbuild.report import junit_xml, tail

if TYPE_CHECKING:
    from rich.console import Console

    from superbuild.state import BuildState


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a build the way Ctrl-C does (running builds killed, exit 130)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def options_from(args: argparse.Namespace, settings: Settings) -> BuildOptions:
    """Build options: command line, then environment, then ``superbuild.yaml``."""
    from superbuild.executors import dask_options

    jobs = args.jobs or settings.jobs or os.cpu_count() or 1
    if jobs < 1:
        raise UsageError(f"-j must be at least 1, not {jobs}")
    executor = (
        getattr(args, "executor", None)
        or os.environ.get("SUPERBUILD_EXECUTOR")
        or settings.executor
        or "local"
    )
    address = getattr(args, "scheduler_address", None)
    if address and executor != "dask":
        raise UsageError("--scheduler-address needs --executor dask")
    options = {}
    if executor == "dask":
        options = dask_options(address) or (
            {"address": settings.scheduler_address} if settings.scheduler_address else {}
        )
    return BuildOptions(
        jobs=jobs,
        builder=args.builder,
        output=Path(args.output).resolve() if args.output else None,
        on_error=OnError.interrupt if args.fail_fast else OnError.continue_,
        executor=executor,
        executor_options=options,
    )


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
        for killed in state.recover():
            print(
                f"superbuild: note: run {killed.id} (pid {killed.pid}) was killed; "
                "recorded as interrupted",
                file=sys.stderr,
            )
        found = planning.plan(repo, request, state)
        print_notes(found.notes)
        if isinstance(found, NoPlan):
            return 0
        return _build(repo, args, found, state=state, run_id=run_id, err=err)


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

    options = options_from(args, plan.product.settings)
    run_ = prepare(repo, plan, options, weights=state.weights(plan.packages), run_id=run_id)
    recorder = None
    if not plan.packages:
        err.print("nothing to build")
    else:
        err.print(
            f"building {len(plan.packages)} package(s), {options.jobs} at a time "
            f"(run {run_.run_id}, logs in {run_.log_root})"
        )
        recorder = RunRecorder.for_packages(
            state,
            run_id,
            head=plan.product.commit,
            base=plan.changeset.base if plan.changeset else None,
            inputs=build_inputs(plan.product, plan.links),
            packages=plan.packages,
            output=run_.output,
        )
    progress = make_progress(len(plan.packages), err)
    with sigterm_as_interrupt(), progress:
        result = execute(run_, options, observers=[progress], recorder=recorder)
    report = result.report()
    write_json_atomic(run_.log_root / "report.json", report.to_json())
    if args.report:
        write_json_atomic(Path(args.report), report.to_json(), make_parents=True)
    if args.junit:
        write_text_atomic(Path(args.junit), junit_xml(report), make_parents=True)
    _show_failures(err, result)
    if plan.packages:
        err.print(summary_table(report.to_json()))
        err.print(f"output repository: {run_.output}")
    if result.metadata_error:
        err.print(f"[red]repository metadata not refreshed[/]: {result.metadata_error}")
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
        err.print(f"[red bold]{name} failed[/]: {outcome.reason}")
        lines = tail(log if log and log.is_file() else None, 20)
        if lines:
            err.print(f"[dim]--- last lines of {log} ---[/]")
            for line in lines:
                err.out(f"  {line}", highlight=False)
