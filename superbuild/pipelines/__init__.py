"""Packaging pipelines: one package at one recorded commit -> artifacts in the output repository.

A package build runs in three parts, so that its middle can run on another machine:

1. :func:`prepare_inputs` (coordinator): the ``source`` stage.  It reads what it needs
   from git (the recorded commit's spec, ``git archive`` tarball, ...) and returns
   :class:`JobInputs`: plain data and file contents (:class:`Blob`), no paths of the
   superproject.
2. :func:`build_products` (worker): the build stages (``srpm``, ``rpm``, ``sign`` or the
   ``command`` steps) in a scratch folder, from the inputs alone.  It never reads the
   superproject nor writes the output repository; it returns :class:`BuildProducts`
   (paths in its scratch folder).  :func:`build_from_inputs` wraps it for a remote
   worker: a temporary folder, and :class:`JobOutputs` holding the artifacts and the
   stage logs as bytes with their sha256.
3. :func:`collect_outputs` (coordinator): the ``collect`` stage.  From
   :class:`BuildProducts`, or from :class:`JobOutputs` whose checksums it verifies
   first, it copies the artifacts into the output repository
   (:func:`superbuild.outrepo.collect` / :func:`~superbuild.outrepo.collect_files`) and
   returns a :class:`PackageBuild`.

:func:`run_package` runs the three in a row on this machine (the local executor); the
Dask executor runs the middle one on a worker.  Both produce the same logs, artifacts
and :class:`PackageBuild`.

Every stage writes ``<log_dir>/<stage>.log`` (the commands it ran, then their output).
A failing stage raises :class:`PipelineFailed` whose one-line message names the package,
the stage and the log (the coordinator's path, even when a worker wrote it); the caller
shows the log's tail.  Commands are started through the injected ``runner``
(:func:`superbuild.proc.run_logged` by default), so tests can pass a fake that records
argv.

Pipelines never print; they only write their logs and return their records.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import shlex
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO, TYPE_CHECKING, Literal, NoReturn, Protocol

from superbuild import git as g
from superbuild import outrepo, proc
from superbuild.errors import (
    EXIT_FAILED,
    Interrupted,
    SuperbuildError,
    ToolMissingError,
)

if TYPE_CHECKING:
    from superbuild.package import Package

__all__ = [
    "PIPELINES",
    "Blob",
    "BuildContext",
    "BuildProducts",
    "JobInputs",
    "JobOutputs",
    "PackageBuild",
    "Pipeline",
    "PipelineFailed",
    "Runner",
    "SourceUnavailable",
    "SpecInputs",
    "Stage",
    "Workspace",
    "build_from_inputs",
    "build_products",
    "collect_outputs",
    "prepare_inputs",
    "run_package",
]

BUILDERS = ("rpmbuild", "mock")

#: Where :func:`collect_outputs` unpacks what a worker sent, under ``ctx.work_dir``.
RECEIVED_DIR = "received"
#: The logs' folder in a remote worker's temporary folder (which is its work dir).
LOGS_DIR = ".superbuild-logs"


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


# --------------------------------------------------------------------------- transport


def sha256_of(data: bytes) -> str:
    """The hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Blob:
    """One file (or folder, or symlink) travelling between coordinator and worker.

    ``name`` is a relative posix path; ``data`` the file's bytes (a symlink's target;
    empty for a folder) and ``sha256`` their checksum, computed by the sender and checked
    by the receiver (:meth:`intact`).
    """

    name: str
    data: bytes
    sha256: str
    kind: Literal["file", "dir", "link"] = "file"
    mode: int = 0o644

    @classmethod
    def of(
        cls,
        name: str,
        data: bytes,
        kind: Literal["file", "dir", "link"] = "file",
        mode: int = 0o644,
    ) -> Blob:
        """A blob of ``data`` with its checksum."""
        return cls(name, data, sha256_of(data), kind, mode)

    @classmethod
    def read(cls, path: Path, name: str | None = None) -> Blob:
        """The regular file ``path`` as a blob named ``name`` (default: its file name)."""
        data = path.read_bytes()
        return cls.of(name or path.name, data, "file", stat.S_IMODE(path.stat().st_mode))

    def intact(self) -> bool:
        """Do the bytes still match the checksum the sender computed?"""
        return sha256_of(self.data) == self.sha256

    def write(self, root: Path) -> Path:
        """Create the blob under ``root``; refuses names that would leave ``root``."""
        rel = PurePosixPath(self.name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise SuperbuildError(f"refusing a file named {self.name!r} from a worker")
        path = root.joinpath(*rel.parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.kind == "dir":
            path.mkdir(exist_ok=True)
        elif self.kind == "link":
            path.symlink_to(os.fsdecode(self.data))
        else:
            path.write_bytes(self.data)
            path.chmod(self.mode)
        return path


def pack_tree(root: Path) -> tuple[Blob, ...]:
    """Every file, symlink and folder under ``root`` as blobs named relative to it (sorted).

    Symlinks are kept as links (never followed); other special files are left out.
    """
    blobs: list[Blob] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel = here.relative_to(root)
        for name in [*dirnames, *filenames]:
            path = here / name
            relname = (rel / name).as_posix()
            if path.is_symlink():
                blobs.append(Blob.of(relname, os.fsencode(path.readlink()), "link"))
            elif path.is_dir():
                blobs.append(Blob.of(relname, b"", "dir", stat.S_IMODE(path.stat().st_mode)))
            elif path.is_file():
                blobs.append(Blob.read(path, relname))
    return tuple(sorted(blobs, key=lambda b: b.name))


@dataclass(frozen=True)
class SpecInputs:
    """The ``rpm`` pipeline's spec, as the source stage read it from git."""

    #: The full commit id the source stage resolved (stamped as ``VCS:``).
    commit: str
    #: File name of the spec (``hello.spec``).
    file_name: str
    #: Its text, with ``version:`` applied; provenance is added by the srpm stage.
    text: str
    #: ``git rev-list --count <commit>``: the ``n`` of the Release suffix.
    commit_count: int
    #: Name, Version and Release as ``rpmspec`` reads them.
    name: str
    version: str
    release: str


@dataclass(frozen=True)
class JobInputs:
    """What a worker needs to build one package; no path of the coordinator is opened.

    Made by :func:`prepare_inputs`; picklable (Dask ships it with the task).
    """

    package: Package
    commit: str
    builder: str
    #: The coordinator's ``<log_dir>``: failure messages name their logs there.
    log_dir: str
    mock_config: str | None = None
    #: mock: repositories given with ``--addrepo`` when they have metadata on the worker.
    extra_repos: tuple[str, ...] = ()
    sign_key: str | None = None
    gpg_home: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    #: rpm: the files of ``SOURCES`` (tarball, patches); command: the ``git archive`` tarball.
    sources: tuple[Blob, ...] = ()
    spec: SpecInputs | None = None
    #: mock: binary RPMs of this run that the package needs, made a repository on the worker.
    repo_rpms: tuple[Blob, ...] = ()
    #: Durations of the stages the coordinator ran (``source``).
    stage_durations: tuple[tuple[str, float], ...] = ()

    @property
    def size(self) -> int:
        """Bytes of file content carried."""
        return sum(len(b.data) for b in (*self.sources, *self.repo_rpms))


@dataclass
class BuildProducts:
    """What the worker-side stages left in the worker's scratch folder."""

    package: str
    #: rpm: binary RPMs and the source RPM.
    rpms: list[Path] = field(default_factory=list)
    #: command: the folder whose contents become ``files/<package>/``.
    files_dir: Path | None = None
    version: str | None = None
    release: str | None = None
    stage_durations: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class JobOutputs:
    """:class:`BuildProducts` as bytes, sent back by a worker (:func:`build_from_inputs`).

    ``failure`` is the :class:`PipelineFailed` of a failed build (its logs still travel).
    """

    package: str
    rpms: tuple[Blob, ...] = ()
    #: command: the tree of ``SUPERBUILD_OUTPUT``; None when there is no such folder.
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
        return sum(len(b.data) for b in (*self.rpms, *(self.files or ()), *self.logs))


# --------------------------------------------------------------------------- errors


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


@dataclass(frozen=True)
class Workspace:
    """Where the worker-side stages run: scratch and log folders.

    ``shown_log_dir`` is how failure messages name the logs: the coordinator's
    ``<log_dir>``, where the logs end up even when a worker wrote them elsewhere.
    """

    work_dir: Path
    log_dir: Path
    shown_log_dir: Path

    def stage(
        self, package: Package, name: str, runner: Runner, durations: dict[str, float]
    ) -> Stage:
        """A :class:`Stage` logging into this workspace."""
        return Stage(
            package, name, runner, durations, log_dir=self.log_dir, shown_log_dir=self.shown_log_dir
        )


class Pipeline(Protocol):
    """One way of turning a package into artifacts (``rpm``, ``command``)."""

    name: str
    stages: tuple[str, ...]

    def prepare(self, ctx: BuildContext, runner: Runner, durations: dict[str, float]) -> JobInputs:
        """Coordinator side: read the sources from git; raise :class:`PipelineFailed`."""
        ...

    def build(
        self,
        inputs: JobInputs,
        ws: Workspace,
        runner: Runner,
        durations: dict[str, float],
    ) -> BuildProducts:
        """Worker side: build from ``inputs`` in ``ws``; raise :class:`PipelineFailed`."""
        ...


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
    def of(cls, ctx: BuildContext, name: str, runner: Runner, durations: dict[str, float]) -> Stage:
        """A coordinator-side stage, logging into ``ctx.log_dir``."""
        return cls(ctx.package, name, runner, durations, log_dir=ctx.log_dir)

    def __enter__(self) -> Stage:
        self._start = time.monotonic()
        self._log = self.file.open("wb")
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


def inputs_for(
    ctx: BuildContext,
    durations: Mapping[str, float],
    *,
    sources: Iterable[Blob] = (),
    spec: SpecInputs | None = None,
) -> JobInputs:
    """The :class:`JobInputs` of ``ctx`` carrying ``sources`` and ``spec``."""
    return JobInputs(
        package=ctx.package,
        commit=ctx.commit,
        builder=ctx.builder,
        log_dir=os.fspath(ctx.log_dir),
        mock_config=ctx.mock_config,
        extra_repos=tuple(os.fspath(r) for r in ctx.extra_repos),
        sign_key=ctx.sign_key,
        gpg_home=ctx.gpg_home,
        env=ctx.env,
        sources=tuple(sources),
        spec=spec,
        stage_durations=tuple(durations.items()),
    )


# --------------------------------------------------------------------------- the three parts


def _pipeline(package: Package) -> Pipeline:
    pipeline = PIPELINES.get(package.pipeline)
    if pipeline is None:
        raise SuperbuildError(
            f"{package.name}: unknown pipeline {package.pipeline!r} "
            f"(known: {', '.join(sorted(PIPELINES))})"
        )
    return pipeline


def absolute_context(ctx: BuildContext) -> BuildContext:
    """``ctx`` with absolute paths (rpm macros and the steps' environment need them)."""
    return dataclasses.replace(
        ctx,
        source_repo=ctx.source_repo.absolute(),
        output=ctx.output.absolute(),
        work_dir=ctx.work_dir.absolute(),
        log_dir=ctx.log_dir.absolute(),
    )


def prepare_inputs(ctx: BuildContext, runner: Runner | None = None) -> JobInputs:
    """Coordinator side: create ``ctx.log_dir`` and ``ctx.work_dir``, run the source stage.

    Raises :class:`PipelineFailed` (:class:`SourceUnavailable` for a missing commit),
    :class:`SuperbuildError` for an unknown pipeline or builder.
    """
    pipeline = _pipeline(ctx.package)
    ctx = absolute_context(ctx)
    ctx.log_dir.mkdir(parents=True, exist_ok=True)
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    return pipeline.prepare(ctx, runner or proc.run_logged, {})


def build_products(
    inputs: JobInputs,
    work_dir: Path,
    log_dir: Path,
    runner: Runner | None = None,
) -> BuildProducts:
    """Worker side: run the build stages from ``inputs`` in ``work_dir``, logging to ``log_dir``.

    Reads nothing but ``inputs`` (and the build tools); raises :class:`PipelineFailed`.
    """
    pipeline = _pipeline(inputs.package)
    ws = Workspace(work_dir.absolute(), log_dir.absolute(), Path(inputs.log_dir))
    ws.work_dir.mkdir(parents=True, exist_ok=True)
    ws.log_dir.mkdir(parents=True, exist_ok=True)
    _check_blobs(inputs.package.name, "inputs", (*inputs.sources, *inputs.repo_rpms))
    durations = dict(inputs.stage_durations)
    products = pipeline.build(inputs, ws, runner or proc.run_logged, durations)
    products.stage_durations = durations
    return products


def _check_blobs(package: str, what: str, blobs: Iterable[Blob]) -> None:
    bad = [b.name for b in blobs if not b.intact()]
    if bad:
        raise PipelineFailed(
            f"{package}: {what} corrupted in transit (sha256 mismatch: {', '.join(bad)})",
            package=package,
        )


def build_from_inputs(
    inputs: JobInputs,
    runner: Runner | None = None,
    *,
    tmp_root: str | None = None,
) -> JobOutputs:
    """Worker side, for a remote worker: :func:`build_products` in a temporary folder.

    Returns the artifacts and every log as bytes with their sha256.  A build failure
    (:class:`PipelineFailed`) is returned in ``failure`` with the logs written so far;
    other exceptions (a missing tool, a full disk) propagate so that Dask may retry the
    task elsewhere.  The temporary folder is removed in any case.
    """
    host = socket.gethostname()
    name = inputs.package.name
    with tempfile.TemporaryDirectory(prefix=f"superbuild-{name}-", dir=tmp_root) as tmp:
        work, logs = Path(tmp), Path(tmp) / LOGS_DIR
        logs.mkdir()
        try:
            products = build_products(inputs, work, logs, runner)
        except PipelineFailed as exc:
            return JobOutputs(
                package=name,
                logs=pack_tree(logs),
                stage_durations=inputs.stage_durations,
                failure=exc,
                host=host,
            )
        files = None
        if products.files_dir is not None and products.files_dir.is_dir():
            files = pack_tree(products.files_dir)
        return JobOutputs(
            package=name,
            rpms=tuple(Blob.read(p) for p in products.rpms),
            files=files,
            logs=pack_tree(logs),
            version=products.version,
            release=products.release,
            stage_durations=tuple(products.stage_durations.items()),
            host=host,
        )


def receive_outputs(ctx: BuildContext, outputs: JobOutputs) -> BuildProducts:
    """Coordinator side: write a worker's logs to ``ctx.log_dir``, check and unpack its artifacts.

    Every checksum is verified before anything is unpacked; a mismatch raises
    :class:`PipelineFailed` (stage ``collect``) and nothing reaches the output
    repository.  A failure the worker reported is re-raised after its logs are written.
    Artifacts land in ``ctx.work_dir/received/`` for :func:`collect_outputs`.
    """
    ctx = absolute_context(ctx)
    name = ctx.package.name
    ctx.log_dir.mkdir(parents=True, exist_ok=True)
    bad = [b.name for b in (*outputs.rpms, *(outputs.files or ()), *outputs.logs) if not b.intact()]
    for log in outputs.logs:
        if log.intact() and log.kind == "file":
            log.write(ctx.log_dir)
    where = f" from {outputs.host}" if outputs.host else ""
    if bad:
        log_path = ctx.log_dir / "collect.log"
        message = (
            f"{name}: collect stage failed: sha256 mismatch for {', '.join(bad)} received{where}; "
            f"nothing was written to the output repository, see {log_path}"
        )
        with log_path.open("ab") as fh:
            fh.write(f"# error: {message}\n".encode("utf-8", "replace"))
        raise PipelineFailed(message, "collect", log_path, name)
    if outputs.failure is not None:
        raise outputs.failure
    received = ctx.work_dir / RECEIVED_DIR
    if received.exists():
        shutil.rmtree(received)
    rpm_dir, files_dir = received / "rpms", received / "files"
    rpms = [blob.write(rpm_dir) for blob in outputs.rpms]
    for blob in outputs.files or ():
        blob.write(files_dir)
    return BuildProducts(
        package=name,
        rpms=rpms,
        files_dir=files_dir if outputs.files else None,
        version=outputs.version,
        release=outputs.release,
        stage_durations=dict(outputs.stage_durations),
    )


def collect_outputs(ctx: BuildContext, outputs: BuildProducts | JobOutputs) -> PackageBuild:
    """Coordinator side: the collect stage; copy the artifacts into the output repository.

    RPMs go through :func:`superbuild.outrepo.collect`, a non-empty files folder through
    :func:`~superbuild.outrepo.collect_files`.  :class:`JobOutputs` are first verified and
    unpacked (:func:`receive_outputs`).
    """
    ctx = absolute_context(ctx)
    products = receive_outputs(ctx, outputs) if isinstance(outputs, JobOutputs) else outputs
    durations = dict(products.stage_durations)
    files = products.files_dir
    has_files = files is not None and files.is_dir() and any(files.iterdir())
    artifacts: list[str] = []
    if products.rpms or has_files:
        with Stage.of(ctx, "collect", proc.run_logged, durations) as st:
            if products.rpms:
                artifacts += outrepo.collect(ctx.output, products.rpms)
            if has_files:
                assert files is not None
                artifacts += outrepo.collect_files(ctx.output, ctx.package.name, files)
            st.note(*(os.fspath(ctx.output / a) for a in artifacts))
    return PackageBuild(
        name=ctx.package.name,
        commit=ctx.commit,
        artifacts=artifacts,
        log_dir=os.fspath(ctx.log_dir),
        version=products.version,
        release=products.release,
        stage_durations=durations,
    )


def run_package(ctx: BuildContext, runner: Runner | None = None) -> PackageBuild:
    """Build one package on this machine: prepare, build and collect in a row.

    Creates ``ctx.log_dir`` and ``ctx.work_dir`` (the worker-side stages run in
    ``ctx.work_dir``).  Raises :class:`PipelineFailed` when a stage fails,
    :class:`SuperbuildError` for an unknown pipeline or builder.
    """
    ctx = absolute_context(ctx)
    inputs = prepare_inputs(ctx, runner)
    products = build_products(inputs, ctx.work_dir, ctx.log_dir, runner)
    return collect_outputs(ctx, products)


# The pipeline modules import the definitions above, so register them last.
from superbuild.pipelines.command import CommandPipeline  # noqa: E402
from superbuild.pipelines.rpm import RpmPipeline  # noqa: E402

#: Pipelines by manifest ``pipeline:`` value.
PIPELINES: dict[str, Pipeline] = {
    "rpm": RpmPipeline(),
    "command": CommandPipeline(),
}
