"""What every pipeline's source stage shares: is the commit there, and the job inputs."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from superbuild import submodules
from superbuild.pipelines.api import BuildContext, JobInputs, SourceUnavailable
from superbuild.pipelines.transport import Blob


def check_source_repo(ctx: BuildContext) -> None:
    """Raise :class:`SourceUnavailable` unless ``ctx.source_repo`` is a git repository.

    An uninitialised submodule is an empty directory: git would silently use the
    superproject's repository instead, so look for ``.git`` (or a bare layout) here.
    """
    if submodules.initialized(ctx.source_repo):
        return
    raise source_unavailable(ctx, "no git repository there")


def source_unavailable(ctx: BuildContext, why: str) -> SourceUnavailable:
    """The one-line error for a commit that is not in the submodule's repository."""
    pkg = ctx.package
    log: Path | None = ctx.log_dir / "source.log"
    message = (
        f"{pkg.name}: commit {ctx.commit[:12]} of submodule {pkg.path} is not available "
        f"({why} in {ctx.source_repo}): run git submodule update --init {pkg.path}"
    )
    try:
        ctx.log_dir.mkdir(parents=True, exist_ok=True)
        with (ctx.log_dir / "source.log").open("ab") as fh:
            fh.write(f"# error: {message}\n".encode("utf-8", "replace"))
    except OSError:
        log = None
    return SourceUnavailable(message, "source", log, pkg.name)


def inputs_for(
    ctx: BuildContext,
    durations: Mapping[str, float],
    *,
    sources: Iterable[Blob] = (),
    payload: object = None,
) -> JobInputs:
    """The :class:`JobInputs` of ``ctx`` carrying ``sources`` and the pipeline's ``payload``."""
    return JobInputs(
        package=ctx.package,
        commit=ctx.commit,
        log_dir=os.fspath(ctx.log_dir),
        options=ctx.options,
        env=ctx.env,
        sources=tuple(sources),
        payload=payload,
        stage_durations=tuple(durations.items()),
        rebuild=ctx.rebuild,
        target=ctx.target,
    )
