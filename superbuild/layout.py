"""Where superbuild keeps its files in a superproject: the one owner of ``.superbuild/``.

::

    .superbuild/                        git-ignored by a .gitignore of its own (``*``)
        output/                         the output repository (settings ``output:``)
            rpms/<arch>/*.rpm  srpms/*.src.rpm  files/<package>/...   + repodata/
        logs/<run>/<package>/<stage>.log
        logs/<run>/report.json
        logs/latest -> <run>
        work/<run>/<package>/           scratch of a running build
        pool/<sha256[:2]>/<sha256>      every successful build's artifacts, content-addressed
                                        (hard links: they outlive the output's replacements)
        releases/<name>/                the releases (``superbuild release``), links into pool/
        state.db                        the build state (``superbuild.state``)
        build.lock                      held by the running build

Functions that only name a path never create anything; :func:`state_dir` creates the
folder and its ``.gitignore``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from superbuild import fileio

STATE_DIR = ".superbuild"
DEFAULT_OUTPUT = f"{STATE_DIR}/output"
DB_FILE = "state.db"
LOCK_FILE = "build.lock"
LOGS_DIR = "logs"
WORK_DIR = "work"
LATEST = "latest"
REPORT_FILE = "report.json"
POOL_DIR = "pool"
RELEASES_DIR = "releases"

_GITIGNORE = "# created by superbuild: build state, logs and outputs\n*\n"


def state_path(repo: Path) -> Path:
    """``<superproject>/.superbuild`` (not created)."""
    return repo / STATE_DIR


def state_dir(repo: Path) -> Path:
    """``<superproject>/.superbuild``, created with a ``.gitignore`` of ``*``."""
    path = state_path(repo)
    path.mkdir(exist_ok=True)
    ignore = path / ".gitignore"
    if not ignore.exists():
        fileio.write_text_atomic(ignore, _GITIGNORE)
    return path


def db_path(repo: Path) -> Path:
    """``.superbuild/state.db`` (not created)."""
    return state_path(repo) / DB_FILE


def lock_path(repo: Path) -> Path:
    """``.superbuild/build.lock`` (not created)."""
    return state_path(repo) / LOCK_FILE


def logs_root(repo: Path) -> Path:
    """``.superbuild/logs``: one folder per run, and ``latest``."""
    return state_path(repo) / LOGS_DIR


def work_root(repo: Path) -> Path:
    """``.superbuild/work``: one scratch folder per running build."""
    return state_path(repo) / WORK_DIR


def pool_root(repo: Path) -> Path:
    """``.superbuild/pool``: artifacts by sha256 (``superbuild.release.pool``)."""
    return state_path(repo) / POOL_DIR


def releases_root(repo: Path) -> Path:
    """``.superbuild/releases``: one folder per release (``superbuild.release``)."""
    return state_path(repo) / RELEASES_DIR


def run_logs(repo: Path, run_id: str) -> Path:
    """``.superbuild/logs/<run>``."""
    return logs_root(repo) / run_id


def run_work(repo: Path, run_id: str) -> Path:
    """``.superbuild/work/<run>``."""
    return work_root(repo) / run_id


def inside(repo: Path, path: Path) -> bool:
    """``path`` is the superproject ``repo`` or under it (symlinks and ``..`` resolved)."""
    top = repo.resolve()
    found = path.resolve()
    return found == top or top in found.parents


def output_dir(repo: Path, configured: str | Path | None) -> Path:
    """The output repository: ``configured`` (``--output`` or settings ``output:``),
    relative to the superproject unless absolute; default ``.superbuild/output``."""
    path = Path(configured) if configured else Path(DEFAULT_OUTPUT)
    return path if path.is_absolute() else repo / path


def target_output(output: Path, target: str | None) -> Path:
    """The output repository of one target: ``OUTPUT/<target>`` (its own ``rpms/``,
    ``srpms/`` and ``files/``), or ``OUTPUT`` itself for the implicit target (None)."""
    return output if target is None else output / target


def target_outputs(output: Path, targets: Iterable[str]) -> list[Path]:
    """The output repositories of a product's ``targets`` (none: ``[output]``)."""
    names = list(targets)
    return [output / t for t in names] if names else [output]
