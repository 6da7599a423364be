"""Run package builds on a Dask cluster (``superbuild build --executor dask``).

Imported only when this executor is chosen (``superbuild.executors`` registers a factory
that imports it), so Dask is an optional dependency: ``pip install superbuild[dask]``.

No filesystem is shared with the workers.  For a package build (a job whose function is
:func:`superbuild.build.build_job`), the coordinator -- this process -- runs the
``source`` stage (:func:`~superbuild.pipelines.prepare_inputs`: ``git archive`` at the
recorded commit, the spec) in a small thread pool, adds for mock the binary RPMs of this
run that the package transitively requires, and submits :func:`superbuild.worker.build`
with those :class:`~superbuild.pipelines.JobInputs`.  The worker builds in a temporary
folder and returns :class:`~superbuild.pipelines.JobOutputs`: artifacts and stage logs
as bytes with their sha256.  Back on the coordinator
:func:`~superbuild.pipelines.collect_outputs` verifies every checksum, writes the logs to
``<log_dir>/<stage>.log`` and collects the artifacts into the output repository as the
local executor does; then :func:`superbuild.build.publish` and
:func:`~superbuild.build.job_result`.  Other jobs are shipped as they are (cloudpickle).

Failures:

- a build failure comes back with its logs and fails the package (no retry: it would
  fail again);
- any other exception raised on a worker (a missing tool, a full disk) is retried
  ``retries`` times (default 2), possibly on another worker;
- a worker that dies (killed, out of memory, host lost) has its task rescheduled by
  Dask; after ``allowed_failures + 1`` deaths (``distributed.scheduler.allowed-failures``,
  default 3) the package fails with "worker died N times while building X".

Nothing reaches the output repository before the checksums are verified, and only the
coordinator writes there, so a lost worker never leaves half a package behind.

Without ``address``, an embedded :class:`distributed.LocalCluster` (processes, one
thread each, ``mock=1`` resource each, listening on 127.0.0.1 only) is started and
stopped with the executor.  Mock builds ask for the resource ``mock=1``: start build
hosts with ``dask worker ... --resources mock=1``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask.config
import distributed as _distributed

from superbuild import proc, worker
from superbuild.build import build_job, job_result, publish
from superbuild.errors import SuperbuildError, UsageError
from superbuild.executors.base import QueueExecutor
from superbuild.pipelines import (
    Blob,
    BuildContext,
    JobOutputs,
    PipelineFailed,
    collect_outputs,
    prepare_inputs,
)

if TYPE_CHECKING:
    from superbuild.jobs import Completion, Job, JobResult

__all__ = ["DEFAULT_ALLOWED_FAILURES", "DEFAULT_RETRIES", "DaskExecutor", "WorkerDied"]

#: Retries of a task whose function raised on the worker (not a build failure).
DEFAULT_RETRIES = 2
#: Worker deaths a task survives on the embedded LocalCluster (Dask's own default).
DEFAULT_ALLOWED_FAILURES = 3
#: Threads of the coordinator preparing inputs and collecting outputs.
DEFAULT_COORDINATOR_THREADS = 4
#: Resource a worker must offer to run mock builds (``dask worker --resources mock=1``).
MOCK_RESOURCE = "mock"

#: Batching interval of the client's messages to the scheduler.  Dask's default (10 ms)
#: caps a client at one batch of submissions per 10 ms: a package that becomes ready
#: when another completes would wait up to that long.  2 ms is what the scheduler and
#: the workers use for their own streams.
_CLIENT_BATCH_INTERVAL_S = 0.002

#: Dask's API is only partly annotated: use it untyped here (one place, at the edges).
distributed: Any = _distributed
_dask_config: Any = dask.config
#: A :class:`Future`.
Future = Any


class WorkerDied(PipelineFailed):
    """The workers running a package's build died more times than the scheduler allows."""


class DaskExecutor(QueueExecutor):
    """Run jobs on a Dask cluster: an embedded LocalCluster, or the scheduler at ``address``.

    ``parallel`` is the scheduler's ``-j`` (jobs in flight).  The embedded cluster gets
    ``n_workers`` (default ``parallel``) single-threaded worker processes and serves its
    HTTP endpoints (dashboard) on ``dashboard_address``, by default a free port of
    127.0.0.1.  With ``address``, ``security`` is passed to :class:`distributed.Client`
    (a :class:`distributed.security.Security` for TLS; by default Dask's configuration,
    ``distributed.comm.tls.*``).  ``retries``: re-runs of a task whose function raised on
    a worker; ``allowed_failures``: worker deaths a task survives on the embedded cluster
    (a remote scheduler has its own setting).

    Call ``submit``, ``wait``, ``cancel`` and ``close`` from one thread; use it as a
    context manager.  After ``cancel()`` it accepts no more jobs.
    """

    def __init__(
        self,
        parallel: int,
        *,
        address: str | None = None,
        n_workers: int | None = None,
        retries: int = DEFAULT_RETRIES,
        allowed_failures: int = DEFAULT_ALLOWED_FAILURES,
        coordinator_threads: int = DEFAULT_COORDINATOR_THREADS,
        security: Any = None,
        connect_timeout: float = 30.0,
        dashboard_address: str = "127.0.0.1:0",
        silence_logs: int = logging.CRITICAL,
    ) -> None:
        if parallel < 1:
            raise ValueError(f"parallel must be at least 1, not {parallel}")
        if retries < 0 or allowed_failures < 0:
            raise ValueError("retries and allowed_failures must not be negative")
        self.parallel = parallel
        self.retries = retries
        self.address = address
        #: Marker prefix of this executor's build processes (see :mod:`superbuild.worker`).
        self.token = f"{uuid.uuid4().hex[:12]}:"
        self._seq = itertools.count()
        self._done: queue.SimpleQueue[Completion] = queue.SimpleQueue()
        self._pending = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._closed = False
        self._cancelled = False
        self._busy = 0  # coordinator threads inside prepare/collect
        self._futures: dict[str, Future] = {}
        self._keys: set[str] = set()
        #: Futures whose results were collected, released after the next submission:
        #: releasing frees the worker's copy, and the scheduler's message doing so would
        #: otherwise delay (it batches) the next task sent to that worker.
        self._collected: list[Future] = []
        #: Build jobs seen: package -> what it requires; and the binary RPMs (relative
        #: to the output) of those that succeeded, for mock dependents.
        self._requires: dict[str, tuple[str, ...]] = {}
        self._rpms: dict[str, tuple[str, ...]] = {}
        self._mock_ok = False
        self._pool = ThreadPoolExecutor(
            max(1, coordinator_threads), thread_name_prefix="superbuild-dask"
        )
        self._config = _dask_config.set(
            {
                # Inputs travel inside the task (tarballs): no "large graph" warnings.
                "distributed.admin.large-graph-warning-threshold": "1 PiB",
                "distributed.scheduler.allowed-failures": allowed_failures,
                # The embedded cluster's workers: no stack sampling for the dashboard's
                # profile page every 10 ms (it competes with the builds for the GIL).
                "distributed.worker.profile.enabled": False,
            }
        )
        self.cluster: Any = None
        self.client: Any
        try:
            if address is None:
                self.cluster = distributed.LocalCluster(
                    n_workers=n_workers or parallel,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=dashboard_address,
                    silence_logs=silence_logs,
                    resources={MOCK_RESOURCE: 1},
                    preload=["superbuild.worker"],
                    scheduler_kwargs={"allowed_failures": allowed_failures},
                )
                self.client = distributed.Client(self.cluster, set_as_default=False)
            else:
                self.client = distributed.Client(
                    address, security=security, timeout=connect_timeout, set_as_default=False
                )
            _shorten_batching(self.client)
        except BaseException as exc:
            self._shutdown_cluster()
            self._pool.shutdown(wait=False)
            self._config.__exit__(None, None, None)
            if isinstance(exc, OSError | TimeoutError):
                where = address or "an embedded LocalCluster"
                raise UsageError(f"cannot connect to the Dask scheduler at {where}: {exc}") from exc
            raise

    # ------------------------------------------------------------------ protocol

    def submit(self, job: Job, priority: float) -> None:
        """Ship ``job``; a package build is prepared on a coordinator thread first."""
        if self._closed or self._cancelled:
            raise RuntimeError("submit() on a closed or cancelled DaskExecutor")
        self._pending += 1
        start = time.monotonic()
        ctx = _build_context(job)
        if ctx is not None:
            self._requires[job.id] = ctx.package.requires
            if _reads_git(ctx):  # git archive & co: not on the scheduler's thread
                self._pool.submit(self._guard, self._submit_build, job, ctx, priority, start)
            else:
                self._guard(self._submit_build, job, ctx, priority, start)
        else:
            self._guard(self._submit_plain, job, priority, start)

    def cancel(self) -> None:
        """Cancel every future, stop the builds' processes, stop the embedded cluster."""
        self._cancelled = True
        self._stopping.set()
        with self._lock:
            futures = list(self._futures.values())
            self._futures.clear()
            busy = self._busy
        if busy:
            proc.terminate_all(grace=0.5)  # git processes of a preparing thread
        self._pool.shutdown(wait=False, cancel_futures=True)
        if futures:
            with contextlib.suppress(Exception):
                self.client.cancel(futures, force=True, reason="superbuild: cancelled")
        self._terminate_builds()
        if self.cluster is not None:
            self._close_client()
            self._shutdown_cluster()
        self._pool.shutdown(wait=True)
        self._pending = 0

    def close(self) -> None:
        """Wait for the coordinator threads, stop leftovers, close the client and cluster."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._pool.shutdown(wait=True)
        with self._lock:
            collected, self._collected = self._collected, []
        for future in collected:
            with contextlib.suppress(Exception):
                future.release()
        if not self._cancelled:
            # Orphans of a worker that was killed mid-build (they run in sessions of
            # their own and outlive it) still carry this executor's marker.
            self._terminate_builds()
        self._close_client()
        self._shutdown_cluster()
        self._config.__exit__(None, None, None)

    # ------------------------------------------------------------------ coordinator side

    def _guard(self, fn: Callable[..., None], job: Job, *args: Any) -> None:
        """Run ``fn(job, *args)``; anything it raises becomes the job's completion."""
        start = args[-1]
        with self._lock:
            self._busy += 1
        try:
            if not self._stopping.is_set():
                fn(job, *args)
        except BaseException as exc:
            if (
                not isinstance(exc, Exception)
                and threading.current_thread() is threading.main_thread()
            ):
                raise  # Ctrl-C while submitting inline: the scheduler stops the run
            if not self._stopping.is_set():
                self._done.put((job.id, exc, time.monotonic() - start))
        finally:
            with self._lock:
                self._busy -= 1

    def _key(self, job: Job, ctx: BuildContext | None) -> str:
        run = ctx.log_dir.parent.name if ctx is not None else "job"
        key = f"{run}-{job.id}"
        with self._lock:
            if key in self._keys:
                key = f"{key}-{next(self._seq)}"
            self._keys.add(key)
        return key

    def _submit_build(self, job: Job, ctx: BuildContext, priority: float, start: float) -> None:
        mock = ctx.builder == "mock" and ctx.package.pipeline == "rpm"
        if mock:
            self._check_mock_workers()
        inputs = prepare_inputs(ctx)
        resources = None
        if mock:
            # The workers see none of the coordinator's folders: ship this run's RPMs.
            inputs = dataclasses.replace(
                inputs, extra_repos=(), repo_rpms=self._dependency_rpms(job.id, ctx.output)
            )
            resources = {MOCK_RESOURCE: 1}
        key = self._key(job, ctx)
        self._ship(
            job,
            start,
            key,
            lambda: self.client.submit(
                worker.build,
                inputs,
                f"{self.token}{key}",
                key=key,
                pure=False,
                priority=priority,
                resources=resources,
                retries=self.retries,
            ),
            lambda future: self._finish_build(job, ctx, start, future),
        )

    def _submit_plain(self, job: Job, priority: float, start: float) -> None:
        key = self._key(job, None)
        self._ship(
            job,
            start,
            key,
            lambda: self.client.submit(
                job.fn, *job.args, key=key, pure=False, priority=priority, retries=self.retries
            ),
            lambda future: self._finish_plain(job, start, future),
        )

    def _ship(
        self,
        job: Job,
        start: float,
        key: str,
        send: Callable[[], Future],
        finish: Callable[[Future], None],
    ) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            future = send()
            self._futures[key] = future
            collected, self._collected = self._collected, []
        for done_future in collected:
            done_future.release()

        def done(future: Future) -> None:  # on Dask's callback thread
            if self._stopping.is_set():
                return
            with contextlib.suppress(RuntimeError):  # pool shut down: we are stopping
                self._pool.submit(self._guard, lambda _job, _start: finish(future), job, start)

        future.add_done_callback(done)

    def _result(self, job: Job, future: Future, what: str) -> Any:
        """The future's value, once; a dead worker or a lost task become clear errors."""
        with self._lock:
            self._futures.pop(future.key, None)
        try:
            if future.cancelled():
                raise SuperbuildError(
                    f"{job.id}: the Dask scheduler dropped the task while {what} it "
                    "(scheduler restarted or connection lost)"
                )
            return future.result()
        except distributed.client.FutureCancelledError:
            raise SuperbuildError(
                f"{job.id}: the Dask scheduler dropped the task while {what} it "
                "(scheduler restarted or connection lost)"
            ) from None
        except distributed.KilledWorker as exc:
            deaths = _allowed_failures(exc) + 1
            last = _worker_name(exc)
            raise WorkerDied(
                f"{job.id}: worker died {deaths} time{'s' if deaths != 1 else ''} while "
                f"{what} {job.id}{f' (last on {last})' if last else ''}",
                package=job.id,
            ) from None
        finally:
            with self._lock:
                self._collected.append(future)

    def _finish_build(self, job: Job, ctx: BuildContext, start: float, future: Future) -> None:
        outputs = self._result(job, future, "building")
        if not isinstance(outputs, JobOutputs):
            raise SuperbuildError(
                f"{job.id}: the worker returned {type(outputs).__name__}, not JobOutputs "
                "(is the same superbuild installed on the workers?)"
            )
        built = collect_outputs(ctx, outputs)
        publish(ctx)
        result = job_result(built)
        result.data["worker"] = outputs.host
        self._rpms[job.id] = tuple(a for a in built.artifacts if a.startswith("rpms/"))
        self._done.put((job.id, result, time.monotonic() - start))

    def _finish_plain(self, job: Job, start: float, future: Future) -> None:
        result: JobResult | BaseException = self._result(job, future, "running")
        self._done.put((job.id, result, time.monotonic() - start))

    def _dependency_rpms(self, name: str, output: Path) -> tuple[Blob, ...]:
        """Binary RPMs this run built for what ``name`` requires, transitively."""
        return tuple(
            Blob.read(output / rel) for rel in dependency_rpms(name, self._requires, self._rpms)
        )

    def _check_mock_workers(self) -> None:
        if self._mock_ok:
            return
        workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
        if not any(w.get("resources", {}).get(MOCK_RESOURCE) for w in workers.values()):
            raise SuperbuildError(
                f"no Dask worker offers the resource {MOCK_RESOURCE}=1 that mock builds "
                f"need: start build hosts with `dask worker {self.address or 'ADDRESS'} "
                f"--resources {MOCK_RESOURCE}=1`"
            )
        self._mock_ok = True

    # ------------------------------------------------------------------ shutdown

    def _terminate_builds(self) -> None:
        """Stop this executor's build processes on every worker host and on this one."""
        with contextlib.suppress(Exception):
            self.client.run(worker.terminate, self.token, on_error="ignore")
        worker.terminate(self.token)

    def _close_client(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def _shutdown_cluster(self) -> None:
        cluster, self.cluster = self.cluster, None
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()


def dependency_rpms(
    name: str, requires: Mapping[str, Iterable[str]], rpms: Mapping[str, Iterable[str]]
) -> list[str]:
    """The RPMs (paths relative to the output) built for ``name``'s requirements, transitively.

    ``requires``: package -> what it requires (packages of this run); ``rpms``: package ->
    the binary RPMs it produced in this run.  Requirements outside the run are not
    followed: they are not in ``requires``.
    """
    seen: set[str] = set()
    todo = list(requires.get(name, ()))
    while todo:
        dep = todo.pop()
        if dep in seen or dep not in requires:
            continue
        seen.add(dep)
        todo.extend(requires[dep])
    return sorted({rpm for dep in seen for rpm in rpms.get(dep, ())})


def _reads_git(ctx: BuildContext) -> bool:
    """Does preparing ``ctx`` read git (anything but a ``command`` with ``source: none``)?"""
    return not (ctx.package.pipeline == "command" and ctx.package.source == "none")


def _shorten_batching(client: Any) -> None:
    """Lower the client's message batching interval (see ``_CLIENT_BATCH_INTERVAL_S``)."""
    comm: Any = getattr(client, "scheduler_comm", None)
    interval = getattr(comm, "interval", None)
    if isinstance(interval, float) and interval > _CLIENT_BATCH_INTERVAL_S:
        comm.interval = _CLIENT_BATCH_INTERVAL_S


def _build_context(job: Job) -> BuildContext | None:
    if job.fn is build_job and len(job.args) == 1 and isinstance(job.args[0], BuildContext):
        return job.args[0]
    return None


def _allowed_failures(exc: BaseException) -> int:
    value = getattr(exc, "allowed_failures", None)
    if value is None and len(exc.args) > 2:
        value = exc.args[2]
    return int(value) if isinstance(value, int) else DEFAULT_ALLOWED_FAILURES


def _worker_name(exc: BaseException) -> str:
    last = getattr(exc, "last_worker", None)
    if last is None and len(exc.args) > 1:
        last = exc.args[1]
    address = getattr(last, "address", None)
    return str(address) if address else ""
