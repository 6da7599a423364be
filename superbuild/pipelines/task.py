"""A package build as a :class:`superbuild.jobs.Task`: prepare, build, collect.

1. :func:`prepare_inputs` (coordinator): the ``source`` stage -> :class:`JobInputs`.
2. :func:`build_products` (anywhere): the build stages from the inputs alone, in a
   scratch folder; it never reads the superproject nor writes the output repository.
   :func:`build_remote` wraps it for a remote worker: a temporary folder, and
   :class:`JobOutputs` holding the artifacts and the stage logs as bytes with their
   sha256.
3. :func:`collect_outputs` (coordinator): the ``collect`` stage.  From
   :class:`BuildProducts`, or from :class:`JobOutputs` whose checksums it verifies
   first, it copies the artifacts into the output repository
   (:func:`superbuild.outrepo.collect` / :func:`~superbuild.outrepo.collect_files`).

:class:`PackageTask` declares these phases to the executors (which know nothing of
pipelines): the local executor runs them in a row in one of its threads; the Dask
executor runs ``prepare`` and ``collect`` here and ships the build to a worker.
:func:`run_package` runs the three in a row without an executor (tests, tools).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from superbuild import outrepo, proc
from superbuild.errors import SuperbuildError
from superbuild.fileio import remove_tree
from superbuild.jobs import JobResult, Placement, Work
from superbuild.pipelines import registry
from superbuild.pipelines.api import (
    BuildContext,
    BuildProducts,
    JobInputs,
    JobOutputs,
    PackageBuild,
    PipelineFailed,
    Runner,
    Workspace,
)
from superbuild.pipelines.stage import Stage
from superbuild.pipelines.transport import Blob, corrupted, pack_tree
from superbuild.proc import Session

#: Where :func:`collect_outputs` unpacks what a worker sent, under ``ctx.work_dir``.
RECEIVED_DIR = "received"
#: The logs' folder in a remote worker's temporary folder (which is its work dir).
LOGS_DIR = ".superbuild-logs"


def _runner(runner: Runner | None) -> Runner:
    return runner or Session().run_logged


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
    pipeline = registry.get(ctx.package.pipeline, ctx.package.name)
    ctx = absolute_context(ctx)
    ctx.log_dir.mkdir(parents=True, exist_ok=True)
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    return pipeline.prepare(ctx, _runner(runner), {})


def _check_blobs(package: str, what: str, blobs: Iterable[Blob]) -> None:
    bad = corrupted(list(blobs))
    if bad:
        raise PipelineFailed(
            f"{package}: {what} corrupted in transit (sha256 mismatch: {', '.join(bad)})",
            package=package,
        )


def build_products(
    inputs: JobInputs,
    work_dir: Path,
    log_dir: Path,
    runner: Runner | None = None,
) -> BuildProducts:
    """Build side: run the build stages from ``inputs`` in ``work_dir``, logging to ``log_dir``.

    Reads nothing but ``inputs`` (and the build tools); raises :class:`PipelineFailed`.
    """
    pipeline = registry.get(inputs.package.pipeline, inputs.package.name)
    ws = Workspace(work_dir.absolute(), log_dir.absolute(), Path(inputs.log_dir))
    ws.work_dir.mkdir(parents=True, exist_ok=True)
    ws.log_dir.mkdir(parents=True, exist_ok=True)
    _check_blobs(inputs.package.name, "inputs", (*inputs.sources, *inputs.dependency_files))
    durations = dict(inputs.stage_durations)
    products = pipeline.build(inputs, ws, _runner(runner), durations)
    products.stage_durations = durations
    return products


def build_remote(
    inputs: JobInputs,
    runner: Runner | None = None,
    *,
    tmp_root: str | None = None,
) -> JobOutputs:
    """Build side, on a remote worker: :func:`build_products` in a temporary folder.

    Returns the artifacts and every log as bytes with their sha256.  A build failure
    (:class:`PipelineFailed`) is returned in ``failure`` with the logs written so far;
    other exceptions (a missing tool, a full disk) propagate so that the executor may
    retry the work elsewhere.  The temporary folder is removed in any case.
    """
    host = socket.gethostname()
    name = inputs.package.name
    with tempfile.TemporaryDirectory(
        # the owner in the name: a SIGKILLed run's folder is removed by the next build
        prefix=f"superbuild-{name}-{proc.owner_tag()}-",
        dir=tmp_root,
    ) as tmp:
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
            packages=tuple(Blob.read(p) for p in products.packages),
            files=files,
            logs=pack_tree(logs),
            version=products.version,
            release=products.release,
            stage_durations=tuple(products.stage_durations.items()),
            host=host,
        )


def receive_outputs(
    ctx: BuildContext, outputs: JobOutputs, expected: JobInputs | None = None
) -> BuildProducts:
    """Coordinator side: write a worker's logs to ``ctx.log_dir``, check and unpack its artifacts.

    Every checksum is verified before anything is unpacked; a mismatch raises
    :class:`PipelineFailed` (stage ``collect``) and nothing reaches the output
    repository.  A failure the worker reported is re-raised after its logs are written.
    Artifacts land in ``ctx.work_dir/received/`` for :func:`collect_outputs`; with
    ``expected`` (the inputs this coordinator prepared), the pipeline then checks them
    against what the job declared (:meth:`~superbuild.pipelines.api.Pipeline.check_received`):
    the worker is not believed, a refusal fails the package and publishes nothing.
    """
    ctx = absolute_context(ctx)
    name = ctx.package.name
    ctx.log_dir.mkdir(parents=True, exist_ok=True)
    bad = corrupted([*outputs.packages, *(outputs.files or ()), *outputs.logs])
    for log in outputs.logs:
        if log.intact() and log.kind == "file":
            log.write(ctx.log_dir)
    where = f" from {outputs.host}" if outputs.host else ""
    if bad:
        _refuse(ctx, f"sha256 mismatch for {', '.join(bad)} received{where}")
    if outputs.failure is not None:
        raise outputs.failure
    received = ctx.work_dir / RECEIVED_DIR
    if received.exists():
        shutil.rmtree(received)
    packages_dir, files_dir = received / "packages", received / "files"
    packages = [blob.write(packages_dir) for blob in outputs.packages]
    for blob in outputs.files or ():
        blob.write(files_dir)
    products = BuildProducts(
        package=name,
        packages=packages,
        files_dir=files_dir if outputs.files else None,
        version=outputs.version,
        release=outputs.release,
        stage_durations=dict(outputs.stage_durations),
    )
    if expected is not None:
        pipeline = registry.get(ctx.package.pipeline, name)
        problem = pipeline.check_received(ctx, expected, products)
        if problem:
            shutil.rmtree(received, ignore_errors=True)
            _refuse(ctx, f"{problem} (received{where})")
    return products


def _refuse(ctx: BuildContext, problem: str) -> None:
    """Fail the collect stage for what a worker sent: logged, nothing published."""
    log_path = ctx.log_dir / "collect.log"
    message = (
        f"{ctx.package.name}: collect stage failed: {problem}; nothing was written to the "
        f"output repository, see {log_path}"
    )
    with log_path.open("ab") as fh:
        fh.write(f"# error: {message}\n".encode("utf-8", "replace"))
    raise PipelineFailed(message, "collect", log_path, ctx.package.name)


def collect_outputs(
    ctx: BuildContext,
    outputs: BuildProducts | JobOutputs,
    runner: Runner | None = None,
    expected: JobInputs | None = None,
) -> PackageBuild:
    """Coordinator side: the collect stage; copy the artifacts into the output repository.

    Package files go through :func:`superbuild.outrepo.collect`, a non-empty files folder
    through :func:`~superbuild.outrepo.collect_files`.  :class:`JobOutputs` are first
    verified and unpacked (:func:`receive_outputs`).
    """
    ctx = absolute_context(ctx)
    if isinstance(outputs, JobOutputs):
        products = receive_outputs(ctx, outputs, expected)
    else:
        products = outputs
    durations = dict(products.stage_durations)
    files = products.files_dir
    has_files = files is not None and files.is_dir() and any(files.iterdir())
    artifacts: list[str] = []
    if products.packages or has_files:
        with Stage.of(ctx, "collect", _runner(runner), durations) as st:
            if products.packages:
                artifacts += outrepo.collect(ctx.output, products.packages)
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

    Creates ``ctx.log_dir`` and ``ctx.work_dir`` (the build stages run in
    ``ctx.work_dir``).  Raises :class:`PipelineFailed` when a stage fails,
    :class:`SuperbuildError` for an unknown pipeline or builder.
    """
    ctx = absolute_context(ctx)
    runner = _runner(runner)
    inputs = prepare_inputs(ctx, runner)
    products = build_products(inputs, ctx.work_dir, ctx.log_dir, runner)
    return collect_outputs(ctx, products, runner)


def build_here(inputs: JobInputs, work_dir: str, log_dir: str, *, session: Session) -> Any:
    """The run phase on this machine: the build stages in the package's scratch folder."""
    return build_products(inputs, Path(work_dir), Path(log_dir), session.run_logged)


def build_elsewhere(inputs: JobInputs, *, session: Session) -> JobOutputs:
    """The run phase on a remote worker (module level: it is pickled by reference)."""
    return build_remote(inputs, session.run_logged)


@dataclass(frozen=True)
class PackageTask:
    """One package build as a :class:`superbuild.jobs.Task`.

    ``prepared`` keeps the inputs a remote build was given, so that ``collect`` checks
    what came back against them.
    """

    ctx: BuildContext
    prepared: dict[str, JobInputs] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def resources(self) -> Mapping[str, int]:
        return registry.get(self.ctx.package.pipeline).resources(self.ctx)

    @property
    def needs_dependency_artifacts(self) -> bool:
        return registry.get(self.ctx.package.pipeline).needs_dependency_artifacts(self.ctx)

    @property
    def prepare_blocks(self) -> bool:
        return registry.get(self.ctx.package.pipeline).reads_git(self.ctx)

    def prepare(self, placement: Placement, session: Session) -> Work:
        ctx = absolute_context(self.ctx)
        inputs = prepare_inputs(ctx, session.run_logged)
        if not placement.remote:
            return Work(build_here, (inputs, os.fspath(ctx.work_dir), os.fspath(ctx.log_dir)))
        shipped = tuple(Blob.read(Path(p)) for p in placement.dependency_artifacts)
        inputs = dataclasses.replace(inputs, remote=True, dependency_files=shipped)
        self.prepared["inputs"] = inputs
        return Work(build_elsewhere, (inputs,))

    def collect(self, value: Any, session: Session) -> JobResult:
        ctx = self.ctx
        if not isinstance(value, BuildProducts | JobOutputs):
            raise SuperbuildError(
                f"{ctx.package.name}: the build returned {type(value).__name__}, not its "
                "products (is the same superbuild installed on the workers?)"
            )
        built = collect_outputs(ctx, value, session.run_logged, self.prepared.pop("inputs", None))
        # The scratch goes as soon as the package is collected: the clean-up overlaps
        # other builds instead of trailing the run.
        remove_tree(ctx.work_dir)
        registry.get(ctx.package.pipeline).published(absolute_context(ctx))
        output = ctx.output.absolute()
        return JobResult(
            status="succeeded",
            artifacts=list(built.artifacts),
            log=built.log_dir,
            version=built.version,
            release=built.release,
            stage_durations=dict(built.stage_durations),
            worker=value.host if isinstance(value, JobOutputs) else None,
            exports=tuple(os.fspath(output / a) for a in outrepo.binary_packages(built.artifacts)),
        )
