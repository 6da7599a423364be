"""Time ``superbuild status --json`` against ``git submodule status`` on 200 real submodules.

    python bench/bench_status.py [--submodules 200] [--runs 9] [--warmup 2] [--keep DIR]

Builds, in a temporary directory (seconds: one bare remote, cloned by
``git submodule update --init --jobs 8``, which hard-links local objects):

- ``up.git``: a bare remote whose ``main`` has 3 commits;
- ``superproject/``: N submodules ``repos/sNNN`` (with ``origin/main`` remote-tracking
  branches), one manifest each (``command`` pipeline), and a build state recording 50
  successful runs.  Half the submodules record ``main~1`` (so their checkout is behind
  the remote tip and counting unpushed commits needs a ``git rev-list``), the others the
  tip; a few are dirty, have untracked files, or carry an unpushed local commit.

Then prints the median and minimum wall time of each command over ``--runs`` runs (after
``--warmup``): ``git submodule status``, ``git status --porcelain=v2 -z``,
``git ls-files -s -z`` and the venv's ``superbuild status --json`` (warm: its
unpushed-count cache in ``.git/superbuild/`` kept; and cold: deleted before each run), and
the ratios warm superbuild / ``git submodule status`` (target <= 0.5) and warm superbuild /
``git status --porcelain=v2 -z``, the one git call it needs (target <= 1.05), each "met" or
"missed".

Python bytecode is cached in the temporary directory (PYTHONPYCACHEPREFIX) even when
PYTHONDONTWRITEBYTECODE is set, as an installed superbuild has its .pyc files.
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
from pathlib import Path

from timing import time_command

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.5
#: superbuild status --json / git status --porcelain=v2 -z (the one git call it needs).
FLOOR_TARGET = 1.05
RUNS_IN_STATE = 50


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        LC_ALL="C",
        GIT_AUTHOR_NAME="Bench",
        GIT_AUTHOR_EMAIL="bench@example.invalid",
        GIT_COMMITTER_NAME="Bench",
        GIT_COMMITTER_EMAIL="bench@example.invalid",
        GIT_CONFIG_COUNT="1",
        GIT_CONFIG_KEY_0="protocol.file.allow",
        GIT_CONFIG_VALUE_0="always",
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


ENV = _env()


def git(repo: Path | None, *args: str) -> str:
    argv = ["git", *(["-C", str(repo)] if repo else []), *args]
    out = subprocess.run(argv, env=ENV, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return out.stdout.decode().strip()


def superbuild_script() -> Path:
    """The venv's ``superbuild`` console script."""
    for candidate in (Path(sys.executable).parent / "superbuild", ROOT / ".venv/bin/superbuild"):
        if candidate.is_file():
            return candidate
    raise SystemExit("no superbuild console script: run `make setup` (or pip install -e .)")


def make_superproject(root: Path, count: int) -> Path:
    seed = root / "seed"
    seed.mkdir(parents=True)
    git(seed, "init", "-q", "-b", "main")
    for i in range(3):
        (seed / "NEWS").write_text(f"release {i}\n")
        git(seed, "add", "-A")
        git(seed, "commit", "-q", "-m", f"release {i}")
    remote = root / "up.git"
    git(None, "clone", "-q", "--bare", str(seed), str(remote))
    tip, older = git(remote, "rev-parse", "main"), git(remote, "rev-parse", "main~1")

    sp = root / "superproject"
    sp.mkdir()
    git(sp, "init", "-q", "-b", "main")
    url = remote.resolve().as_uri()
    modules, entries = [], []
    (sp / "manifests").mkdir()
    for i in range(count):
        path = f"repos/s{i:03d}"
        modules.append(f'[submodule "{path}"]\n\tpath = {path}\n\turl = {url}\n')
        entries.append(f"160000 {older if i % 2 else tip}\t{path}\n")
        (sp / "manifests" / f"s{i:03d}.yaml").write_text(
            f"path: {path}\npipeline: command\ncommands: ['true']\n"
            + (f"requires: [s{i - 1:03d}]\n" if i % 10 else "")
        )
    (sp / ".gitmodules").write_text("".join(modules))
    subprocess.run(
        ["git", "-C", str(sp), "update-index", "--index-info"],
        input="".join(entries).encode(),
        env=ENV,
        check=True,
    )
    git(sp, "add", ".gitmodules", "manifests")
    git(sp, "commit", "-q", "-m", f"{count} submodules")
    git(sp, "submodule", "update", "--init", "-q", "--jobs", "8")
    for i in range(0, count, 40):  # a few of every kind
        (sp / f"repos/s{i:03d}/NEWS").write_text("dirty\n")
        (sp / f"repos/s{i + 1:03d}/untracked.txt").write_text("new\n")
        work = sp / f"repos/s{i + 2:03d}"
        (work / "NEWS").write_text("local work\n")
        git(work, "commit", "-q", "-am", "local work, not pushed")
    return sp


def record_history(sp: Path) -> None:
    """``RUNS_IN_STATE`` successful runs of every package at its current build inputs."""
    sys.path.insert(0, str(ROOT))
    from superbuild import state as st
    from superbuild.changes import load_head, resolve_range

    product, links = load_head(sp, resolve_range(sp, None, "HEAD"))
    inputs = st.build_inputs(product, links)
    with st.BuildState.open(sp) as state:
        for run in range(RUNS_IN_STATE):
            run_id = f"bench-{run:03d}"
            state.start_run(run_id, head=product.commit, base=None, packages=inputs.items())
            with st.transaction(state.db) as db:
                db.execute(
                    "UPDATE builds SET status = 'succeeded', started_at = ?, finished_at = ?, "
                    "duration_s = 1.0 WHERE run_id = ?",
                    (1_700_000_000.0 + run, 1_700_000_001.0 + run, run_id),
                )
            state.finish_run(run_id, "success")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submodules", type=int, default=200, metavar="N")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--keep", type=Path, metavar="DIR", help="build in DIR and keep it")
    args = parser.parse_args(argv)
    if args.submodules < 3:
        parser.error("--submodules must be at least 3")
    root = args.keep or Path(tempfile.mkdtemp(prefix="superbuild-bench-status-"))
    try:
        ENV["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
        start = time.perf_counter()
        sp = make_superproject(root, args.submodules)
        record_history(sp)
        print(
            f"{args.submodules} initialized submodules, {RUNS_IN_STATE} runs in the state, "
            f"made in {time.perf_counter() - start:.1f}s ({sp})"
        )
        sb = str(superbuild_script())
        rows = json.loads(
            subprocess.run(
                [sb, "status", "--json"], cwd=sp, env=ENV, capture_output=True, check=True
            ).stdout
        )
        counts = {
            key: sum(bool(r[key]) for r in rows)
            for key in ("initialized", "dirty", "checkout_differs", "unpushed", "needs_rebuild")
        }
        print("superbuild status: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        commands = {
            "git submodule status": ["git", "submodule", "status"],
            "git status --porcelain=v2 -z": ["git", "status", "--porcelain=v2", "-z"],
            "git ls-files -s -z": ["git", "ls-files", "-s", "-z"],
            "superbuild status --json": [sb, "status", "--json"],
        }
        cache = sp / ".git" / "superbuild" / "unpushed.json"
        results = {}
        for name, cmd in commands.items():
            results[name] = time_command(cmd, ENV, args.runs, args.warmup, cwd=sp)
            median, best = results[name]
            print(f"{name:40} median {median * 1000:7.1f} ms   min {best * 1000:7.1f} ms")
        cold = "superbuild status --json (no cache)"
        results[cold] = time_command(
            commands["superbuild status --json"],
            ENV,
            args.runs,
            args.warmup,
            cwd=sp,
            before=lambda: cache.unlink(missing_ok=True),
        )
        print(
            f"{cold:40} median {results[cold][0] * 1000:7.1f} ms   "
            f"min {results[cold][1] * 1000:7.1f} ms"
        )
        base = results["git submodule status"][0]
        ratio = results["superbuild status --json"][0] / base
        verdict = "met" if ratio <= TARGET else "missed"
        print(
            f"ratio superbuild / git submodule status: {ratio:.2f} (target <= {TARGET}: {verdict})"
        )
        floor = results["git status --porcelain=v2 -z"][0]
        to_floor = results["superbuild status --json"][0] / floor
        verdict = "met" if to_floor <= FLOOR_TARGET else "missed"
        print(
            f"ratio superbuild / git status --porcelain=v2 -z: {to_floor:.2f} "
            f"(target <= {FLOOR_TARGET}: {verdict})"
        )
        print(f"  without the unpushed-count cache: {results[cold][0] / base:.2f}")
        return 0  # a benchmark prints figures; it does not fail
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
