"""Generate a large synthetic superproject with ``git fast-import`` (seconds, not minutes).

    python bench/gen_superproject.py DEST [--submodules 1000] [--commits 2000] [--seed 0]

DEST becomes a git work tree (branch ``main``) whose first commit adds:

- N gitlinks ``repos/group<k>/pkg<i>`` (20 groups) (mode 160000) pointing at commits that exist
  nowhere: superbuild never needs the submodules' objects,
- ``.gitmodules`` naming them (URLs under https://git.example.invalid/),
- N manifests ``manifests/group<k>/pkg<i>.yaml``: ``path``, a description and 0-3
  ``requires`` on packages of lower groups (2 groups a layer), so the dependency graph is a layered DAG,
- ``superbuild.yaml``.

Each later commit bumps 1-4 gitlinks; every 10th also edits a manifest (alternately
its description, which does not change the package's build, and its ``env``, which does).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

GROUPS = 20
LAYERS = 10
EPOCH = 1_700_000_000
SETTINGS = b"defaults:\n  pipeline: rpm\n  timeout: 600\njobs: 8\n"


@dataclass
class BenchPackage:
    name: str
    group: int
    requires: list[str]
    description: str
    env_rev: int | None = None

    @property
    def path(self) -> str:
        return f"repos/group{self.group}/{self.name}"

    @property
    def manifest(self) -> str:
        return f"manifests/group{self.group}/{self.name}.yaml"

    def text(self) -> bytes:
        lines = [f"path: {self.path}", f"description: {self.description}"]
        if self.requires:
            lines.append(f"requires: [{', '.join(self.requires)}]")
        if self.env_rev is not None:
            lines.append(f'env:\n  BENCH_REV: "{self.env_rev}"')
        return ("\n".join(lines) + "\n").encode()


def make_packages(count: int, rng: random.Random) -> list[BenchPackage]:
    """``count`` packages in 20 groups, 10 layers; requires point only at lower layers."""
    size = -(-count // GROUPS)
    groups = -(-count // size)
    layers = min(LAYERS, groups)
    by_layer: list[list[str]] = [[] for _ in range(layers)]
    packages: list[BenchPackage] = []
    for i in range(count):
        group = i // size
        layer = group * layers // groups
        requires: set[int] = set()
        if layer > 0:
            for _ in range(rng.randint(1, 3)):
                # Mostly the layer just below, sometimes deeper.
                pool = layer - 1 if rng.random() < 0.7 else rng.randrange(layer)
                requires.add(int(rng.choice(by_layer[pool])[3:]))
        name = f"pkg{i}"
        by_layer[layer].append(name)
        packages.append(
            BenchPackage(name, group, [f"pkg{r}" for r in sorted(requires)], f"bench package {i}")
        )
    return packages


def fake_commit(package: str, rev: int) -> str:
    return hashlib.sha1(f"{package}@{rev}".encode()).hexdigest()


def _data(payload: bytes) -> bytes:
    return b"data %d\n%s\n" % (len(payload), payload)


def fast_import_stream(packages: list[BenchPackage], commits: int, rng: random.Random) -> bytes:
    out: list[bytes] = []
    revs = dict.fromkeys((p.name for p in packages), 0)

    def commit(number: int, message: str, changes: list[bytes]) -> None:
        out.append(b"commit refs/heads/main\nmark :%d\n" % number)
        out.append(b"committer Bench <bench@example.invalid> %d +0000\n" % (EPOCH + 60 * number))
        out.append(_data(message.encode()))
        if number > 1:
            out.append(b"from :%d\n" % (number - 1))
        out.extend(changes)
        out.append(b"\n")

    def gitlink(pkg: BenchPackage) -> bytes:
        return f"M 160000 {fake_commit(pkg.name, revs[pkg.name])} {pkg.path}\n".encode()

    def inline(path: str, payload: bytes) -> bytes:
        return f"M 100644 inline {path}\n".encode() + _data(payload)

    gitmodules = "".join(
        f'[submodule "{p.path}"]\n\tpath = {p.path}\n'
        f"\turl = https://git.example.invalid/bench/{p.name}.git\n"
        for p in packages
    ).encode()
    first = [inline(".gitmodules", gitmodules), inline("superbuild.yaml", SETTINGS)]
    first += [inline(p.manifest, p.text()) for p in packages]
    first += [gitlink(p) for p in packages]
    commit(1, f"Add {len(packages)} submodules and their manifests", first)

    for number in range(2, commits + 1):
        bumped = rng.sample(packages, min(len(packages), rng.randint(1, 4)))
        changes = []
        for pkg in bumped:
            revs[pkg.name] += 1
            changes.append(gitlink(pkg))
        names = ", ".join(p.name for p in bumped)
        message = f"Bump {names}"
        if number % 10 == 0:
            pkg = rng.choice(packages)
            if number % 20 == 0:
                pkg.env_rev = number
                message += f"; {pkg.name}: set BENCH_REV"
            else:
                pkg.description = f"bench package {pkg.name[3:]}, revised in commit {number}"
                message += f"; {pkg.name}: new description"
            changes.append(inline(pkg.manifest, pkg.text()))
        commit(number, message, changes)
    out.append(b"done\n")
    return b"".join(out)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, LC_ALL="C")
    return env


def generate(
    dest: Path, submodules: int = 1000, commits: int = 2000, *, seed: int = 0, checkout: bool = True
) -> Path:
    """Create the superproject at ``dest`` (must not exist or be empty); returns ``dest``."""
    if submodules < 1 or commits < 1:
        raise ValueError("need at least one submodule and one commit")
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} exists and is not empty")
    rng = random.Random(seed)
    stream = fast_import_stream(make_packages(submodules, rng), commits, rng)
    env = _env()
    git = ["git", "-C", os.fspath(dest)]
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [*git, "init", "-q", "-b", "main"], check=True, env=env, stdin=subprocess.DEVNULL
    )
    subprocess.run([*git, "fast-import", "--quiet", "--done"], input=stream, check=True, env=env)
    if checkout:
        subprocess.run([*git, "reset", "-q", "--hard", "main"], check=True, env=env)
    else:
        subprocess.run([*git, "read-tree", "main"], check=True, env=env)
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path, help="directory to create (absent or empty)")
    parser.add_argument("--submodules", type=int, default=1000, metavar="N")
    parser.add_argument("--commits", type=int, default=2000, metavar="N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-checkout", action="store_true", help="fill the index but not the work tree"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        generate(
            args.dest, args.submodules, args.commits, seed=args.seed, checkout=not args.no_checkout
        )
    except (ValueError, FileExistsError) as exc:
        parser.error(str(exc))
    print(
        f"{args.dest}: {args.submodules} submodules, {args.commits} commits "
        f"in {time.perf_counter() - start:.2f}s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
