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

- a job that waits longer than ``no_worker_timeout`` (default 60 s,
  ``$SUPERBUILD_DASK_NO_WORKER_TIMEOUT``) with no worker able to take it (every worker
  left, or none offers its resources) fails with that reason;
- a lost scheduler fails the jobs in flight ("lost the connection to the Dask
  scheduler"); on the workers, each job notices and stops itself (:mod:`superbuild.worker`).

Only the coordinator writes the output repository, after the task's collect phase
verified what came back, so a lost worker never leaves half a package behind.

Every wait is bounded or interruptible: the coordinator's threads are daemons that
nothing joins for ever, and every call to the scheduler in ``cancel()``/``close()`` has
a timeout, so Ctrl-C ends a build within seconds whatever state the cluster is in.
Configuration errors (a ``tls://`` address without TLS settings, encryption required
with ``tcp://``, an address that is not one) are :class:`~superbuild.errors.UsageError`
before any connection is tried.

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
from typing import TYPE_CHECKING, Any, TypeVar

import dask.config
import distributed as _distributed

from superbuild import worker
from superbuild.errors import EXIT_FAILED, SuperbuildError, UsageError
from superbuild.executors.base import SIGNAL_CHECK_S, QueueExecutor
from superbuild.jobs import JobRunning, Placement
from superbuild.proc import Session

if TYPE_CHECKING:
    from superbuild.jobs import Completion, Job, JobResult

__all__ = [
    "DEFAULT_ALLOWED_FAILURES",
    "DEFAULT_RETRIES",
    "DaskExecutor",
    "NoWorker",
    "WorkerDied",
    "check_address",
]

#: Retries of a task whose function raised on the worker (not a build failure).
DEFAULT_RETRIES = 2
#: Worker deaths a task survives on the embedded LocalCluster (Dask's own default).
DEFAULT_ALLOWED_FAILURES = 3
#: Threads of the coordinator preparing inputs and collecting outputs.
DEFAULT_COORDINATOR_THREADS = 4
#: Resources each worker of the embedded LocalCluster offers (mock builds ask for one).
LOCAL_RESOURCES = {"mock": 1}
#: How long a job may wait with no worker able to take it before it fails.
DEFAULT_NO_WORKER_TIMEOUT = 60.0
#: How often the coordinator asks the scheduler about the jobs in flight.
MONITOR_INTERVAL_S = 1.0
#: Bound of each call to the scheduler while cancelling or closing.
_STOP_CALL_S = 3.0

_T = TypeVar("_T")

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


class NoWorker(SuperbuildError):
    """No worker could take a job for too long, or the scheduler was lost."""

    exit_code = EXIT_FAILED


class _Threads:
    """A few daemon threads running submitted calls.

    Not :class:`concurrent.futures.ThreadPoolExecutor`: its threads are joined when the
    interpreter exits, so one stuck in a call to an unreachable worker (fetching a
    result) would hold the process for ever after Ctrl-C.  Nothing joins these threads
    without a timeout.
    """

    def __init__(self, count: int, name: str) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True)
            for n in range(1, count + 1)
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while (call := self._calls.get()) is not None:
            fn, args = call
            with contextlib.suppress(BaseException):  # callers report their own errors
                fn(*args)
            del fn, args, call

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._closed:
            raise RuntimeError("the coordinator's threads are shut down")
        self._calls.put((fn, args))

    def shutdown(self, timeout: float) -> None:
        """Drop what has not started; wait up to ``timeout`` for the running calls."""
        if not self._closed:
            self._closed = True
            with contextlib.suppress(queue.Empty):
                while True:
                    self._calls.get_nowait()
            for _ in self._threads:
                self._calls.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def _bounded(fn: Callable[[], _T], timeout: float, what: str) -> _T:
    """``fn()`` on a daemon thread, waited for in short slices (Ctrl-C is seen at once)
    for at most ``timeout`` seconds; TimeoutError naming ``what`` after that (the call is
    abandoned)."""
    box: dict[str, Any] = {}
    finished = threading.Event()

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the waiting thread
            box["error"] = exc
        finally:
            finished.set()

    threading.Thread(target=target, name="superbuild-dask-call", daemon=True).start()
    deadline = time.monotonic() + timeout
    while not finished.wait(max(0.0, min(SIGNAL_CHECK_S, deadline - time.monotonic()))):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: no answer in {timeout:g}s")
    if "error" in box:
        raise box["error"]
    value: _T = box["value"]
    return value


def _quietly(fn: Callable[[], Any], timeout: float = _STOP_CALL_S) -> None:
    """``fn()`` bounded by ``timeout``, errors ignored (best effort while stopping)."""
    with contextlib.suppress(Exception):
        _bounded(fn, timeout, "stopping")


def _loopback(host: str) -> bool:
    import ipaddress

    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_address(address: str, security: Any, *, insecure: bool = False) -> Any:
    """The :class:`distributed.security.Security` to connect to ``address`` with, or a
    one-line :class:`UsageError` for what cannot work: an address that is not
    ``SCHEME://HOST:PORT``, ``tls://`` without a TLS context (CA, certificate and key),
    encryption required with a plain address, a non-loopback address without TLS and a
    client certificate unless ``insecure`` (whoever runs the scheduler or a worker can
    run code on this host: docs/security.md)."""
    from distributed.comm.addressing import parse_address, parse_host_port

    settings = "set distributed.comm.tls.ca-file, .client.cert and .client.key"
    how = f"{settings} (DASK_DISTRIBUTED__COMM__TLS__CA_FILE, ...; docs/distributed.md)"
    try:
        scheme, location = parse_address(address, strict=True)
        if scheme == "inproc":  # a cluster in this very process (library use, tests)
            return security
        host, port = parse_host_port(location)
    except ValueError as exc:
        raise UsageError(
            f"bad Dask scheduler address {address!r} ({exc}): expected tcp://HOST:PORT or "
            "tls://HOST:PORT"
        ) from None
    if scheme not in ("tcp", "tls") or not port:
        raise UsageError(
            f"bad Dask scheduler address {address!r}: expected tcp://HOST:PORT or tls://HOST:PORT"
        )
    if security is None:
        security = distributed.security.Security()
    try:
        args = security.get_connection_args("client")
    except (OSError, ValueError) as exc:
        raise UsageError(f"the Dask TLS settings cannot be used ({exc}): {how}") from None
    context = args.get("ssl_context")
    if scheme == "tls" and context is None:
        raise UsageError(
            f"{address} is a tls:// address but Dask has no TLS settings for clients "
            f"(a CA file alone is not enough): {how}"
        )
    if scheme != "tls" and args.get("require_encryption"):
        raise UsageError(
            f"the Dask configuration requires encryption, and {address} is not a tls:// "
            "address: use tls://HOST:PORT (the scheduler listening with TLS)"
        )
    if not insecure and not _loopback(host):
        has_cert = bool(getattr(security, "tls_client_cert", None))
        if scheme != "tls" or not has_cert:
            raise UsageError(
                f"the Dask scheduler at {address} is not on this host and the connection "
                "has no TLS with a client certificate: the scheduler and its workers could "
                "run code here and publish any bytes; use tls:// and "
                f"{settings}, or pass --insecure if they are as trusted as this host"
            )
    return security


class DaskExecutor(QueueExecutor):
    """Run jobs on a Dask cluster: an embedded LocalCluster, or the scheduler at ``address``.

    ``parallel`` is the scheduler's ``-j`` (jobs in flight).  The embedded cluster gets
    ``n_workers`` (default ``parallel``) single-threaded worker processes and serves its
    HTTP endpoints (dashboard) on ``dashboard_address``, by default a free port of
    127.0.0.1.  With ``address``, ``security`` is passed to :class:`distributed.Client`
    (a :class:`distributed.security.Security` for TLS; by default Dask's configuration,
    ``distributed.comm.tls.*``); a non-loopback address needs TLS with a client
    certificate unless ``insecure``.  ``retries``: re-runs of a task whose function
    raised on a worker; ``allowed_failures``: worker deaths a task survives on the
    embedded cluster (a remote scheduler has its own setting); ``no_worker_timeout``:
    how long a job may wait with no worker able to take it.

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
        insecure: bool = False,
        connect_timeout: float = 10.0,
        worker_wait: float = 30.0,
        no_worker_timeout: float = DEFAULT_NO_WORKER_TIMEOUT,
        dashboard_address: str = "127.0.0.1:0",
        silence_logs: int = logging.CRITICAL,
        session: Session | None = None,
    ) -> None:
        if parallel < 1:
            raise ValueError(f"parallel must be at least 1, not {parallel}")
        if retries < 0 or allowed_failures < 0:
            raise ValueError("retries and allowed_failures must not be negative")
        if address is not None:
            security = check_address(address, security, insecure=insecure)
        self.parallel = parallel
        self.retries = retries
        self.address = address
        self.no_worker_timeout = no_worker_timeout
        #: Processes this coordinator starts for the jobs (prepare and collect phases).
        self.session = session or Session()
        #: Marker prefix of this executor's build processes (see :mod:`superbuild.worker`).
        self.token = f"{uuid.uuid4().hex[:12]}:"
        self._seq = itertools.count()
        self._done: queue.SimpleQueue[Completion | JobRunning] = queue.SimpleQueue()
        self._began: list[JobRunning] = []
        #: Job id -> when (monotonic) a worker began it: its duration counts from there.
        self._began_at: dict[str, float] = {}
        self._pending = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._closed = False
        self._cancelled = False
        self._busy = 0  # coordinator threads inside prepare/collect
        #: Futures in flight (not yet claimed by their completion): key -> (future, job, start).
        self._futures: dict[str, tuple[Future, Job, float]] = {}
        self._keys: set[str] = set()
        #: Since when (monotonic) each job in flight waits with no worker to take it.
        self._stranded: dict[str, float] = {}
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
        self._pool = _Threads(max(1, coordinator_threads), "superbuild-dask")
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
        self.client: Any = None
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
                self.client = self._connect(address, security, connect_timeout)
            _shorten_batching(self.client)
            if address is not None:
                self._check_cluster(address, worker_wait)
            self.client.subscribe_topic(worker.BEGAN_TOPIC, self._on_began)
        except BaseException as exc:
            self._stopping.set()
            self._close_client()
            self._shutdown_cluster()
            self._pool.shutdown(0)
            self._config.__exit__(None, None, None)
            if isinstance(exc, OSError | TimeoutError):
                where = address or "an embedded LocalCluster"
                raise UsageError(
                    f"cannot connect to the Dask scheduler at {where}: {exc}"
                ) from None
            raise
        self._monitor = threading.Thread(
            target=self._watch, name="superbuild-dask-monitor", daemon=True
        )
        self._monitor.start()

    def _connect(self, address: str, security: Any, timeout: float) -> Any:
        """A client of ``address``, connected on a daemon thread (Ctrl-C is seen at once).

        A client whose connection failed is closed here with a short timeout: left to
        the garbage collector, ``Client.__del__`` would wait twice the connect timeout.
        """
        client = distributed.Client.__new__(distributed.Client)

        def connect() -> Any:
            client.__init__(address, security=security, timeout=timeout, set_as_default=False)
            return client

        try:
            return _bounded(connect, timeout + 5.0, f"connecting to {address}")
        except BaseException as exc:
            _quietly(lambda: client.close(timeout=1), 2.0)
            with contextlib.suppress(Exception):
                client.status = "closed"  # Client.__del__: nothing left to close
            if isinstance(exc, ValueError | TypeError | RuntimeError):
                # Dask's own refusals of the configuration (TLS, encryption, scheme).
                raise UsageError(
                    f"cannot connect to the Dask scheduler at {address}: {exc}"
                ) from None
            raise

    def _check_cluster(self, address: str, wait: float) -> None:
        """Before anything is submitted: the cluster has workers, and each of them can
        import this superbuild on this Python's major.minor (one line, exit 2, if not)."""
        import sys

        from superbuild import __version__

        try:
            _bounded(
                lambda: self.client.wait_for_workers(1, timeout=wait),
                wait + 5.0,
                "waiting for workers",
            )
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

        try:
            answers = _bounded(
                lambda: self.client.run(probe, on_error="return"), wait, "asking the workers"
            )
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
        """Cancel every future, stop the builds' processes, stop the embedded cluster.

        Returns within seconds whatever the cluster's state: every call to the scheduler
        is bounded and no thread is joined (those stuck in a call are abandoned).
        """
        self._cancelled = True
        self._stopping.set()
        with self._lock:
            futures = [future for future, _, _ in self._futures.values()]
            self._futures.clear()
            busy = self._busy
        if busy:
            self.session.cancel(grace=0.5)  # git processes of a preparing thread
        self._pool.shutdown(0)
        if futures:
            _quietly(
                lambda: self.client.cancel(futures, force=True, reason="superbuild: cancelled")
            )
        self._terminate_builds()
        if self.cluster is not None:
            self._close_client()
            self._shutdown_cluster()
        self._pending = 0

    def close(self) -> None:
        """Wait for the coordinator threads, stop leftovers, close the client and cluster."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._pool.shutdown(0 if self._cancelled else 30.0)
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
        self._check_connected(job)
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
            self._futures[key] = (future, job, start)
            collected, self._collected = self._collected, []
        for done_future in collected:
            done_future.release()

        def done(future: Future) -> None:  # on Dask's callback thread
            if self._stopping.is_set() or not self._claim(key):
                return  # cancelled, or failed already by the monitor
            with contextlib.suppress(RuntimeError):  # pool shut down: we are stopping
                self._pool.submit(self._guard, lambda _job, _start: finish(future), job, start)

        future.add_done_callback(done)

    def _claim(self, key: str) -> bool:
        """Whether the caller is the one to complete the job of ``key`` (once only)."""
        with self._lock:
            self._stranded.pop(key, None)
            return self._futures.pop(key, None) is not None

    def _result(self, job: Job, future: Future, what: str) -> Any:
        """The future's value, once; a dead worker or a lost task become clear errors."""
        try:
            if future.cancelled():
                raise self._dropped(job, what)
            return future.result()
        except distributed.client.FutureCancelledError:
            raise self._dropped(job, what) from None
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

    def _dropped(self, job: Job, what: str) -> SuperbuildError:
        where = self.address or "of the embedded cluster"
        if getattr(self.client, "status", "running") != "running":
            return NoWorker(
                f"{job.id}: lost the connection to the Dask scheduler {where} while {what} it"
            )
        return SuperbuildError(
            f"{job.id}: the Dask scheduler dropped the task while {what} it "
            "(scheduler restarted or connection lost)"
        )

    def _on_began(self, event: Any) -> None:
        """A worker began a job (Dask event, on the client's thread): queue time ends."""
        with contextlib.suppress(Exception):
            key = event[1]["key"]
            with self._lock:
                entry = self._futures.get(key)
                if entry is None or entry[1].id in self._began_at:
                    return
                self._began_at[entry[1].id] = time.monotonic()
            self._done.put(JobRunning(entry[1].id, time.time()))

    def _finish(self, job: Job, start: float, future: Future) -> None:
        value = self._result(job, future, "building")
        result: JobResult = job.task.collect(value, self.session)
        self._exports[job.id] = result.exports
        # The package's duration counts from when a worker began it, not its queue time.
        with self._lock:
            began = self._began_at.pop(job.id, start)
        self._done.put((job.id, result, time.monotonic() - began))

    def _check_connected(self, job: Job) -> None:
        status = getattr(self.client, "status", "running")
        if status != "running":
            where = self.address or "of the embedded cluster"
            raise NoWorker(
                f"{job.id}: not submitted: the connection to the Dask scheduler {where} is {status}"
            )

    def _workers(self) -> dict[str, Any]:
        info = _bounded(
            lambda: self.client.scheduler_info(n_workers=-1), 10.0, "asking the scheduler"
        )
        workers: dict[str, Any] = info.get("workers", {})
        return workers

    def _check_resources(self, job: Job, resources: Mapping[str, int]) -> None:
        missing = [r for r in resources if r not in self._offered]
        if not missing:
            return
        try:
            workers = self._workers()
        except TimeoutError as exc:
            raise NoWorker(f"{job.id}: not submitted: {exc}") from None
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

    # ------------------------------------------------------------------ while running

    def _watch(self) -> None:
        """Monitor thread: fail jobs no worker can take, and all of them when the
        connection to the scheduler is lost (their futures may never complete)."""
        while not self._stopping.wait(MONITOR_INTERVAL_S):
            with contextlib.suppress(Exception):
                self._look()

    def _look(self) -> None:
        with self._lock:
            keys = list(self._futures)
        if not keys:
            return
        if getattr(self.client, "status", "running") != "running":
            return  # the futures are cancelled by the client: _result says why

        def view(dask_scheduler: Any, keys: list[str]) -> tuple[int, dict[str, str]]:
            # Nested: pickled by value, the scheduler needs no superbuild.
            tasks = dask_scheduler.tasks
            states = {k: tasks[k].state for k in keys if k in tasks}
            return len(dask_scheduler.workers), states

        workers, states = _bounded(
            lambda: self.client.run_on_scheduler(view, keys=keys), 10.0, "asking the scheduler"
        )
        now = time.monotonic()
        stranded = []
        with self._lock:
            for key in keys:
                waiting = states.get(key) == "no-worker" or (
                    workers == 0 and states.get(key) in ("queued", "no-worker")
                )
                if not waiting:
                    self._stranded.pop(key, None)
                    continue
                since = self._stranded.setdefault(key, now)
                if now - since >= self.no_worker_timeout and key in self._futures:
                    stranded.append(self._futures.pop(key))
                    del self._stranded[key]
        for future, job, start in stranded:
            where = self.address or "of the embedded cluster"
            waited = f"waited {self.no_worker_timeout:g}s"
            if workers == 0:
                reason = f"{job.id}: every worker of the Dask scheduler {where} left ({waited})"
            else:
                wanted = " ".join(f"{r}={n}" for r, n in job.task.resources.items())
                needs = f", it needs {wanted}" if wanted else ""
                reason = (
                    f"{job.id}: no Dask worker of the scheduler {where} can take it "
                    f"({waited}{needs})"
                )
            self._cancel_future(future)
            self._done.put((job.id, NoWorker(reason), time.monotonic() - start))

    def _cancel_future(self, future: Future) -> None:
        _quietly(lambda: self.client.cancel([future], force=True))

    # ------------------------------------------------------------------ shutdown

    def _terminate_builds(self) -> None:
        """Stop this executor's build processes on every worker host and on this one."""
        if self.client is not None:
            _quietly(lambda: self.client.run(worker.terminate, self.token, on_error="ignore"), 5.0)
        worker.terminate(self.token)

    def _close_client(self) -> None:
        client = self.client
        if client is not None:
            _quietly(lambda: client.close(timeout=_STOP_CALL_S), _STOP_CALL_S + 1.0)
            with contextlib.suppress(Exception):
                client.status = "closed"  # a close that timed out: no second wait in __del__

    def _shutdown_cluster(self) -> None:
        cluster, self.cluster = self.cluster, None
        if cluster is not None:
            _quietly(lambda: cluster.close(timeout=5), 10.0)


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
