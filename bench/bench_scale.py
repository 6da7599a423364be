"""How superbuild's read-only verbs grow with the product: 1,000 -> 10,000 packages.

    python bench/bench_scale.py [--small 1000] [--large 10000] [--runs 5] [--warmup 1]
                                [--status-small 100] [--status-large 1000] [--no-status]

For each size N (``--small``, ``--large``) a superproject of N submodules, N manifests
and 2N commits is generated (bench/gen_superproject.py: 10,000 submodules and 20,000
commits by default for the large one), then timed (median of ``--runs`` after
``--warmup``, the venv's ``superbuild``, bytecode cached):

- ``changed --format json`` warm (manifests cache present) and cold (``<git dir>/superbuild/``
  deleted before each run),
- ``plan --all``, ``graph --format json``;

and ``status --json`` on superprojects whose submodules are all initialized
(bench/bench_status.py's, ``--status-small`` and ``--status-large`` of them: 100 and
1,000).  Prints each time, its growth (large / small) against the size's growth, and
"met" when it grows linearly or better (growth <= size factor), else "missed".

Run time: about 3-5 minutes on 2 cores (the 10,000-package generation takes about 20 s,
the 1,000 initialized submodules about a minute, the cold ``changed`` runs parse 10,000
manifests); ``--no-status`` skips the status part.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import bench_status
from gen_superproject import generate
from timing import time_command, use_bytecode_cache

ROOT = Path(__file__).resolve().parents[1]
ENV = bench_status.ENV


def _git_dir(repo: Path) -> Path:
    out = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--absolute-git-dir"],
        capture_output=True,
        check=True,
        env=ENV,
    )
    return Path(out.stdout.decode().strip())


def measure_product(repo: Path, superbuild: str, runs: int, warmup: int) -> dict[str, float]:
    cache = _git_dir(repo) / "superbuild"

    def drop() -> None:
        shutil.rmtree(cache, ignore_errors=True)

    cases: dict[str, tuple[list[str], Callable[[], None] | None]] = {
        "changed --format json (warm)": (["changed", "--format", "json"], None),
        "changed --format json (cold)": (["changed", "--format", "json"], drop),
        "plan --all": (["plan", "--all"], None),
        "graph --format json": (["graph", "--format", "json"], None),
    }
    found = {}
    for label, (args, before) in cases.items():
        median, _ = time_command(
            [superbuild, "-C", str(repo), *args], ENV, runs, warmup, before=before
        )
        found[label] = median
        print(f"    {label:<34} {median * 1000:9.1f} ms", flush=True)
    return found


def measure_status(root: Path, count: int, superbuild: str, runs: int, warmup: int) -> float:
    start = time.perf_counter()
    sp = bench_status.make_superproject(root, count)
    print(f"  {count} initialized submodules made in {time.perf_counter() - start:.1f}s")
    median, _ = time_command([superbuild, "status", "--json"], ENV, runs, warmup, cwd=sp)
    print(f"    {'status --json':<34} {median * 1000:9.1f} ms", flush=True)
    return median


def verdict(label: str, small: float, large: float, factor: float) -> str:
    growth = large / small
    met = "met" if growth <= factor else "missed"
    return f"  {label:<34} x{growth:6.2f} (size x{factor:g}; linear or better) {met}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=10000)
    parser.add_argument("--status-small", type=int, default=100)
    parser.add_argument("--status-large", type=int, default=1000)
    parser.add_argument("--no-status", action="store_true")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args(argv)
    superbuild = str(bench_status.superbuild_script())
    with tempfile.TemporaryDirectory(prefix="superbuild-bench-scale-") as tmp:
        use_bytecode_cache(ENV, Path(tmp) / "pycache")
        times: dict[int, dict[str, float]] = {}
        for size in (args.small, args.large):
            repo = Path(tmp) / f"sp{size}"
            start = time.perf_counter()
            generate(repo, size, 2 * size)
            print(
                f"{size} submodules/manifests, {2 * size} commits: generated in "
                f"{time.perf_counter() - start:.1f}s",
                flush=True,
            )
            times[size] = measure_product(repo, superbuild, args.runs, args.warmup)
            shutil.rmtree(repo, ignore_errors=True)
        status: dict[int, float] = {}
        if not args.no_status:
            for count in (args.status_small, args.status_large):
                status[count] = measure_status(
                    Path(tmp) / f"status{count}", count, superbuild, args.runs, args.warmup
                )
        factor = args.large / args.small
        print(f"growth from {args.small} to {args.large} packages:")
        for label in times[args.small]:
            print(verdict(label, times[args.small][label], times[args.large][label], factor))
        if status:
            print(
                verdict(
                    f"status --json ({args.status_small} -> {args.status_large})",
                    status[args.status_small],
                    status[args.status_large],
                    args.status_large / args.status_small,
                )
            )
    return 0  # a benchmark prints figures; it does not fail


if __name__ == "__main__":
    sys.exit(main())
