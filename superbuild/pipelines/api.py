"""The records and protocols every pipeline shares (no RPM in here).

A package build runs in three parts, so that its middle can run on another machine
(:mod:`superbuild.pipelines.task` wires them to :class:`superbuild.jobs.Task`):

1. ``prepare`` (coordinator): the ``source`` stage reads what it needs from git and
   returns :class:`JobInputs`: plain data and file contents, no path of the superproject;
2. ``build`` (anywhere): the build stages, in a scratch folder, from the inputs alone;
   they return :class:`BuildProducts` (paths in that scratch folder);
3. ``collect`` (coordinator): the artifacts are copied into the output repository and a
   :class:`PackageBuild` is returned.

Pipeline-specific settings travel in ``options`` (e.g. the rpm pipeline's builder and
signing key), pipeline-specific prepared data in ``JobInputs.payload`` (the rpm
pipeline's spec): the generic records never name them.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from superbuild.errors import EXIT_FAILED, SuperbuildError
from superbuild.pipelines.transport import Blob

if TYPE_CHECKING:
    from superbuild.package import Package, Settings
    from superbuild.proc import Completed


@dataclass(frozen=True)
class BuildContext:
    """Everything one package build needs on the coordinator; picklable."""

    package: Package
    #: The submodule commit the superproject records: exactly this is built.
    commit: str
    #: A git repository holding that commit.  Only its objects are read, never its work
    #: tree, which may be checked out at another commit or be dirty.
    source_repo: Path
    #: Root of the output repository (``rpms/<arch>/``, ``srpms/``, ``files/<package>/``).
    output: Path
    #: Scratch directory for this package in this run (created; removed after collect).
    work_dir: Path
    #: ``logs/<run>/<package>/``: one ``<stage>.log`` per stage.
    log_dir: Path
    #: The pipeline's own settings (see :meth:`Pipeline.options`); None: its defaults.
    options: Any = None
    #: Extra environment for every command of the build (before ``package.env``).
    env: tuple[tuple[str, str], ...] = ()
    #: Successful builds of this commit before this one (the build state): a rebuild
    #: against changed dependencies gets a new Release from it.
    rebuild: int = 0
    #: The target built for (superbuild.yaml ``targets:``); None: the implicit one.
    target: str | None = None


@dataclass
class PackageBuild:
    """What a successful package build produced (the task adapts it to a JobResult)."""

    name: str
    commit: str
    #: Files written into the output repository, relative to ``ctx.output`` (posix paths).
    artifacts: list[str]
    log_dir: str
    version: str | None = None
    release: str | None = None
    #: Seconds spent per stage, in the order the stages ran.
    stage_durations: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class JobInputs:
    """What the build stages need; no path of the coordinator is opened.

    Made by the pipeline's ``prepare``; picklable (Dask ships it with the task).
    """

    package: Package
    commit: str
    #: The coordinator's ``<log_dir>``: failure messages name their logs there.
    log_dir: str
    options: Any = None
    env: tuple[tuple[str, str], ...] = ()
    #: Files the build stages start from (a tarball, patches).
    sources: tuple[Blob, ...] = ()
    #: The pipeline's prepared data (the rpm pipeline: the spec and its query).
    payload: Any = None
    #: Artifacts of this run's dependencies, for builds on a remote worker that need them.
    dependency_files: tuple[Blob, ...] = ()
    #: True when the build stages run on another machine than the coordinator.
    remote: bool = False
    #: See :attr:`BuildContext.rebuild`.
    rebuild: int = 0
    #: See :attr:`BuildContext.target`.
    target: str | None = None
    #: Durations of the stages the coordinator ran (``source``).
    stage_durations: tuple[tuple[str, float], ...] = ()

    @property
    def size(self) -> int:
        """Bytes of file content carried."""
        return sum(len(b.data) for b in (*self.sources, *self.dependency_files))


@dataclass
class BuildProducts:
    """What the build stages left in their scratch folder."""

    package: str
    #: Package files for the output repository (binary and source RPMs).
    packages: list[Path] = field(default_factory=list)
    #: A folder whose contents become ``files/<package>/``.
    files_dir: Path | None = None
    version: str | None = None
    release: str | None = None
    stage_durations: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Workspace:
    """Where the build stages run: scratch and log folders.

    ``shown_log_dir`` is how failure messages name the logs: the coordinator's
    ``<log_dir>``, where the logs end up even when a worker wrote them elsewhere.
    """

    work_dir: Path
    log_dir: Path
    shown_log_dir: Path


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
    """Runs one command with stdout and stderr going to ``log``
    (:meth:`superbuild.proc.Session.run_logged`)."""

    def __call__(
        self,
        cmd: Sequence[str | os.PathLike[str]],
        *,
        log: IO[bytes],
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Completed: ...


class Pipeline(abc.ABC):
    """One way of turning a package into artifacts (``rpm``, ``command``).

    A pipeline implements :meth:`prepare` and :meth:`build`; the other methods have the
    defaults of a pipeline that needs nothing special (no options, no worker resources,
    nothing of its dependencies' builds, reads git, nothing to announce).
    """

    name: str
    stages: tuple[str, ...]

    def options(
        self, package: Package, settings: Settings, *, builder: str | None, output: Path
    ) -> Any:
        """The pipeline's settings for ``package`` (``builder``: the ``--builder`` flag;
        ``output``: this run's output repository)."""
        return None

    def resources(self, ctx: BuildContext) -> Mapping[str, int]:
        """What a worker must offer to build ``ctx`` (e.g. ``{"mock": 1}``)."""
        return {}

    def needs_dependency_artifacts(self, ctx: BuildContext) -> bool:
        """Whether the build stages read this run's builds of the package's requirements."""
        return False

    def reads_git(self, ctx: BuildContext) -> bool:
        """Whether ``prepare`` reads git (it then runs off the scheduling thread)."""
        return True

    def coordinator_tools(self, ctx: BuildContext) -> tuple[str, ...]:
        """Programs ``prepare`` and ``collect`` run (on the coordinator)."""
        return ("git",) if self.reads_git(ctx) else ()

    def build_tools(self, ctx: BuildContext) -> tuple[str, ...]:
        """Programs the build stages run (wherever they run)."""
        return ()

    def preview(self, ctx: BuildContext) -> Mapping[str, str]:
        """What a build would make, without building (``plan --verbose``): short facts
        such as the NEVR and the archive; raises :class:`PipelineFailed` as
        :meth:`prepare` would.  ``ctx.work_dir`` and ``ctx.log_dir`` are scratch."""
        return {}

    def check_received(
        self, ctx: BuildContext, inputs: JobInputs, products: BuildProducts
    ) -> str | None:
        """Coordinator side, for what a remote worker sent back (unpacked, checksums
        verified): a one-line reason when the products are not what this job, as
        ``inputs`` prepared it here, can make (the rpm pipeline: a readable RPM of the
        expected NEVRA); None when they are.  Nothing is published after a reason."""
        return None

    def published(self, ctx: BuildContext) -> None:  # noqa: B027 - a no-op by default
        """Coordinator side, after the artifacts are in the output repository."""

    @abc.abstractmethod
    def prepare(self, ctx: BuildContext, runner: Runner, durations: dict[str, float]) -> JobInputs:
        """Coordinator side: read the sources from git; raise :class:`PipelineFailed`."""

    @abc.abstractmethod
    def build(
        self,
        inputs: JobInputs,
        ws: Workspace,
        runner: Runner,
        durations: dict[str, float],
    ) -> BuildProducts:
        """Build side: build from ``inputs`` in ``ws``; raise :class:`PipelineFailed`."""


@dataclass(frozen=True)
class JobOutputs:
    """:class:`BuildProducts` as bytes, sent back by a remote worker.

    ``failure`` is the :class:`PipelineFailed` of a failed build (its logs still travel).
    """

    package: str
    packages: tuple[Blob, ...] = ()
    #: The tree of the files folder; None when there is no such folder.
    files: tuple[Blob, ...] | None = None
    logs: tuple[Blob, ...] = ()
    version: str | None = None
    release: str | None = None
    stage_durations: tuple[tuple[str, float], ...] = ()
    failure: PipelineFailed | None = None
    #: Where it was built (host name), for messages.
    host: str = ""

    @property
    def size(self) -> int:
        """Bytes of file content carried."""
        return sum(len(b.data) for b in (*self.packages, *(self.files or ()), *self.logs))
