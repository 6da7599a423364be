"""Packaging pipelines: one package at one recorded commit -> artifacts in the output repository.

A pipeline is an object with a ``name``, its ``stages`` and ``run(ctx, runner)``.  The
scheduler calls :func:`run_package` in a worker thread (later on a Dask worker), so the
:class:`BuildContext` it receives is a plain, picklable frozen dataclass.

Every stage writes ``<log_dir>/<stage>.log`` (the commands it ran, then their output).
A failing stage raises :class:`PipelineFailed` whose one-line message names the package,
the stage and the log; the caller shows the log's tail.  Commands are started through
the injected ``runner`` (:func:`superbuild.proc.run_logged` by default), so tests can pass
a fake that records argv.

Pipelines never print; they only write their logs and return a :class:`PackageBuild`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, NoReturn, Protocol

from superbuild import git as g
from superbuild import proc
from superbuild.errors import (
    EXIT_FAILED,
    Interrupted,
    SuperbuildError,
    ToolMissingError,
)

if TYPE_CHECKING:
    from superbuild.manifest import Package

__all__ = [
    "PIPELINES",
    "BuildContext",
    "PackageBuild",
    "Pipeline",
    "PipelineFailed",
    "Runner",
    "SourceUnavailable",
    "Stage",
    "run_package",
]

BUILDERS = ("rpmbuild", "mock")


@dataclass(frozen=True)
class BuildContext:
    """Everything one package build needs; picklable (dataclasses, Paths, strings)."""

    package: Package
    #: The submodule commit the superproject records: exactly this is built.
    commit: str
    #: A git repository holding that commit.  Only its objects are read, never its work
    #: tree, which may be checked out at another commit or be dirty.
    source_repo: Path
    #: Root of the output repository (``rpms/<arch>/``, ``srpms/``, ``files/<package>/``).
    output: Path
    #: Scratch directory for this package in this run (created; may be deleted after).
    work_dir: Path
    #: ``logs/<run>/<package>/``: one ``<stage>.log`` per stage.
    log_dir: Path
    builder: str = "rpmbuild"
    mock_config: str | None = None
    #: For mock: repositories of packages already built in this run (``<output>/rpms``).
    extra_repos: tuple[Path, ...] = ()
    sign_key: str | None = None
    gpg_home: str | None = None
    #: Extra environment for every command of the build (before ``package.env``).
    env: tuple[tuple[str, str], ...] = ()


@dataclass
class PackageBuild:
    """What a successful :func:`run_package` produced (the scheduler adapts it to its result)."""

    name: str
    commit: str
    #: Files written into the output repository, relative to ``ctx.output`` (posix paths).
    artifacts: list[str]
    log_dir: str
    version: str | None = None
    release: str | None = None
    #: Seconds spent per stage, in the order the stages ran.
    stage_durations: dict[str, float] = field(default_factory=dict)


class PipelineFailed(SuperbuildError):
    """A stage of a package build failed; ``stage`` and ``log`` say where to look.

    The constructor takes the message first so that the exception pickles (Dask ships
    exceptions back from workers): ``BaseException`` pickles ``args`` plus ``__dict__``.
    """

    exit_code = EXIT_FAILED

    def __init__(
        self, message: str, stage: str = "", log: Path | None = None, package: str = ""
    ) -> None:
        super().__init__(message)
        self.stage = stage
        self.log = log
        self.package = package


class SourceUnavailable(PipelineFailed):
    """The recorded commit is not in the submodule's repository (not initialised or fetched)."""


class Runner(Protocol):
    """Runs one command with stdout and stderr going to ``log`` (see :func:`proc.run_logged`)."""

    def __call__(
        self,
        cmd: Sequence[str | os.PathLike[str]],
        *,
        log: IO[bytes],
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> proc.Completed: ...


class Pipeline(Protocol):
    """One way of turning a package into artifacts (``rpm``, ``command``)."""

    name: str
    stages: tuple[str, ...]

    def run(self, ctx: BuildContext, runner: Runner) -> PackageBuild:
        """Build ``ctx.package`` at ``ctx.commit``; raise :class:`PipelineFailed` on failure."""
        ...


class Stage:
    """One stage of one package build: its log file, its deadline and its duration.

    Use as a context manager.  Inside it, :meth:`run` starts commands (through the
    runner) with what is left of the stage timeout and turns a failure into
    :class:`PipelineFailed`; any other :class:`SuperbuildError` raised inside (a git
    problem, say) is written to the log and re-raised as :class:`PipelineFailed` too.
    """

    def __init__(
        self,
        ctx: BuildContext,
        name: str,
        runner: Runner,
        durations: dict[str, float],
    ) -> None:
        self.ctx = ctx
        self.name = name
        self.runner = runner
        self.durations = durations
        self.path = ctx.log_dir / f"{name}.log"
        self.timeout = ctx.package.timeout(name)
        self._log: IO[bytes] | None = None
        self._start = 0.0

    def __enter__(self) -> Stage:
        self._start = time.monotonic()
        self._log = self.path.open("wb")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.durations[self.name] = time.monotonic() - self._start
        wrap = isinstance(exc, SuperbuildError) and not isinstance(
            exc, PipelineFailed | Interrupted | ToolMissingError
        )
        if wrap:
            assert isinstance(exc, SuperbuildError)
            self.note(*(f"# error: {line}" for line in exc.lines))
        self.close()
        if wrap:
            assert isinstance(exc, SuperbuildError)
            raise self.failure(f"{exc.lines[0]}, see {self.path}") from exc

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def log(self) -> IO[bytes]:
        if self._log is None:
            raise RuntimeError(f"stage {self.name} is not open")
        return self._log

    def note(self, *lines: str) -> None:
        """Write lines to the stage log (superbuild's own remarks start with ``#``)."""
        if self._log is not None:
            self._log.write("".join(f"{line}\n" for line in lines).encode("utf-8", "replace"))
            self._log.flush()

    def remaining(self) -> float | None:
        if self.timeout is None:
            return None
        return self.timeout - (time.monotonic() - self._start)

    def failure(self, detail: str, cls: type[PipelineFailed] = PipelineFailed) -> PipelineFailed:
        """A :class:`PipelineFailed` for this stage; ``detail`` ends the one-line message."""
        pkg = self.ctx.package.name
        return cls(f"{pkg}: {self.name} stage failed: {detail}", self.name, self.path, pkg)

    def fail(self, detail: str) -> NoReturn:
        """Log ``detail`` and raise :class:`PipelineFailed` naming this log."""
        self.note(f"# error: {detail}")
        raise self.failure(f"{detail}, see {self.path}")

    def run(
        self,
        cmd: Sequence[str | os.PathLike[str]],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        what: str | None = None,
    ) -> proc.Completed:
        """Run ``cmd`` logged; a non-zero exit or the stage timeout raises :class:`PipelineFailed`."""
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            self.fail(f"timed out after {self.timeout:g}s")
        self.note(f"$ {shlex.join(os.fspath(c) for c in cmd)}")
        result = self.runner(cmd, log=self.log, cwd=cwd, env=env, timeout=remaining)
        if result.timed_out:
            self.note(f"# timed out after {self.timeout:g}s")
            raise self.failure(
                f"{what + ' ' if what else ''}timed out after {self.timeout:g}s, see {self.path}"
            )
        if result.returncode != 0:
            self.note(f"# exit {result.returncode}")
            pkg = self.ctx.package.name
            where = f" in {what}" if what else ""
            raise PipelineFailed(
                f"{pkg}: {self.name} stage failed (exit {result.returncode}){where}, "
                f"see {self.path}",
                self.name,
                self.path,
                pkg,
            )
        return result


def build_env(ctx: BuildContext, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of build commands: ours, minus git's hook variables, plus ``ctx.env``,
    ``package.env`` and ``extra`` (which wins).

    ``GIT_DIR`` and friends are dropped: set while superbuild runs from a git hook, they
    would point a build's own git commands at the superproject.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(ctx.env)
    env.update(ctx.package.env)
    if extra:
        env.update(extra)
    return env


@functools.lru_cache(maxsize=1)
def git_env() -> dict[str, str]:
    """The environment for git commands (computed once; callers must not modify it)."""
    return g.git_env()


def check_source_repo(ctx: BuildContext) -> None:
    """Raise :class:`SourceUnavailable` unless ``ctx.source_repo`` is a git repository.

    An uninitialised submodule is an empty directory: git would silently use the
    superproject's repository instead, so look for ``.git`` (or a bare layout) here.
    """
    repo = ctx.source_repo
    if (repo / ".git").exists() or ((repo / "HEAD").is_file() and (repo / "objects").is_dir()):
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


def run_package(ctx: BuildContext, runner: Runner | None = None) -> PackageBuild:
    """Build one package with the pipeline its manifest names.

    Creates ``ctx.log_dir`` and ``ctx.work_dir``.  Raises :class:`PipelineFailed` when a
    stage fails, :class:`SuperbuildError` for an unknown pipeline or builder.
    """
    pipeline = PIPELINES.get(ctx.package.pipeline)
    if pipeline is None:
        raise SuperbuildError(
            f"{ctx.package.name}: unknown pipeline {ctx.package.pipeline!r} "
            f"(known: {', '.join(sorted(PIPELINES))})"
        )
    # rpm macros and the steps' environment need absolute paths.
    ctx = dataclasses.replace(
        ctx,
        source_repo=ctx.source_repo.absolute(),
        output=ctx.output.absolute(),
        work_dir=ctx.work_dir.absolute(),
        log_dir=ctx.log_dir.absolute(),
    )
    ctx.log_dir.mkdir(parents=True, exist_ok=True)
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    return pipeline.run(ctx, runner or proc.run_logged)


# The pipeline modules import the definitions above, so register them last.
from superbuild.pipelines.command import CommandPipeline  # noqa: E402
from superbuild.pipelines.rpm import RpmPipeline  # noqa: E402

#: Pipelines by manifest ``pipeline:`` value.
PIPELINES: dict[str, Pipeline] = {
    "rpm": RpmPipeline(),
    "command": CommandPipeline(),
}
