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

from superbuild.build import (
    BuildOptions,
    BuildResult,
    execute,
    junit_xml,
    prepare,
    tail,
    write_json_atomic,
    write_text_atomic,
)
from superbuild.commands import superproject
from superbuild.commands.plan import plan_from_args
from superbuild.errors import EXIT_FAILED, EXIT_INTERRUPTED, UsageError
from superbuild.scheduler import OnError


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


def options_from(args: argparse.Namespace, settings_jobs: int | None) -> BuildOptions:
    jobs = args.jobs or settings_jobs or os.cpu_count() or 1
    if jobs < 1:
        raise UsageError(f"-j must be at least 1, not {jobs}")
    return BuildOptions(
        jobs=jobs,
        builder=args.builder,
        output=Path(args.output).resolve() if args.output else None,
        on_error=OnError.interrupt if args.fail_fast else OnError.continue_,
    )


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from superbuild.progress import make_progress, summary_table
    from superbuild.ui import show_plan

    repo = superproject(args)
    plan = plan_from_args(args)
    if args.dry_run:
        show_plan(plan)
        return 0
    options = options_from(args, plan.product.settings.jobs)
    run_ = prepare(repo, plan, options)
    err = Console(stderr=True, highlight=False)
    if not plan.packages:
        err.print("nothing to build")
    else:
        err.print(
            f"building {len(plan.packages)} package(s), {options.jobs} at a time "
            f"(run {run_.run_id}, logs in {run_.log_root})"
        )
    progress = make_progress(len(plan.packages), err)
    with sigterm_as_interrupt(), progress:
        result = execute(run_, options, observers=[progress])
    report = result.report()
    write_json_atomic(run_.log_root / "report.json", report)
    if args.report:
        write_json_atomic(Path(args.report), report)
    if args.junit:
        write_text_atomic(Path(args.junit), junit_xml(result))
    _show_failures(err, result)
    if plan.packages:
        err.print(summary_table(report))
        err.print(f"output repository: {run_.output}")
    if result.metadata_error:
        err.print(f"[red]repository metadata not refreshed[/]: {result.metadata_error}")
    if report["result"] == "interrupted":
        print("superbuild: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0 if report["result"] == "success" else EXIT_FAILED


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
