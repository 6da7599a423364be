"""Checks before anything is built: each problem one line, exit 2, nothing started.

A build that cannot finish should not start: a missing tool would fail every package one
by one (or all of them after hours), an uninitialized submodule the waves that need it,
an unusable ``--report`` path the run after it built everything.  :func:`check` looks at
all of that up front and raises one :class:`~superbuild.errors.UsageError` (or
:class:`~superbuild.errors.ToolMissingError`) listing every problem.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from superbuild import git as g
from superbuild import proc, submodules
from superbuild.errors import ToolMissingError, UsageError
from superbuild.pipelines import registry
from superbuild.pipelines.api import BuildContext

#: Tool -> the package that installs it (Debian; Fedora).
PACKAGES: dict[str, tuple[str, str]] = {
    "git": ("git", "git"),
    "rpmbuild": ("rpm", "rpm-build"),
    "rpmsign": ("rpm", "rpm-sign"),
    "rpm": ("rpm", "rpm"),
    "createrepo_c": ("createrepo-c", "createrepo_c"),
    "mock": ("(not packaged: use --builder rpmbuild)", "mock"),
    "gpg": ("gnupg", "gnupg2"),
    "zstd": ("zstd", "zstd"),
    "python3-rpm": ("python3-rpm", "python3-rpm"),
}
#: Submodules whose recorded commit is looked up at once.
WORKERS = 8


def _install(tool: str) -> str:
    debian, fedora = PACKAGES.get(tool, (tool, tool))
    return f"{tool} (Debian: {debian}; Fedora: {fedora})"


def _bindings_missing() -> bool:
    """rpm's Python bindings (the system's python3-rpm, through the PyPI shim)."""
    try:
        import rpm  # noqa: F401
    except ImportError:
        return True
    return False


def missing_tools(contexts: Iterable[BuildContext], *, remote: bool) -> list[str]:
    """The tools the packages' pipelines need here and are not installed, sorted.

    With ``remote`` (a Dask cluster) only the coordinator's tools count: the build
    stages' tools are the workers' business.
    """
    wanted: set[str] = set()
    for ctx in contexts:
        pipeline = registry.get(ctx.package.pipeline, ctx.package.name)
        wanted.update(pipeline.coordinator_tools(ctx))
        if not remote:
            wanted.update(pipeline.build_tools(ctx))
    found = []
    for tool in sorted(wanted):
        if tool == "python3-rpm":
            if _bindings_missing():
                found.append(tool)
        elif shutil.which(tool) is None:
            found.append(tool)
    return found


def _commit_problem(repo: Path, ctx: BuildContext) -> str | None:
    path = ctx.package.path
    if not submodules.initialized(ctx.source_repo):
        return f"{path} (package {ctx.package.name}): not initialized"
    [found] = g.resolve(ctx.source_repo, [f"{ctx.commit}^{{commit}}"])
    if found is None:
        return f"{path} (package {ctx.package.name}): commit {ctx.commit[:12]} not fetched"
    return None


def unavailable_sources(repo: Path, contexts: Sequence[BuildContext]) -> list[str]:
    """One line per package whose recorded commit is not in its submodule's repository."""
    reading = [
        ctx
        for ctx in contexts
        if registry.get(ctx.package.pipeline, ctx.package.name).reads_git(ctx)
    ]
    if not reading:
        return []
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(reading))) as pool:
        found = list(pool.map(lambda ctx: _commit_problem(repo, ctx), reading))
    return sorted({line for line in found if line})  # a package of several targets: once


def _writable_dir(path: Path) -> str | None:
    """Why ``path`` cannot be (or become) a writable folder, or None."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe == path and not path.is_dir():
        return "exists and is not a folder"
    if not probe.is_dir():
        return f"{probe} is not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


def _writable_file(path: Path) -> str | None:
    """Why a report cannot be written at ``path`` (its folder must exist), or None."""
    if path.is_dir():
        return "is a folder: name a file"
    if not path.parent.is_dir():
        return f"its folder {path.parent} does not exist"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return f"its folder {path.parent} is not writable"
    if path.exists() and not os.access(path, os.W_OK):
        return "is not writable"
    return None


def check(
    repo: Path,
    contexts: Mapping[str, BuildContext],
    *,
    output: Path,
    reports: Mapping[str, Path | None] = {},
    remote: bool = False,
) -> None:
    """Raise one error listing every reason the build cannot finish (nothing is started).

    ``reports``: option -> path (``--report``, ``--junit``).  Missing tools raise
    :class:`ToolMissingError`; the rest :class:`UsageError` (both exit 2).
    """
    problems: list[str] = []
    try:
        proc.log_cap()
    except UsageError as exc:
        problems.extend(exc.lines)
    why = _writable_dir(output)
    if why:
        problems.append(f"--output {output}: {why}")
    for option, path in reports.items():
        if path is not None:
            why = _writable_file(path)
            if why:
                problems.append(f"{option} {path}: {why}")
    missing = unavailable_sources(repo, list(contexts.values()))
    if missing:
        paths = " ".join(line.split(" ", 1)[0] for line in missing)
        count = f"{len(missing)} packages cannot" if len(missing) > 1 else "1 package cannot"
        problems.append(
            f"{count} be built, the recorded commits are not available: "
            f"{'; '.join(missing)}: run git submodule update --init {paths}"
        )
    tools = missing_tools(contexts.values(), remote=remote)
    if tools:
        line = f"missing tools for this build: {', '.join(map(_install, tools))}"
        if not problems:
            raise ToolMissingError(line)
        problems.append(line)
    if problems:
        raise UsageError.many(problems)
