"""Generated build DAGs for the build benchmarks, and the two ways of running them.

A :class:`Dag` is a list of packages in *listing order* (the order a Makefile lists them,
which is the order GNU make tries them in), each with its requirements and one shell step
with its expected duration.  Generators:

- :func:`makespan_dag`: a long chain of heavy packages listed after many light
  independent ones, sized so that the critical path is about total work / ``parallel``:
  a scheduler that starts the chain first ends near the lower bound, one that follows the
  listing order (make) ends about 1.5 x later;
- :func:`overhead_dag`: many packages whose step is ``true``, in dependency layers: the
  time is all scheduling and process overhead.

Writers (no superbuild import, so any bench can use them):

- :func:`write_superproject`: a git superproject with one gitlink (to a commit that
  exists nowhere) and one manifest ``manifests/<name>.yaml`` per package
  (``pipeline: command``, ``source: none``, ``commands: [STEP]``), made with
  ``git fast-import``;
- :func:`write_makefile`: the same DAG for ``make -j N`` (phony targets = packages,
  prerequisites = requirements, recipe = the step).

Example::

    dag = makespan_dag()
    write_superproject(dag, tmp / "repo")      # superbuild -C tmp/repo build --all -j 2
    write_makefile(dag, tmp / "Makefile")      # make -f tmp/Makefile -j 2
    print(dag.lower_bound(2))
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Dag",
    "Package",
    "makespan_dag",
    "overhead_dag",
    "write_makefile",
    "write_superproject",
]


@dataclass(frozen=True)
class Package:
    """One package: its ``step`` (shell text) takes about ``seconds``."""

    name: str
    requires: tuple[str, ...]
    step: str
    seconds: float


@dataclass(frozen=True)
class Dag:
    """Packages in listing order (every package after its requirements)."""

    name: str
    packages: tuple[Package, ...]

    def __len__(self) -> int:
        return len(self.packages)

    @property
    def requires(self) -> dict[str, tuple[str, ...]]:
        """Package name -> names it requires."""
        return {p.name: p.requires for p in self.packages}

    def total_work(self) -> float:
        """Sum of the step durations (seconds)."""
        return sum(p.seconds for p in self.packages)

    def critical_path(self) -> float:
        """The longest chain of step durations (seconds)."""
        longest: dict[str, float] = {}
        for p in self.packages:  # listing order is a topological order
            longest[p.name] = p.seconds + max((longest[r] for r in p.requires), default=0.0)
        return max(longest.values(), default=0.0)

    def lower_bound(self, parallel: int) -> float:
        """No schedule on ``parallel`` slots ends sooner: max(critical path, work / N)."""
        return max(self.critical_path(), self.total_work() / parallel)


def _sleep(name: str, requires: tuple[str, ...], seconds: float) -> Package:
    return Package(name, requires, f"sleep {seconds:.2f}", round(seconds, 2))


def makespan_dag(count: int = 200, parallel: int = 2, *, seed: int = 0) -> Dag:
    """``count`` packages: light independent ones listed first, a heavy chain last.

    A fifth of the packages form a chain (each requires the previous one) whose steps
    sleep 0.20-0.40 s; the others are independent and sleep 0.03-0.12 s, scaled so that
    their total is about (``parallel`` - 1) x the chain's: the critical path is then
    about total work / ``parallel``.  Names are ``p000``, ``p001``, ... in listing order.
    """
    if count < 2 or parallel < 1:
        raise ValueError("need at least 2 packages and 1 slot")
    rng = random.Random(seed)
    heavy = [rng.uniform(0.20, 0.40) for _ in range(max(1, count // 5))]
    light = [rng.uniform(0.03, 0.12) for _ in range(count - len(heavy))]
    target = (parallel - 1) * sum(round(s, 2) for s in heavy)
    scale = target / sum(light) if light and target else 1.0
    width = len(str(count - 1))
    names = [f"p{i:0{width}d}" for i in range(count)]
    packages = [_sleep(names[i], (), max(0.01, s * scale)) for i, s in enumerate(light)]
    previous: tuple[str, ...] = ()
    for j, seconds in enumerate(heavy):
        packages.append(_sleep(names[len(light) + j], previous, seconds))
        previous = (names[len(light) + j],)
    return Dag(f"makespan-{count}", tuple(packages))


def overhead_dag(count: int = 1000, *, layers: int = 10, seed: int = 0) -> Dag:
    """``count`` packages whose step is ``true``, in ``layers`` layers.

    Each package past the first layer requires 1-3 packages of the layers below (mostly
    the one just below), so the scheduler has dependencies to track and plenty of
    parallelism.  Names are ``p0000``, ``p0001``, ... in listing order.
    """
    if count < 1 or layers < 1:
        raise ValueError("need at least 1 package and 1 layer")
    rng = random.Random(seed)
    layers = min(layers, count)
    width = len(str(count - 1))
    by_layer: list[list[str]] = [[] for _ in range(layers)]
    packages = []
    for i in range(count):
        layer = i * layers // count
        requires: set[str] = set()
        if layer > 0:
            for _ in range(rng.randint(1, 3)):
                pool = layer - 1 if rng.random() < 0.7 else rng.randrange(layer)
                requires.add(rng.choice(by_layer[pool]))
        name = f"p{i:0{width}d}"
        by_layer[layer].append(name)
        packages.append(Package(name, tuple(sorted(requires)), "true", 0.0))
    return Dag(f"overhead-{count}", tuple(packages))


# ---------------------------------------------------------------- writers


def write_makefile(dag: Dag, path: Path) -> Path:
    """A Makefile building ``dag`` (goal ``all``, the packages in listing order)."""
    names = [p.name for p in dag.packages]
    lines = [
        f"# {dag.name}: generated by bench/dags.py",
        ".PHONY: all " + " ".join(names),
        "all: " + " ".join(names),
        "",
    ]
    for p in dag.packages:
        lines += [f"{p.name}: {' '.join(p.requires)}".rstrip(), f"\t{p.step}", ""]
    path.write_text("\n".join(lines))
    return path


def _data(payload: bytes) -> bytes:
    return b"data %d\n%s\n" % (len(payload), payload)


def _manifest(p: Package) -> bytes:
    lines = [f"path: repos/{p.name}", "pipeline: command", "source: none"]
    if p.requires:
        lines.append(f"requires: [{', '.join(p.requires)}]")
    lines.append(f"commands: [{json.dumps(p.step)}]")  # JSON is YAML
    return ("\n".join(lines) + "\n").encode()


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, LC_ALL="C")
    return env


def write_superproject(dag: Dag, dest: Path, *, settings: Mapping[str, str] | None = None) -> Path:
    """Create a superproject for ``dag`` at ``dest`` (absent or empty); returns ``dest``.

    One commit on ``main``: ``repos/<name>`` gitlinks to fake commits, ``.gitmodules``,
    ``manifests/<name>.yaml`` per package and ``superbuild.yaml`` (top-level keys from
    ``settings``, values written as they are).  The submodules are never needed:
    ``source: none`` runs the steps in an empty folder without git.
    """
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} exists and is not empty")
    config = "".join(f"{k}: {v}\n" for k, v in (settings or {}).items()) or "{}\n"
    gitmodules = "".join(
        f'[submodule "repos/{p.name}"]\n\tpath = repos/{p.name}\n'
        f"\turl = https://git.example.invalid/bench/{p.name}.git\n"
        for p in dag.packages
    ).encode()
    out = [
        b"commit refs/heads/main\n",
        b"committer Bench <bench@example.invalid> 1700000000 +0000\n",
        _data(f"{dag.name}: {len(dag)} packages".encode()),
        b"M 100644 inline .gitmodules\n" + _data(gitmodules),
        b"M 100644 inline superbuild.yaml\n" + _data(config.encode()),
    ]
    for p in dag.packages:
        out.append(f"M 100644 inline manifests/{p.name}.yaml\n".encode() + _data(_manifest(p)))
        fake = hashlib.sha1(f"{dag.name}/{p.name}".encode()).hexdigest()
        out.append(f"M 160000 {fake} repos/{p.name}\n".encode())
    out.append(b"\ndone\n")
    env = _git_env()
    git = ["git", "-C", os.fspath(dest)]
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [*git, "init", "-q", "-b", "main"], check=True, env=env, stdin=subprocess.DEVNULL
    )
    subprocess.run(
        [*git, "fast-import", "--quiet", "--done"], input=b"".join(out), check=True, env=env
    )
    subprocess.run([*git, "reset", "-q", "--hard", "main"], check=True, env=env)
    return dest
