"""What targets cost the planning of a large product: manifests parsed (cold), read from
the cache (warm) and build keys, without ``targets:`` and with two targets.

    python bench/bench_targets.py [--submodules 1000] [--repeat 5]

Prints the medians and the ratios (two targets / none); no limit is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gen_superproject import generate

from superbuild import manifest
from superbuild.state import build_inputs
from superbuild.testing.sample import git_env, run_git

TWO_TARGETS = (
    "defaults:\n  pipeline: rpm\n  timeout: 600\njobs: 8\ntargets:\n"
    "  el9: {builder: mock, mock_config: rocky-9-x86_64, rpm_macros: {dist: .el9}}\n"
    "  fc42: {builder: mock, mock_config: fedora-42-x86_64, rpm_macros: {dist: .fc42}}\n"
)


def median_s(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(repo: Path, rev: str, repeat: int) -> dict[str, float]:
    cache = repo / ".git" / "superbuild-bench"

    def cold() -> None:
        manifest._MEMO.clear()
        manifest.load_product(repo, rev, cache_dir=None)

    def warm() -> None:
        manifest.load_product(repo, rev, cache_dir=cache)

    manifest.load_product(repo, rev, cache_dir=cache)  # fills the cache
    product = manifest.load_product(repo, rev, cache_dir=cache)
    links = {e.path: "0" * 40 for e in product.entries.values()}
    return {
        "parse (cold)": median_s(cold, repeat),
        "cache (warm)": median_s(warm, repeat),
        "build keys": median_s(lambda: build_inputs(product, links), repeat),
        "builds": float(len(build_inputs(product, links))),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submodules", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        repo = generate(Path(tmp) / "sp", args.submodules, 1)
        plain = measure(repo, "main", args.repeat)
        (repo / "superbuild.yaml").write_text(TWO_TARGETS)
        env = git_env()
        run_git(repo, "commit", "-qam", "two targets", env=env)
        targets = measure(repo, "main", args.repeat)
    print(f"{args.submodules} packages, median of {args.repeat}")
    print(f"{'':14} {'no targets':>12} {'2 targets':>12} {'ratio':>7}")
    for what in ("parse (cold)", "cache (warm)", "build keys"):
        a, b = plain[what], targets[what]
        print(f"{what:14} {a * 1000:10.1f}ms {b * 1000:10.1f}ms {b / a:6.2f}x")
    print(f"{'builds':14} {plain['builds']:12.0f} {targets['builds']:12.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
