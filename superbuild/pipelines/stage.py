"""One stage of a package build: its log, its deadline, its duration; and the build's environment.

Every stage writes ``<log_dir>/<stage>.log`` (the commands it ran, then their output),
at most :func:`superbuild.proc.log_cap` bytes of it (``SUPERBUILD_LOG_CAP``, 64 MiB by
default): beyond the cap the log keeps its head and its tail
(:class:`superbuild.proc.CappedLog`) and the step goes on.
A failing stage raises :class:`~superbuild.pipelines.api.PipelineFailed` whose one-line
message names the package, the stage and the log (the coordinator's path, even when a
worker wrote it).  Commands are started through the injected ``runner`` (the run's
:meth:`superbuild.proc.Session.run_logged`), so tests can pass a fake that records argv.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, NoReturn, Protocol

from superbuild import export
from superbuild.errors import Interrupted, SuperbuildError, ToolMissingError
from superbuild.pipelines.api import BuildContext, PipelineFailed, Runner, Workspace
from superbuild.proc import CappedLog, log_cap

if TYPE_CHECKING:
    from superbuild.package import Package
    from superbuild.proc import Completed


class Stage:
    """One stage of one package build: its log file, its deadline and its duration.

    Use as a context manager.  Inside it, :meth:`run` starts commands (through the
    runner) with what is left of the stage timeout and turns a failure into
    :class:`PipelineFailed`; any other :class:`SuperbuildError` raised inside (a git
    problem, say) is written to the log and re-raised as :class:`PipelineFailed` too.
    The log is written to ``log_dir/<name>.log``; messages name it
    ``shown_log_dir/<name>.log`` (default: the same).
    """

    def __init__(
        self,
        package: Package,
        name: str,
        runner: Runner,
        durations: dict[str, float],
        *,
        log_dir: Path,
        shown_log_dir: Path | None = None,
    ) -> None:
        self.package = package
        self.name = name
        self.runner = runner
        self.durations = durations
        self.file = log_dir / f"{name}.log"
        self.path = (shown_log_dir or log_dir) / f"{name}.log"
        self.timeout = package.timeout(name)
        self._log: IO[bytes] | None = None
        self._start = 0.0

    @classmethod
    def in_workspace(
        cls,
        ws: Workspace,
        package: Package,
        name: str,
        runner: Runner,
        durations: dict[str, float],
    ) -> Stage:
        """A build-side stage, logging into ``ws`` (messages name ``ws.shown_log_dir``)."""
        return cls(
            package, name, runner, durations, log_dir=ws.log_dir, shown_log_dir=ws.shown_log_dir
        )

    @classmethod
    def of(cls, ctx: BuildContext, name: str, runner: Runner, durations: dict[str, float]) -> Stage:
        """A coordinator-side stage, logging into ``ctx.log_dir``."""
        return cls(ctx.package, name, runner, durations, log_dir=ctx.log_dir)

    def __enter__(self) -> Stage:
        self._start = time.monotonic()
        cap = log_cap()
        self._log = CappedLog(self.file, cap) if cap else self.file.open("wb")
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
        pkg = self.package.name
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
    ) -> Completed:
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
            pkg = self.package.name
            where = f" in {what}" if what else ""
            raise PipelineFailed(
                f"{pkg}: {self.name} stage failed (exit {result.returncode}){where}, "
                f"see {self.path}",
                self.name,
                self.path,
                pkg,
            )
        return result


class _HasEnv(Protocol):
    @property
    def package(self) -> Package: ...

    @property
    def env(self) -> tuple[tuple[str, str], ...]: ...


def build_env(ctx: _HasEnv, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of build commands: ours, minus git's hook variables, plus ``ctx.env``,
    ``package.env`` and ``extra`` (which wins).  ``ctx`` is a context or job inputs.

    ``GIT_DIR`` and friends are dropped: set while superbuild runs from a git hook, they
    would point a build's own git commands at the superproject.
    """
    return export.command_env(ctx.env, ctx.package.env, extra or {})
