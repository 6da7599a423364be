"""Time the Dask executor against the local one on the same generated DAGs.

    python bench/bench_dask.py [--workers 2] [--makespan-packages 200]
                               [--overhead-packages 1000] [--only makespan|overhead]

Two DAGs (``bench/dags.py`` when present, else the fallback generators below), each built
through the library (``build.prepare`` + ``build.execute``, ``command`` pipelines with
``source: none``) by ``--executor local -j N`` and by ``--executor dask -j N`` on an
embedded LocalCluster of N single-threaded worker processes on this machine:

- **makespan**: 200 packages sleeping 0.03-0.40 s, a heavy chain among light
  independent ones.  Printed: makespan (first job start to last job end) / lower bound
  max(critical path, total work / N).  Expected durations are given as weights, as a
  past run's would be.
- **overhead**: 1,000 packages whose step is ``true``, in dependency layers.  Printed:
  makespan / packages x N (time a slot spends per package: scheduling, inputs and
  outputs, transport, process start).

- **breakdown** (with overhead): where a Dask package's time goes, one job at a time
  on the embedded cluster: preparing and pickling its inputs, ``client.submit``, the
  round trip of a no-op task, the package's build on a worker (``true``: a process
  start and the logs packed) and, for comparison, the same package run locally.

Each figure is the median of ``--runs`` runs (default 3).  Cluster start and stop are
printed apart: they are paid once per build, not per package.
Targets: dask makespan <= 1.10 x the bound; dask overhead per package <= 5 x local's.
The bench prints figures and exits 0 whether or not the targets are met.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, os.fspath(Path(__file__).resolve().parent))

from superbuild.build import BuildOptions, execute, prepare
from superbuild.changes import load_head, resolve_range
from superbuild.jobs import Event, JobFinished, JobStarted
from superbuild.planning import PlanRequest, select

MAKESPAN_TARGET = 1.10
OVERHEAD_TARGET = 5.0

dags: Any = None
with contextlib.suppress(ImportError):  # the shared generators (bench/dags.py), if present
    dags = importlib.import_module("dags")


@dataclass(frozen=True)
class Pkg:
    name: str
    requires: tuple[str, ...]
    step: str
    seconds: float


def _fallback_makespan(count: int, parallel: int) -> list[Pkg]:
    rng = random.Random(0)
    chain = max(1, count // 5)
    heavy = [round(rng.uniform(0.20, 0.40), 2) for _ in range(chain)]
    light = [rng.uniform(0.03, 0.12) for _ in range(count - chain)]
    scale = (parallel - 1) * sum(heavy) / sum(light) if light else 1.0
    pkgs = [
        Pkg(f"p{i:03d}", (), f"sleep {s * scale:.2f}", round(s * scale, 2))
        for i, s in enumerate(light)
    ]
    previous: tuple[str, ...] = ()
    for j, s in enumerate(heavy):
        name = f"p{len(light) + j:03d}"
        pkgs.append(Pkg(name, previous, f"sleep {s:.2f}", s))
        previous = (name,)
    return pkgs


def _fallback_overhead(count: int) -> list[Pkg]:
    rng = random.Random(0)
    pkgs: list[Pkg] = []
    for i in range(count):
        layer = i * 10 // count
        below = [p.name for p in pkgs if int(p.name[1:]) * 10 // count == layer - 1]
        reqs = (
            tuple(sorted(set(rng.sample(below, min(len(below), rng.randint(1, 3))))))
            if below
            else ()
        )
        pkgs.append(Pkg(f"p{i:04d}", reqs, "true", 0.0))
    return pkgs


def _fallback_write(pkgs: Sequence[Pkg], dest: Path) -> Path:
    import hashlib
    import json
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    dest.mkdir(parents=True)
    git = ["git", "-C", os.fspath(dest)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True, env=env)
    (dest / "manifests").mkdir()
    for p in pkgs:
        req = f"requires: [{', '.join(p.requires)}]\n" if p.requires else ""
        (dest / "manifests" / f"{p.name}.yaml").write_text(
            f"path: repos/{p.name}\npipeline: command\nsource: none\n{req}"
            f"commands: [{json.dumps(p.step)}]\n"
        )
        sha = hashlib.sha1(p.name.encode()).hexdigest()
        subprocess.run(
            [*git, "update-index", "--add", "--cacheinfo", f"160000,{sha},repos/{p.name}"],
            check=True,
            env=env,
        )
    subprocess.run([*git, "add", "manifests"], check=True, env=env)
    ident = ["-c", "user.name=Bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run([*git, *ident, "commit", "-q", "-m", "dag"], check=True, env=env)
    return dest


def make_dag(kind: str, count: int, parallel: int, dest: Path) -> list[Pkg]:
    """Generate the DAG ``kind`` and its superproject at ``dest``; its packages."""
    if dags is not None:
        dag = dags.makespan_dag(count, parallel) if kind == "makespan" else dags.overhead_dag(count)
        dags.write_superproject(dag, dest)
        return [Pkg(p.name, p.requires, p.step, p.seconds) for p in dag.packages]
    pkgs = _fallback_makespan(count, parallel) if kind == "makespan" else _fallback_overhead(count)
    _fallback_write(pkgs, dest)
    return pkgs


def lower_bound(pkgs: Sequence[Pkg], parallel: int) -> tuple[float, float, float]:
    """(critical path, total work, max of critical path and work / N)."""
    longest: dict[str, float] = {}
    for p in pkgs:
        longest[p.name] = p.seconds + max((longest[r] for r in p.requires), default=0.0)
    critical = max(longest.values(), default=0.0)
    work = sum(p.seconds for p in pkgs)
    return critical, work, max(critical, work / parallel)


@dataclass
class Timing:
    makespan: float  # first job start to last job end
    wall: float  # the whole execute(), cluster start and stop included
    failed: int


class Span:
    """Observer: first JobStarted and last JobFinished times."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.last = 0.0
        self.failed = 0

    def __call__(self, event: Event) -> None:
        now = time.monotonic()
        if isinstance(event, JobStarted) and self.first is None:
            self.first = now
        elif isinstance(event, JobFinished):
            self.last = now
            self.failed += event.status != "succeeded"


def build(
    repo: Path,
    executor: str,
    parallel: int,
    weights: dict[str, float],
    run: str,
    in_flight: int | None = None,
) -> Timing:
    product, links = load_head(repo, resolve_range(repo, None, "HEAD"))
    plan = select(product, PlanRequest(mode="all"), links)
    options = BuildOptions(
        jobs=in_flight or parallel,
        executor=executor,
        output=repo / f".superbuild/output-{run}",
        executor_options={"n_workers": parallel} if executor == "dask" else {},
    )
    prepared = prepare(repo, plan, options, weights=weights, run_id=run)
    span = Span()
    start = time.monotonic()
    execute(prepared, options, observers=[span])
    wall = time.monotonic() - start
    return Timing(span.last - (span.first or span.last), wall, span.failed)


def _once(repo: Path, executor: str, parallel: int, weights: dict[str, float], i: int) -> Timing:
    return build(repo, executor, parallel, weights, f"{repo.name}-{executor}-{i}")


def median_run(runs: int, once: Callable[[int], Timing]) -> Timing:
    """Run ``once`` ``runs`` times; the run of median makespan (this machine may be shared)."""
    timings = sorted((once(i) for i in range(max(1, runs))), key=lambda t: t.makespan)
    return timings[len(timings) // 2]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", "-j", type=int, default=2)
    parser.add_argument("--makespan-packages", type=int, default=200)
    parser.add_argument("--overhead-packages", type=int, default=1000)
    parser.add_argument("--only", choices=["makespan", "overhead", "breakdown"])
    parser.add_argument("--runs", type=int, default=3, help="runs per executor (median shown)")
    args = parser.parse_args(argv)
    n = args.workers
    print(f"# {os.cpu_count()} CPUs, -j {n}, dask: LocalCluster of {n} worker processes")
    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        root = Path(tmp)
        if args.only in (None, "makespan"):
            pkgs = make_dag("makespan", args.makespan_packages, n, root / "makespan")
            critical, work, bound = lower_bound(pkgs, n)
            weights = {p.name: p.seconds for p in pkgs}
            print(
                f"\nmakespan DAG: {len(pkgs)} packages, work {work:.2f} s, critical path "
                f"{critical:.2f} s, lower bound max(cp, work/{n}) = {bound:.2f} s"
            )
            for executor in ("local", "dask"):
                once = functools.partial(_once, root / "makespan", executor, n, weights)
                t = median_run(args.runs, once)
                ratio = t.makespan / bound
                met = "met" if ratio <= MAKESPAN_TARGET else "missed"
                verdict = (
                    f"  (target <= {MAKESPAN_TARGET:.2f}: {met})" if executor == "dask" else ""
                )
                print(
                    f"  {executor:5}  makespan {t.makespan:6.2f} s = {ratio:.3f} x bound, "
                    f"overhead/package {(t.makespan * n - work) / len(pkgs) * 1000:5.1f} ms, "
                    f"wall {t.wall:6.2f} s, failed {t.failed}{verdict}"
                )
        if args.only in (None, "overhead"):
            pkgs = make_dag("overhead", args.overhead_packages, n, root / "overhead")
            print(f"\noverhead DAG: {len(pkgs)} packages, step `true`")
            per: dict[str, float] = {}
            for executor in ("local", "dask"):
                t = median_run(
                    args.runs, functools.partial(_once, root / "overhead", executor, n, {})
                )
                per[executor] = t.makespan * n / len(pkgs)
                print(
                    f"  {executor:5}  makespan {t.makespan:6.2f} s, "
                    f"per package (x {n} slots) {per[executor] * 1000:5.1f} ms, "
                    f"wall {t.wall:6.2f} s (cluster start/stop {t.wall - t.makespan:4.2f} s), "
                    f"failed {t.failed}"
                )
            ratio = per["dask"] / per["local"]
            met = "met" if ratio <= OVERHEAD_TARGET else "missed"
            print(
                f"  dask / local overhead per package: {ratio:.2f} x (target <= {OVERHEAD_TARGET:g}: {met})"
            )
        if args.only in (None, "breakdown"):
            if not (root / "overhead").exists():
                make_dag("overhead", args.overhead_packages, n, root / "overhead")
            breakdown(root / "overhead", n)
    return 0


def _noop(*, session: Any) -> None:
    return None


def _ms(seconds: float, count: int) -> str:
    return f"{seconds / max(1, count) * 1000:6.2f} ms"


def breakdown(repo: Path, parallel: int, count: int = 100) -> None:
    """Per job, one at a time: what each part of a Dask package build costs."""
    import cloudpickle

    from superbuild import worker
    from superbuild.executors.dask import DaskExecutor
    from superbuild.jobs import Placement, run_here
    from superbuild.proc import Session

    product, links = load_head(repo, resolve_range(repo, None, "HEAD"))
    plan = select(product, PlanRequest(mode="all"), links)
    options = BuildOptions(jobs=parallel, output=repo / ".superbuild/output-breakdown")
    jobs = list(prepare(repo, plan, options, run_id="breakdown").jobs.values())[:count]
    session = Session()
    start = time.perf_counter()
    works = [job.task.prepare(Placement(remote=True), session) for job in jobs]
    prepared = time.perf_counter() - start
    start = time.perf_counter()
    size = sum(len(cloudpickle.dumps((w.fn, w.args))) for w in works)
    pickled = time.perf_counter() - start
    start = time.perf_counter()
    for job in jobs:
        run_here(job.task, session)
    local = time.perf_counter() - start
    print(f"\nbreakdown, one job at a time ({len(jobs)} packages, step `true`):")
    print(f"  prepare (coordinator)          {_ms(prepared, len(jobs))}")
    print(f"  pickle the work                {_ms(pickled, len(jobs))} ({size // len(jobs)} bytes)")
    with DaskExecutor(parallel, n_workers=parallel) as ex:
        client = ex.client
        client.submit(worker.run, _noop, (), "warm", pure=False).result()
        start = time.perf_counter()
        futures = [
            client.submit(worker.run, _noop, (), f"{ex.token}s{i}", pure=False)
            for i in range(len(jobs))
        ]
        submitted = time.perf_counter() - start
        client.gather(futures)
        del futures
        start = time.perf_counter()
        for i in range(len(jobs)):
            client.submit(worker.run, _noop, (), f"{ex.token}n{i}", pure=False).result()
        round_trip = time.perf_counter() - start
        start = time.perf_counter()
        for w in works:
            client.submit(worker.run, w.fn, w.args, f"{ex.token}b", pure=False).result()
        remote = time.perf_counter() - start
    print(f"  client.submit                  {_ms(submitted, len(jobs))}")
    print(f"  no-op task round trip          {_ms(round_trip, len(jobs))}")
    print(f"  the build on a worker + trip   {_ms(remote, len(jobs))}")
    print(f"  the whole package, locally     {_ms(local, len(jobs))}")


if __name__ == "__main__":
    sys.exit(main())
