"""Time ``superbuild build --all -j2`` of N real RPM packages against the plain tools' floor.

    python bench/bench_rpm.py [--packages 60] [--runs 1] [--keep DIR] [--profile]

Makes, in a temporary directory, a sample superproject
(:func:`superbuild.testing.sample.make_sample_superproject`) of N trivial noarch
packages ``bNNN`` whose requirements form a DAG with chains (``bNNN`` requires
``b(NNN-4)``, and every fifth one ``b(NNN-7)`` too: chains of N/4 packages, some joins).
Then, per run, on a fresh state and output:

- the floor: a generated Makefile run with ``make -j2`` doing per package exactly the
  plain commands (``git archive`` of the recorded commit with the ``NAME-VERSION/``
  prefix into a tar.gz, the spec from git, ``rpmbuild -bs`` in its own ``_topdir``,
  ``rpmbuild --rebuild --nodeps``, the RPMs copied into an output folder), each package
  after those it requires, then one ``createrepo_c`` per repository (rpms, srpms);
- ``superbuild build --all -j2 --builder rpmbuild`` (the venv's python, this source tree).

Prints each time (median of ``--runs``), the ratio superbuild / floor and "met" or
"missed" against the target (<= 1.10x).  ``--profile`` prints where superbuild's time
went from its stage durations in the build report (the source stage on the coordinator,
srpm, rpm, collect) and the coordinator's wall time outside them.  A run of the default
(60 packages, one run) takes about a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from superbuild.testing.sample import git_env, make_sample_superproject  # noqa: E402

TARGET = 1.10
VERSION = "1.0.0"


def requirements(count: int) -> dict[str, list[str]]:
    """Package name -> what it requires: chains of step 4, a join every fifth package."""
    deps: dict[str, list[str]] = {}
    for i in range(count):
        req = [i - 4] if i >= 4 else []
        if i % 5 == 0 and i >= 7:
            req.append(i - 7)
        deps[f"b{i:03}"] = [f"b{j:03}" for j in req]
    return deps


def make_product(root: Path, count: int) -> Path:
    folder = root / "manifests"
    folder.mkdir(parents=True)
    for name, req in requirements(count).items():
        text = f"path: repos/{name}\nversion: {VERSION}\n"
        if req:
            text += f"requires: [{', '.join(req)}]\n"
        (folder / f"{name}.yaml").write_text(text)
    return make_sample_superproject(root / "sp", folder, settings=None).path


def gitlinks(sp: Path, env: dict[str, str]) -> dict[str, str]:
    out = subprocess.run(
        ["git", "-C", str(sp), "ls-tree", "-r", "-z", "HEAD", "repos/"],
        capture_output=True,
        check=True,
        env=env,
    ).stdout.decode()
    links = {}
    for entry in filter(None, out.split("\0")):
        meta, path = entry.split("\t", 1)
        mode, _, sha = meta.split()
        if mode == "160000":
            links[path.rsplit("/", 1)[1]] = sha
    return links


def _q(path: Path | str) -> str:
    return str(path).replace("$", "$$")


def write_makefile(sp: Path, work: Path, out: Path, env: dict[str, str]) -> Path:
    """The floor: the same per-package commands, in DAG order, then one createrepo_c each."""
    commits = gitlinks(sp, env)
    deps = requirements(len(commits))
    lines = [".PHONY: all repos", "all: repos", ""]
    for name, commit in sorted(commits.items()):
        nv = f"{name}-{VERSION}"
        repo = sp / "repos" / name
        top = work / name
        srpm_top, rpm_top = top / "srpm", top / "rpm"
        stamp = top / "done"
        needs = " ".join(_q(work / d / "done") for d in deps[name])
        lines += [
            f"{_q(stamp)}: {needs}",
            f"\tmkdir -p {_q(srpm_top)}/SOURCES {_q(srpm_top)}/SPECS {_q(rpm_top)} {_q(top)}/tmp",
            f"\tgit -C {_q(repo)} archive --format=tar.gz --prefix={nv}/"
            f" -o {_q(srpm_top)}/SOURCES/{nv}.tar.gz {commit}",
            f"\tgit -C {_q(repo)} show {commit}:{name}.spec > {_q(srpm_top)}/SPECS/{name}.spec",
            f"\trpmbuild -bs --quiet --define '_topdir {srpm_top}' --define '_tmppath {top}/tmp'"
            f" {_q(srpm_top)}/SPECS/{name}.spec > /dev/null",
            f"\trpmbuild --rebuild --nodeps --quiet --define '_topdir {rpm_top}'"
            f" --define '_tmppath {top}/tmp' {_q(srpm_top)}/SRPMS/*.src.rpm > /dev/null 2>&1",
            f"\tcp {_q(rpm_top)}/RPMS/*/*.rpm {_q(out)}/rpms/",
            f"\tcp {_q(srpm_top)}/SRPMS/*.src.rpm {_q(out)}/srpms/",
            f"\ttouch {_q(stamp)}",
            "",
        ]
    lines += [
        f"repos: {' '.join(_q(work / n / 'done') for n in sorted(commits))}",
        f"\tcreaterepo_c --quiet {_q(out)}/rpms",
        f"\tcreaterepo_c --quiet {_q(out)}/srpms",
        "",
    ]
    makefile = work.parent / "Makefile"
    makefile.write_text("\n".join(lines))
    return makefile


def run_floor(sp: Path, scratch: Path, env: dict[str, str]) -> float:
    if scratch.exists():
        shutil.rmtree(scratch)
    work, out = scratch / "work", scratch / "out"
    for sub in ("rpms", "srpms"):
        (out / sub).mkdir(parents=True)
    work.mkdir()
    makefile = write_makefile(sp, work, out, env)
    start = time.perf_counter()
    subprocess.run(
        ["make", "-s", "-j2", "-f", str(makefile)],
        stdin=subprocess.DEVNULL,
        check=True,
        env=env,
    )
    elapsed = time.perf_counter() - start
    rpms = len(list((out / "rpms").glob("*.rpm")))
    assert (out / "rpms" / "repodata" / "repomd.xml").is_file(), "floor made no repodata"
    assert rpms == len(gitlinks(sp, env)), f"floor made {rpms} RPMs"
    return elapsed


def run_superbuild(sp: Path, report: Path, env: dict[str, str]) -> float:
    shutil.rmtree(sp / ".superbuild", ignore_errors=True)
    argv = [sys.executable, "-m", "superbuild", "-C", str(sp), "build", "--all", "-j2"]
    argv += ["--builder", "rpmbuild", "--report", str(report)]
    start = time.perf_counter()
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"superbuild build exited {done.returncode}: {done.stderr.decode()[-2000:]}"
        )
    output = sp / ".superbuild" / "output"
    assert (output / "rpms" / "repodata" / "repomd.xml").is_file(), "superbuild made no repodata"
    return elapsed


def profile(report: Path, wall: float) -> None:
    """Sum of each stage's durations (from the report) and the share of the wall time."""
    data = json.loads(report.read_text())
    totals: dict[str, float] = defaultdict(float)
    for pkg in data.get("packages", []):
        for stage, seconds in (pkg.get("stages") or {}).items():
            totals[stage] += float(seconds)
    print("  superbuild stage durations (sum over packages; 2 run at a time):")
    for stage, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"    {stage:<10} {seconds:8.2f} s   {seconds / 2 / wall * 100:5.1f}% of 2 x wall")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=60)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--profile", action="store_true", help="print superbuild's stage times")
    args = parser.parse_args(argv)
    if args.packages < 8 or args.runs < 1:
        parser.error("--packages must be >= 8 and --runs >= 1")
    for tool in ("git", "rpmbuild", "createrepo_c", "make"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: this benchmark needs it")
    env = git_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="superbuild-bench-rpm-") as tmp:
        root = args.keep.resolve() if args.keep else Path(tmp)
        env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
        start = time.perf_counter()
        sp = make_product(root / "product", args.packages)
        print(f"generated {args.packages} packages in {time.perf_counter() - start:.1f}s")
        floors, supers = [], []
        report = root / "report.json"
        for _ in range(args.runs):
            floors.append(run_floor(sp, root / "floor", env))
            supers.append(run_superbuild(sp, report, env))
            print(f"  floor {floors[-1]:7.2f} s   superbuild {supers[-1]:7.2f} s", flush=True)
        floor, ours = statistics.median(floors), statistics.median(supers)
        ratio = ours / floor
        verdict = "met" if ratio <= TARGET else "missed"
        print(f"{args.packages} packages, median of {args.runs}:")
        print(f"  make -j2 floor (plain commands + createrepo_c): {floor:7.2f} s")
        print(f"  superbuild build --all -j2 --builder rpmbuild:  {ours:7.2f} s")
        print(f"ratio superbuild / floor: {ratio:.2f} (target <= {TARGET:.2f}) {verdict}")
        print(
            f"per package: floor {floor / args.packages * 1000:.0f} ms, "
            f"superbuild {ours / args.packages * 1000:.0f} ms"
        )
        if args.profile:
            profile(report, supers[-1])
    return 0  # a benchmark prints figures; it does not fail


if __name__ == "__main__":
    sys.exit(main())
