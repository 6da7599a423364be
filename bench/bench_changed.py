"""Time ``superbuild changed`` on a large superproject against its floor.

    python bench/bench_changed.py [--repo DIR] [--runs 15] [--warmup 3]
                                  [--submodules 1000] [--commits 2000] [--keep-environment]

Without ``--repo`` a superproject is generated (bench/gen_superproject.py) in a
temporary directory.  Prints the median and minimum wall time of each command over
``--runs`` runs after ``--warmup`` unmeasured ones:

- the floor: ``python -c pass`` (the venv's python) and raw ``git diff-tree -r -z``,
- ``superbuild changed --format json`` for one commit (``--head HEAD``) and for a long
  range (``--base HEAD~500``), warm (cache present) and cold (``<git dir>/superbuild/``
  deleted before each run).

Python bytecode is cached in the temporary directory (PYTHONPYCACHEPREFIX) even when
PYTHONDONTWRITEBYTECODE is set, as an installed superbuild has its .pyc files;
``--keep-environment`` measures with the environment as it is.

The targets: warm one-commit time <= 2.0 x (python -c pass + diff-tree of one commit),
warm HEAD~500 <= 2.0 x (python -c pass + diff-tree HEAD~500), cold one-commit <= 100 ms;
each is printed "met" or "missed" (the bench exits 0 either way).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from gen_superproject import generate
from timing import time_command, use_bytecode_cache

ROOT = Path(__file__).resolve().parents[1]
TARGET = 2.0
COLD_TARGET_MS = 100.0


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, LC_ALL="C")
    return env


ENV = _env()


def superbuild_works(superbuild: Path) -> bool:
    result = subprocess.run(
        [str(superbuild), "changed", "--help"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=ENV,
        check=False,
    )
    return result.returncode == 0


def describe(superbuild: Path, repo: Path, extra: Sequence[str]) -> str:
    """A one-line summary of the JSON report, to show the bench measures real work."""
    out = subprocess.run(
        [str(superbuild), "-C", str(repo), "changed", "--format", "json", *extra],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=ENV,
        check=True,
    ).stdout
    report = json.loads(out)
    sizes = {k: len(v) for k, v in report.items() if isinstance(v, list)}
    return ", ".join(f"{k}={n}" for k, n in sizes.items())


def run(repo: Path, venv: Path, runs: int, warmup: int) -> int:
    python = venv / "bin" / "python"
    superbuild = venv / "bin" / "superbuild"
    git_dir = Path(
        subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--absolute-git-dir"],
            capture_output=True,
            check=True,
            env=ENV,
        )
        .stdout.decode()
        .strip()
    )
    cache = git_dir / "superbuild"
    probe = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "-q", "--verify", "HEAD~500^{commit}"],
        capture_output=True,
        check=False,
        env=ENV,
    )
    if probe.returncode != 0:
        raise SystemExit(f"{repo}: needs more than 500 commits (the bench compares with HEAD~500)")

    def drop_cache() -> None:
        shutil.rmtree(cache, ignore_errors=True)

    rows: dict[str, tuple[float, float]] = {}

    def measure(label: str, argv: Sequence[str], before: Callable[[], None] | None = None) -> None:
        rows[label] = time_command(argv, ENV, runs, warmup, before=before)
        median, low = rows[label]
        print(f"  {label:<44} {median * 1000:8.1f} {low * 1000:8.1f}", flush=True)

    bytecode = "cached" if "PYTHONDONTWRITEBYTECODE" not in ENV else "not written"
    print(f"repo: {repo}  ({runs} runs after {warmup} warm-up, milliseconds)")
    print(f"python bytecode: {bytecode}")
    print(f"  {'command':<44} {'median':>8} {'min':>8}")
    git = ["git", "-C", str(repo), "diff-tree", "-r", "-z"]
    measure("python -c pass", [str(python), "-c", "pass"])
    # What any Python CLI of this shape pays before it does anything: the interpreter
    # plus argparse, json, subprocess and pathlib (the standard library alone).
    measure(
        "python -c 'import argparse,json,subprocess,pathlib'",
        [str(python), "-c", "import argparse, json, subprocess, pathlib"],
    )
    measure(
        "python -c 'import superbuild.commands.changed'",
        [str(python), "-c", "import superbuild.cli, superbuild.commands.changed"],
    )
    measure("git diff-tree -r -z HEAD~1 HEAD", [*git, "HEAD~1", "HEAD"])
    measure("git diff-tree -r -z HEAD~500 HEAD", [*git, "HEAD~500", "HEAD"])
    if not superbuild_works(superbuild):
        print(f"{superbuild} changed is not available yet: superbuild rows skipped")
        return 0
    changed = [str(superbuild), "-C", str(repo), "changed", "--format", "json"]
    cases = {"--head HEAD": ["--head", "HEAD"], "--base HEAD~500": ["--base", "HEAD~500"]}
    for name, extra in cases.items():
        measure(f"superbuild changed {name} (warm)", [*changed, *extra])
        measure(f"superbuild changed {name} (cold)", [*changed, *extra], drop_cache)
    for name, extra in cases.items():
        print(f"  report of {name}: {describe(superbuild, repo, extra)}")

    floor = rows["python -c pass"][0] + rows["git diff-tree -r -z HEAD~1 HEAD"][0]
    ratio = rows["superbuild changed --head HEAD (warm)"][0] / floor
    floor_500 = rows["python -c pass"][0] + rows["git diff-tree -r -z HEAD~500 HEAD"][0]
    ratio_500 = rows["superbuild changed --base HEAD~500 (warm)"][0] / floor_500

    def met(ok: bool) -> str:
        return "met" if ok else "missed"

    print(
        f"ratio warm one commit / (python -c pass + diff-tree one commit): "
        f"{ratio:.2f} (target <= {TARGET}) {met(ratio <= TARGET)}"
    )
    print(
        f"ratio warm HEAD~500 / (python -c pass + diff-tree HEAD~500): {ratio_500:.2f} "
        f"(target <= {TARGET}) {met(ratio_500 <= TARGET)}"
    )
    cold = rows["superbuild changed --head HEAD (cold)"][0] * 1000
    print(
        f"cold one commit: {cold:.0f} ms (target <= {COLD_TARGET_MS:.0f} ms) {met(cold <= COLD_TARGET_MS)}"
    )
    stdlib = rows["python -c 'import argparse,json,subprocess,pathlib'"][0]
    imports = rows["python -c 'import superbuild.commands.changed'"][0]
    warm = rows["superbuild changed --head HEAD (warm)"][0]
    print(
        f"where the warm one-commit time goes: interpreter {rows['python -c pass'][0] * 1000:.1f} ms, "
        f"+ standard-library imports {(stdlib - rows['python -c pass'][0]) * 1000:.1f} ms, "
        f"+ superbuild's own imports {(imports - stdlib) * 1000:.1f} ms, "
        f"+ work (git processes, cache, JSON) {(warm - imports) * 1000:.1f} ms"
    )
    return 0  # a benchmark prints figures; it does not fail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, help="reuse this superproject instead of generating")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--submodules", type=int, default=1000)
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv")
    parser.add_argument(
        "--keep-environment",
        action="store_true",
        help="measure with the environment as is, PYTHONDONTWRITEBYTECODE included",
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 1:
        parser.error("--runs and --warmup must be >= 1")
    if args.repo is None and args.commits <= 500:
        parser.error("--commits must be > 500 (the bench compares with HEAD~500)")
    with tempfile.TemporaryDirectory(prefix="superbuild-bench-") as tmp:
        if not args.keep_environment:
            use_bytecode_cache(ENV, Path(tmp) / "pycache")
        if args.repo is not None:
            return run(args.repo.resolve(), args.venv, args.runs, args.warmup)
        repo = Path(tmp) / "superproject"
        start = time.perf_counter()
        generate(repo, args.submodules, args.commits)
        print(
            f"generated {args.submodules} submodules, {args.commits} commits "
            f"in {time.perf_counter() - start:.2f}s"
        )
        return run(repo, args.venv, args.runs, args.warmup)


if __name__ == "__main__":
    sys.exit(main())
