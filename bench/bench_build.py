"""Time ``superbuild build`` against GNU ``make -j N`` on the same generated DAGs.

    python bench/bench_build.py [-j 2] [--makespan-packages 200] [--overhead-packages 1000]
                                [--runs 3] [--only makespan|overhead] [--timeout 600]
                                [--keep-environment]

Two DAGs (bench/dags.py), each built by ``superbuild build --all -j N`` (``command``
pipelines, ``source: none``) and by ``make -j N`` over a Makefile generated from it:

- **makespan**: 200 packages sleeping for varied durations: light independent packages
  listed first, a chain of heavy ones last, so that the critical path is about total
  work / N.  make follows the listing order; superbuild starts the longest remaining
  critical path first.  Printed: makespan / lower bound max(critical path, work / N).
  superbuild runs twice: the first run has no recorded durations (weights 1: critical
  path by count); the second uses recorded ones when superbuild keeps them.
- **overhead**: 1,000 packages whose step is ``true``, in dependency layers.  Printed:
  wall time / packages (median of ``--runs`` runs after one warm-up).

``superbuild.yaml`` sets a stage timeout (``--timeout``, default 600 s; 0 for none), as
real settings do: a timed wait must not cost more than an untimed one.

superbuild is timed from outside: the whole command (start-up, plan, builds, report),
and the makespan of the builds alone (first step start to last package end, from the
report's ``started``/``finished`` when it has them, else from the ``command.log`` of
each package and its ``duration_s``).  The superproject's manifest cache is warmed first
(``--dry-run``), as on a developer's machine.

Python bytecode is cached in the temporary directory (PYTHONPYCACHEPREFIX) even when
PYTHONDONTWRITEBYTECODE is set, as an installed superbuild has its .pyc files;
``--keep-environment`` measures with the environment as it is.

Targets: makespan <= 1.05 x the bound and below make's; per-package overhead <= 2 x
make's.  The bench prints figures: it exits 0 whether or not the targets are met.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dags import Dag, makespan_dag, overhead_dag, write_makefile, write_superproject
from timing import timed, use_bytecode_cache

ROOT = Path(__file__).resolve().parents[1]
MAKESPAN_TARGET = 1.05
OVERHEAD_TARGET = 2.0


def _env() -> dict[str, str]:
    drop = ("GIT_", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, LC_ALL="C")
    return env


ENV = _env()


@dataclass
class SuperbuildRun:
    wall: float
    builds: float  # makespan of the package builds alone


def builds_makespan(report: dict[str, object]) -> float:
    """First start to last end of the packages of a ``--report`` file."""
    packages = report["packages"]
    assert isinstance(packages, list)
    starts, ends = [], []
    for p in packages:
        if p.get("started") is not None and p.get("finished") is not None:
            starts.append(float(p["started"]))
            ends.append(float(p["finished"]))
            continue
        # The stage log is written just before the step starts (and never after: the
        # steps print nothing), so its mtime is the step's start.
        start = (Path(p["log"]) / "command.log").stat().st_mtime
        starts.append(start)
        ends.append(start + float(p["duration_s"]))
    return max(ends) - min(starts)


def run_superbuild(superbuild: Path, repo: Path, parallel: int, count: int) -> SuperbuildRun:
    report_path = repo.parent / f"report-{repo.name}.json"
    wall = timed(
        [
            str(superbuild),
            "-C",
            str(repo),
            "build",
            "--all",
            "-j",
            str(parallel),
            "--report",
            str(report_path),
        ],
        ENV,
    )
    report = json.loads(report_path.read_text())
    statuses = [p["status"] for p in report["packages"]]
    if len(statuses) != count or set(statuses) != {"succeeded"}:
        raise SystemExit(f"superbuild built {len(statuses)} packages: {sorted(set(statuses))}")
    return SuperbuildRun(wall, builds_makespan(report))


def run_make(makefile: Path, parallel: int) -> float:
    return timed(["make", "-s", "-f", str(makefile), f"-j{parallel}", "all"], ENV, makefile.parent)


def prepare(dag: Dag, where: Path, timeout: float) -> tuple[Path, Path]:
    """The superproject (stage ``timeout`` unless 0) and the Makefile of ``dag``."""
    settings = {"defaults": f"{{timeout: {timeout:g}}}"} if timeout else {}
    repo = write_superproject(dag, where / "repo", settings=settings)
    makefile = write_makefile(dag, where / "Makefile")
    return repo, makefile


def warm_plan(superbuild: Path, repo: Path, parallel: int) -> float:
    """Fill the manifest cache; the wall time of a dry run (start-up + plan)."""
    argv = [str(superbuild), "-C", str(repo), "build", "--all", "-j", str(parallel), "--dry-run"]
    timed(argv, ENV)
    return statistics.median(timed(argv, ENV) for _ in range(3))


def bench_makespan(
    superbuild: Path, tmp: Path, count: int, parallel: int, timeout: float
) -> dict[str, tuple[float, float | None]]:
    dag = makespan_dag(count, parallel)
    repo, makefile = prepare(dag, tmp / "makespan", timeout)
    bound = dag.lower_bound(parallel)
    print(
        f"\nmakespan DAG: {len(dag)} packages, -j {parallel}: critical path "
        f"{dag.critical_path():.2f} s, total work {dag.total_work():.2f} s, "
        f"lower bound {bound:.2f} s"
    )
    dry = warm_plan(superbuild, repo, parallel)
    print(f"  superbuild --dry-run (start-up + plan): {dry:.2f} s")
    print(f"  {'':<32} {'wall s':>8} {'/ bound':>8} {'builds s':>9} {'/ bound':>8}")
    rows: dict[str, tuple[float, float | None]] = {}
    wall = run_make(makefile, parallel)
    rows["make"] = (wall / bound, None)
    print(f"  {f'make -j{parallel}':<32} {wall:8.2f} {wall / bound:8.3f}", flush=True)
    for number in (1, 2):
        run = run_superbuild(superbuild, repo, parallel, len(dag))
        label = f"superbuild run {number}" + (" (no history)" if number == 1 else "")
        rows[label] = (run.wall / bound, run.builds / bound)
        print(
            f"  {label:<32} {run.wall:8.2f} {run.wall / bound:8.3f} "
            f"{run.builds:9.2f} {run.builds / bound:8.3f}",
            flush=True,
        )
    return rows


def bench_overhead(
    superbuild: Path, tmp: Path, count: int, parallel: int, runs: int, timeout: float
) -> tuple[float, float, float]:
    dag = overhead_dag(count)
    repo, makefile = prepare(dag, tmp / "overhead", timeout)
    print(
        f"\noverhead DAG: {len(dag)} packages (step `true`), -j {parallel}, "
        f"median of {runs} runs after 1 warm-up"
    )
    dry = warm_plan(superbuild, repo, parallel)
    print(f"  superbuild --dry-run (start-up + plan): {dry:.2f} s")
    print(f"  {'':<32} {'wall s':>8} {'ms/pkg':>8} {'builds s':>9} {'ms/pkg':>8}")
    run_make(makefile, parallel)
    make = statistics.median(run_make(makefile, parallel) for _ in range(runs))
    print(f"  {f'make -j{parallel}':<32} {make:8.2f} {make / count * 1000:8.3f}", flush=True)
    run_superbuild(superbuild, repo, parallel, count)
    results = [run_superbuild(superbuild, repo, parallel, count) for _ in range(runs)]
    wall = statistics.median(r.wall for r in results)
    builds = statistics.median(r.builds for r in results)
    print(
        f"  {'superbuild':<32} {wall:8.2f} {wall / count * 1000:8.3f} "
        f"{builds:9.2f} {builds / count * 1000:8.3f}",
        flush=True,
    )
    return make / count, wall / count, builds / count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-j", "--jobs", type=int, default=2, metavar="N")
    parser.add_argument("--makespan-packages", type=int, default=200, metavar="N")
    parser.add_argument("--overhead-packages", type=int, default=1000, metavar="N")
    parser.add_argument("--runs", type=int, default=3, help="overhead runs (median)")
    parser.add_argument("--only", choices=("makespan", "overhead"))
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="stage timeout in superbuild.yaml, as real settings have one (0: none)",
    )
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv")
    parser.add_argument(
        "--keep-environment",
        action="store_true",
        help="measure with the environment as is, PYTHONDONTWRITEBYTECODE included",
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.jobs < 1:
        parser.error("--runs and -j must be >= 1")
    superbuild = args.venv / "bin" / "superbuild"
    with tempfile.TemporaryDirectory(prefix="superbuild-bench-build-") as name:
        tmp = Path(name)
        if not args.keep_environment:
            use_bytecode_cache(ENV, tmp / "pycache")
        bytecode = "cached" if "PYTHONDONTWRITEBYTECODE" not in ENV else "not written"
        limit = f"{args.timeout:g} s" if args.timeout else "none"
        print(
            f"superbuild: {superbuild}; python bytecode: {bytecode}; cpus: {os.cpu_count()}; "
            f"stage timeout: {limit}"
        )
        verdicts = []
        if args.only in (None, "makespan"):
            rows = bench_makespan(superbuild, tmp, args.makespan_packages, args.jobs, args.timeout)
            make_ratio = rows.pop("make")[0]
            for label, (wall_ratio, builds_ratio) in rows.items():
                ok = wall_ratio <= MAKESPAN_TARGET and wall_ratio < make_ratio
                verdicts.append(
                    f"makespan, {label}: {wall_ratio:.3f} x bound (builds alone "
                    f"{builds_ratio:.3f}); target <= {MAKESPAN_TARGET} and < make's "
                    f"{make_ratio:.3f}: {'met' if ok else 'missed'}"
                )
        if args.only in (None, "overhead"):
            make, wall, builds = bench_overhead(
                superbuild, tmp, args.overhead_packages, args.jobs, args.runs, args.timeout
            )
            ok = wall <= OVERHEAD_TARGET * make
            verdicts.append(
                f"overhead: superbuild {wall * 1000:.3f} ms/package (builds alone "
                f"{builds * 1000:.3f}) = {wall / make:.2f} x make's {make * 1000:.3f}; "
                f"target <= {OVERHEAD_TARGET} x: {'met' if ok else 'missed'}"
            )
        print("\ntargets:")
        for line in verdicts:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
