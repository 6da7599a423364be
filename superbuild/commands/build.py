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

from superbuild.build import (
    BuildOptions,
    BuildResult,
    execute,
    new_run_id,
    plan_links,
    prepare,
)
from superbuild.commands import superproject
from superbuild.commands.plan import options_from as selection_options
from superbuild.commands.plan import plan_from_args
from superbuild.errors import EXIT_FAILED, EXIT_INTERRUPTED, UsageError
from superbuild.fileio import write_json_atomic, write_text_atomic
from superbuild.jobs import OnError
from superbuild.package import Settings
from superbuild.report import junit_xml, tail
from superbuild.selection import Plan, SelectionOptions, make_plan

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


#: Options that choose packages; ``--retry-failed`` takes its packages from the state.
_SELECTION_OPTIONS = (
    ("base", "--base"),
    ("all", "--all"),
    ("packages_select", "--packages-select"),
    ("packages_up_to", "--packages-up-to"),
    ("packages_above", "--packages-above"),
    ("packages_skip", "--packages-skip"),
    ("since_last_success", "--since-last-success"),
)


def check_state_options(args: argparse.Namespace) -> None:
    """Refuse combinations that make no sense with ``--retry-failed``/``--since-last-success``."""
    if getattr(args, "retry_failed", False):
        clashes = [opt for dest, opt in _SELECTION_OPTIONS if getattr(args, dest, None)]
        if clashes:
            raise UsageError(
                f"--retry-failed rebuilds what the last run did not finish: "
                f"it cannot be combined with {', '.join(clashes)}"
            )
    if getattr(args, "since_last_success", False):
        for dest, opt in (("base", "--base"), ("all", "--all")):
            if getattr(args, dest, None):
                raise UsageError(f"--since-last-success cannot be combined with {opt}")


def plan_since_last_success(repo: Path, args: argparse.Namespace) -> Plan:
    """The plan of ``--since-last-success``: for ``build``, and for ``plan`` to reuse.

    Affected = packages whose build key differs from their last successful build (see
    :func:`superbuild.state.since_last_success`) plus their dependents, at ``--head``;
    ``--packages-select/-up-to/-above/-skip`` narrow it as they narrow a range's
    affected set.
    """
    from superbuild.changes import load_head, resolve_range
    from superbuild.state import affected_since_last_success

    product, links = load_head(repo, resolve_range(repo, None, args.head))
    found = affected_since_last_success(repo, product, links)
    narrowed = make_plan(product, selection_options(args), links)  # validates the names
    chosen = set(narrowed.packages) & set(found.affected)
    return Plan(
        product,
        product.graph.waves(chosen),
        [n for n in narrowed.skipped if n in found.affected],
        "affected",
        None,
        {n: narrowed.commits[n] for n in chosen},
    )


def plan_retry_failed(repo: Path, head: str, state: BuildState | None) -> Plan | None:
    """The plan of ``--retry-failed`` at ``head``, or None (message printed) if nothing to retry.

    The last run's failed, skipped and cancelled packages; names no longer in the
    product are dropped with a warning.
    """
    from superbuild.changes import load_head, resolve_range

    last = state.last_run() if state is not None else None
    if state is None or last is None:
        print("nothing to retry: no build recorded in this superproject", file=sys.stderr)
        return None
    names = state.unfinished(last.id)
    if not names:
        print(
            f"nothing to retry: the last run ({last.id}, {last.result}) finished every package",
            file=sys.stderr,
        )
        return None
    product, links = load_head(repo, resolve_range(repo, None, head))
    gone = [n for n in names if n not in product.packages]
    if gone:
        print(
            f"superbuild: warning: not in the product any more, not retried: {', '.join(gone)}",
            file=sys.stderr,
        )
    kept = [n for n in names if n in product.packages]
    if not kept:
        print("nothing to retry", file=sys.stderr)
        return None
    print(
        f"retrying {len(kept)} package(s) the last run ({last.id}, {last.result}) "
        f"did not finish: {', '.join(kept)}",
        file=sys.stderr,
    )
    return make_plan(product, SelectionOptions(select=kept), links)


def _select(repo: Path, args: argparse.Namespace, state: BuildState | None) -> Plan | None:
    if getattr(args, "retry_failed", False):
        return plan_retry_failed(repo, args.head, state)
    return plan_from_args(args)  # a range, a selection, or --since-last-success


def run(args: argparse.Namespace) -> int:
    from superbuild.state import BuildLock, BuildState
    from superbuild.ui import console as ui_console

    repo = superproject(args)
    check_state_options(args)
    if args.dry_run:
        from superbuild.ui import show_plan

        with BuildState.read(repo) as state:
            plan = _select(repo, args, state)
        if plan is not None:
            show_plan(plan)
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
        plan = _select(repo, args, state)
        if plan is None:
            return 0
        return _build(repo, args, plan, state=state, run_id=run_id, err=err)


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
    from superbuild.state import build_inputs

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
        recorder = state.recorder(
            run_id,
            head=plan.product.commit,
            base=plan.changeset.base if plan.changeset else None,
            inputs=build_inputs(plan.product, plan_links(repo, plan)),
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
