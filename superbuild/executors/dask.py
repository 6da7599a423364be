"""Run package builds on a Dask cluster (``superbuild build --executor dask``).

Imported only when this executor is chosen (``superbuild.executors`` registers a factory
that imports it), so Dask is an optional dependency: ``pip install superbuild[dask]``.

No filesystem is shared with the workers, and the executor knows nothing of what a job
does: it runs each job's :class:`~superbuild.jobs.Task` in its three phases.  ``prepare``
runs here (on a small thread pool when it ``prepare_blocks``, e.g. a package build's
``git archive``), told that the work runs remotely and, for a task that
``needs_dependency_artifacts``, given the ``exports`` of the job's dependencies in this
run; the :class:`~superbuild.jobs.Work` it returns is shipped to a worker
(:func:`superbuild.worker.run`, cloudpickle) with the task's ``resources``; what the work
returns comes back and ``collect`` runs here too (for a package: checksums verified,
logs written, artifacts copied into the output repository).

Failures:

- a build failure comes back with its logs and fails the package (no retry: it would
  fail again);
- any other exception raised on a worker (a missing tool, a full disk) is retried
  ``retries`` times (default 2), possibly on another worker;
- a worker that dies (killed, out of memory, host lost) has its task rescheduled by
  Dask; after ``allowed_failures + 1`` deaths (``distributed.scheduler.allowed-failures``,
  default 3) the package fails with "worker died N times while building X".

Only the coordinator writes the output repository, after the task's collect phase
verified what came back, so a lost worker never leaves half a package behind.

Without ``address``, an embedded :class:`distributed.LocalCluster` (processes, one
thread each, ``mock=1`` resource each, listening on 127.0.0.1 only) is started and
stopped with the executor.  A task that asks for a resource (mock builds ask for
``mock=1``) runs only on workers that offer it: start build hosts with
``dask worker ... --resources mock=1``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import dask.config
import distributed as _distributed

from superbuild import worker
from superbuild.errors import EXIT_FAILED, SuperbuildError, UsageError
from superbuild.executors.base import QueueExecutor
from superbuild.jobs import Placement
from superbuild.proc import Session

if TYPE_CHECKING:
    from superbuild.jobs import Completion, Job, JobResult

__all__ = ["DEFAULT_ALLOWED_FAILURES", "DEFAULT_RETRIES", "DaskExecutor", "WorkerDied"]

#: Retries of a task whose function raised on the worker (not a build failure).
DEFAULT_RETRIES = 2
#: Worker deaths a task survives on the embedded LocalCluster (Dask's own default).
DEFAULT_ALLOWED_FAILURES = 3
#: Threads of the coordinator preparing inputs and collecting outputs.
DEFAULT_COORDINATOR_THREADS = 4
#: Resources each worker of the embedded LocalCluster offers (mock builds ask for one).
LOCAL_RESOURCES = {"mock": 1}

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


class WorkerDied(SuperbuildError):
    """The workers running a job died more times than the scheduler allows."""

    exit_code = EXIT_FAILED


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
        worker_wait: float = 30.0,
        dashboard_address: str = "127.0.0.1:0",
        silence_logs: int = logging.CRITICAL,
        session: Session | None = None,
    ) -> None:
        if parallel < 1:
            raise ValueError(f"parallel must be at least 1, not {parallel}")
        if retries < 0 or allowed_failures < 0:
            raise ValueError("retries and allowed_failures must not be negative")
        self.parallel = parallel
        self.retries = retries
        self.address = address
        #: Processes this coordinator starts for the jobs (prepare and collect phases).
        self.session = session or Session()
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
        #: Jobs seen: id -> its dependencies; and the exports of those that succeeded,
        #: for dependents whose task needs its dependencies' artifacts.
        self._requires: dict[str, frozenset[str]] = {}
        self._exports: dict[str, tuple[str, ...]] = {}
        #: Resources some worker was seen to offer.
        self._offered: set[str] = set()
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
                    resources=LOCAL_RESOURCES,
                    preload=["superbuild.worker"],
                    scheduler_kwargs={"allowed_failures": allowed_failures},
                )
                self.client = distributed.Client(self.cluster, set_as_default=False)
            else:
                self.client = distributed.Client(
                    address, security=security, timeout=connect_timeout, set_as_default=False
                )
            _shorten_batching(self.client)
            if address is not None:
                self._check_cluster(address, worker_wait)
        except BaseException as exc:
            self._shutdown_cluster()
            self._pool.shutdown(wait=False)
            self._config.__exit__(None, None, None)
            if isinstance(exc, OSError | TimeoutError):
                where = address or "an embedded LocalCluster"
                raise UsageError(f"cannot connect to the Dask scheduler at {where}: {exc}") from exc
            raise

    def _check_cluster(self, address: str, wait: float) -> None:
        """Before anything is submitted: the cluster has workers, and each of them can
        import this superbuild on this Python's major.minor (one line, exit 2, if not)."""
        import sys

        from superbuild import __version__

        try:
            self.client.wait_for_workers(1, timeout=wait)
        except (TimeoutError, OSError) as exc:
            raise UsageError(
                f"the Dask scheduler at {address} has no workers (waited {wait:g}s): start "
                f"one with `dask worker {address} --preload superbuild.worker` on a build "
                "host (docs/distributed.md)"
            ) from exc

        def probe() -> tuple[str, str]:  # nested: pickled by value, runs without superbuild
            import sys as worker_sys

            try:
                import superbuild as worker_superbuild
            except ImportError as exc:
                return ("", f"cannot import superbuild ({exc})")
            found = "{}.{}".format(*worker_sys.version_info[:2])
            return (str(worker_superbuild.__version__), found)

        asked = self._pool.submit(self.client.run, probe, on_error="return")
        try:
            answers = asked.result(timeout=wait)
        except TimeoutError as exc:
            raise UsageError(
                f"the workers of the Dask scheduler at {address} do not answer (waited "
                f"{wait:g}s): are they listening on an address this host reaches "
                "(--listen-address with a real port, or --host)? (docs/distributed.md)"
            ) from exc
        python = "{}.{}".format(*sys.version_info[:2])
        wrong = []
        for name, answer in sorted(answers.items()):
            if isinstance(answer, BaseException):
                wrong.append(f"{name}: {type(answer).__name__}: {answer}")
            elif not answer[0]:
                wrong.append(f"{name}: {answer[1]}")
            elif answer != (__version__, python):
                wrong.append(f"{name}: superbuild {answer[0]} on Python {answer[1]}")
        if wrong:
            raise UsageError(
                f"Dask workers that cannot run this build ({'; '.join(wrong)}): every worker "
                f"needs superbuild {__version__} on Python {python}, as this host has"
            )

    # ------------------------------------------------------------------ protocol

    def submit(self, job: Job, priority: float) -> None:
        """Prepare ``job`` (on a coordinator thread when that blocks) and ship its work."""
        if self._closed or self._cancelled:
            raise RuntimeError("submit() on a closed or cancelled DaskExecutor")
        self._pending += 1
        start = time.monotonic()
        self._requires[job.id] = job.dependencies
        if job.task.prepare_blocks:  # git archive & co: not on the scheduler's thread
            self._pool.submit(self._guard, self._submit, job, priority, start)
        else:
            self._guard(self._submit, job, priority, start)

    def cancel(self) -> None:
        """Cancel every future, stop the builds' processes, stop the embedded cluster."""
        self._cancelled = True
        self._stopping.set()
        with self._lock:
            futures = list(self._futures.values())
            self._futures.clear()
            busy = self._busy
        if busy:
            self.session.cancel(grace=0.5)  # git processes of a preparing thread
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

    def _key(self, job: Job) -> str:
        key = f"superbuild-{self.token[:6]}-{job.id}"
        with self._lock:
            if key in self._keys:
                key = f"{key}-{next(self._seq)}"
            self._keys.add(key)
        return key

    def _submit(self, job: Job, priority: float, start: float) -> None:
        task = job.task
        resources = dict(task.resources)
        self._check_resources(job, resources)
        shipped: tuple[str, ...] = ()
        if task.needs_dependency_artifacts:
            # The workers see none of the coordinator's folders: ship this run's builds.
            shipped = dependency_exports(job.id, self._requires, self._exports)
        work = task.prepare(Placement(remote=True, dependency_artifacts=shipped), self.session)
        key = self._key(job)
        self._ship(
            job,
            start,
            key,
            lambda: self.client.submit(
                worker.run,
                work.fn,
                work.args,
                f"{self.token}{key}",
                key=key,
                pure=False,
                priority=priority,
                resources=resources or None,
                retries=self.retries,
            ),
            lambda future: self._finish(job, start, future),
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
                f"{what} {job.id}{f' (last on {last})' if last else ''}"
            ) from None
        finally:
            with self._lock:
                self._collected.append(future)

    def _finish(self, job: Job, start: float, future: Future) -> None:
        value = self._result(job, future, "building")
        result: JobResult = job.task.collect(value, self.session)
        self._exports[job.id] = result.exports
        self._done.put((job.id, result, time.monotonic() - start))

    def _check_resources(self, job: Job, resources: Mapping[str, int]) -> None:
        missing = [r for r in resources if r not in self._offered]
        if not missing:
            return
        workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
        for info in workers.values():
            self._offered.update(r for r, n in info.get("resources", {}).items() if n)
        missing = [r for r in resources if r not in self._offered]
        if missing:
            wanted = " ".join(f"{r}={resources[r]}" for r in missing)
            raise SuperbuildError(
                f"{job.id}: no Dask worker offers the resource {wanted} this job needs: "
                f"start build hosts with `dask worker {self.address or 'ADDRESS'} "
                f"--resources {wanted}`"
            )

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


def dependency_exports(
    name: str, requires: Mapping[str, Iterable[str]], exports: Mapping[str, Iterable[str]]
) -> tuple[str, ...]:
    """The exports of ``name``'s dependencies in this run, transitively (sorted).

    ``requires``: job -> its dependencies (jobs of this run); ``exports``: job -> what it
    exported when it succeeded.  Dependencies outside the run are not followed: they are
    not in ``requires``.
    """
    seen: set[str] = set()
    todo = list(requires.get(name, ()))
    while todo:
        dep = todo.pop()
        if dep in seen or dep not in requires:
            continue
        seen.add(dep)
        todo.extend(requires[dep])
    return tuple(sorted({path for dep in seen for path in exports.get(dep, ())}))


def _shorten_batching(client: Any) -> None:
    """Lower the client's message batching interval (see ``_CLIENT_BATCH_INTERVAL_S``)."""
    comm: Any = getattr(client, "scheduler_comm", None)
    interval = getattr(comm, "interval", None)
    if isinstance(interval, float) and interval > _CLIENT_BATCH_INTERVAL_S:
        comm.interval = _CLIENT_BATCH_INTERVAL_S


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
