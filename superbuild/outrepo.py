"""The output repository: where built packages are collected, and its yum/dnf metadata.

Layout under the output root::

    rpms/<arch>/NAME-VERSION-RELEASE.ARCH.rpm   binary RPMs (one repository: rpms/repodata)
    srpms/NAME-VERSION-RELEASE.src.rpm          source RPMs (one repository: srpms/repodata)
    files/<package>/...                         artifacts of ``command`` pipelines

No reader ever sees a half-written file, and no temporary file is ever inside a
published folder: each file is copied into the run's staging folder
``<output>/.superbuild-staging/<pid>-<start>/`` (same filesystem, never published) and
then ``os.replace``\\ d into place; a package's ``files/`` directory is assembled there
too, and the old one is moved there before it is removed.

Crash consistency: before any file under ``rpms/``, ``srpms/`` or ``files/`` changes,
``<output>/.superbuild-pending`` is written (atomically); it is removed only once
``createrepo_c`` succeeded for every repository.  A run killed in between leaves it, and
the next command that opens the output (:func:`recover`) refreshes the metadata first
and removes the staging folders of dead processes.  Collecting and refreshing the metadata hold a lock, a thread lock plus an
``flock`` on ``<output>/.superbuild.lock`` so that threads, Dask workers on the same
host and concurrent runs do not race (``createrepo_c`` refuses to run twice on a repo).

Copies get a fresh mtime on purpose: ``createrepo_c --update`` reuses metadata of files
whose mtime and size did not change, and a rebuild of the same NVR must be re-read.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from superbuild import fileio, proc
from superbuild.errors import SuperbuildError

RPMS_DIR = "rpms"
SRPMS_DIR = "srpms"
FILES_DIR = "files"
LOCK_FILE = ".superbuild.lock"
PENDING_FILE = ".superbuild-pending"
UNCONFIRMED_FILE = ".superbuild-unconfirmed"
#: Longest a ``createrepo_c`` may run: a hung one fails the refresh (the journal stays).
CREATEREPO_TIMEOUT_S = 600.0
STAGING_DIR = ".superbuild-staging"

_thread_lock = threading.RLock()
#: The outputs whose ``flock`` this process holds (read and changed under ``_thread_lock``).
_held: set[str] = set()


class OutputRepoError(SuperbuildError):
    """The output repository cannot take a file (bad name, unwritable directory...)."""


@contextlib.contextmanager
def locked(output: Path) -> Iterator[None]:
    """Hold the output repository's lock (threads of this process, then other processes).

    Re-entrant in the thread that holds it (:func:`recover` calls
    :func:`refresh_metadata`): an ``flock`` taken again through a second descriptor of the
    same file would wait for the first one for ever, so only the outermost call takes it.
    """
    with _thread_lock:
        key = os.path.realpath(output)
        if key in _held:
            yield
            return
        output.mkdir(parents=True, exist_ok=True)
        fd = os.open(output / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _held.add(key)
            try:
                yield
            finally:
                _held.discard(key)
        finally:
            os.close(fd)  # closing releases the flock


def rpm_arch(path: Path) -> str:
    """The architecture in an RPM file name: ``src`` for ``x.src.rpm``, ``noarch``, ``x86_64``..."""
    name = path.name
    if not name.endswith(".rpm"):
        raise OutputRepoError(f"{path}: not an RPM file name (NAME-VERSION-RELEASE.ARCH.rpm)")
    stem = name[: -len(".rpm")]
    _, dot, arch = stem.rpartition(".")
    if not dot or not arch or stem.count("-") < 2:
        raise OutputRepoError(f"{path}: not an RPM file name (NAME-VERSION-RELEASE.ARCH.rpm)")
    return arch


def rpm_destination(path: Path) -> str:
    """Where an RPM goes, relative to the output root."""
    arch = rpm_arch(path)
    if arch in ("src", "nosrc"):
        return f"{SRPMS_DIR}/{path.name}"
    return f"{RPMS_DIR}/{arch}/{path.name}"


def binary_packages(artifacts: Iterable[str]) -> list[str]:
    """The binary packages among ``artifacts`` (paths relative to the output repository):
    what a dependent installs."""
    return [a for a in artifacts if a.startswith(f"{RPMS_DIR}/")]


def _staging(output: Path) -> Path:
    """This process's staging folder in the output root (created): ``<pid>-<start time>``."""
    pid = os.getpid()
    folder = output / STAGING_DIR / f"{pid}-{proc.start_time(pid) or 'x'}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _alive(name: str) -> bool:
    """Whether the process a staging folder ``<pid>-<start>`` names still runs (same start)."""
    pid_text, _, start = name.partition("-")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    return proc.owner_alive(pid, start)


def remove_dead_staging(output: Path) -> list[Path]:
    """Remove staging folders whose owner process is gone (call it holding :func:`locked`)."""
    root = output / STAGING_DIR
    try:
        entries = list(root.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for entry in entries:
        if not _alive(entry.name):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


#: A journal line asking for a refresh without ``--update``: a file was replaced, and
#: ``createrepo_c --update`` would keep its old checksum if mtime and size look the same.
FULL_REFRESH = "!full"


def mark_pending(output: Path, added: Iterable[str] = (), *, full: bool = False) -> None:
    """Journal a metadata refresh before files of the output change, and the files
    (relative paths) about to be added: until a refresh confirms them, they were never in
    the metadata, and a run killed before then leaves them unconfirmed (see :func:`recover`)."""
    path = output / PENDING_FILE
    if not path.exists():
        fileio.write_bytes_atomic(path, f"{os.getpid()}\n".encode())
    lines = "".join(f"{rel}\n" for rel in added) + (f"{FULL_REFRESH}\n" if full else "")
    if lines:
        with path.open("a") as journal:
            journal.write(lines)
            journal.flush()
            os.fsync(journal.fileno())


def _journaled(output: Path) -> set[str]:
    """The files a journal says were being added (its first line is the writer's pid)."""
    try:
        lines = (output / PENDING_FILE).read_text().splitlines()[1:]
    except (FileNotFoundError, UnicodeDecodeError):
        return set()
    return {line for line in lines if line.strip() and not line.startswith("!")}


def _full_refresh(output: Path) -> bool:
    try:
        return FULL_REFRESH in (output / PENDING_FILE).read_text().splitlines()
    except (FileNotFoundError, UnicodeDecodeError):
        return False


def _unconfirmed(output: Path) -> set[str]:
    try:
        text = (output / UNCONFIRMED_FILE).read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return set()
    return {line for line in text.splitlines() if line.strip()}


def _set_unconfirmed(output: Path, names: set[str]) -> None:
    path = output / UNCONFIRMED_FILE
    if names:
        fileio.write_bytes_atomic(path, "".join(f"{n}\n" for n in sorted(names)).encode())
    else:
        path.unlink(missing_ok=True)


def pending(output: Path) -> bool:
    """Whether a metadata refresh is journaled (a run changed files and did not finish it)."""
    return (output / PENDING_FILE).exists()


def _stage_file(src: Path, dest: Path, staging: Path) -> Path:
    """Copy ``src`` to a temporary name in the staging folder, for ``dest``; the copy.

    An error (a full disk) names ``dest`` and leaves no temporary file behind.
    """
    fd, name = tempfile.mkstemp(dir=staging, prefix=f".{dest.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
        tmp.chmod(0o644)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:
            raise OSError(exc.errno, exc.strerror, os.fspath(dest)) from exc
        raise
    return tmp


def _install_files(todo: list[tuple[Path, Path]], staging: Path) -> None:
    """Copy each ``(src, dest)`` into place: all are copied into the staging folder
    first, then renamed, so a copy that fails (a full disk) publishes none of them."""
    staged: list[tuple[Path, Path]] = []
    try:
        for src, dest in todo:
            staged.append((_stage_file(src, dest, staging), dest))
        for _, dest in staged:
            dest.parent.mkdir(parents=True, exist_ok=True)
        for tmp, dest in staged:
            tmp.replace(dest)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            chunk = fa.read(1 << 20)
            if chunk != fb.read(1 << 20):
                return False
            if not chunk:
                return True


def _built_from(rpm: Path) -> str:
    """The source RPM a published binary RPM names (for the collision message)."""
    result = proc.run(
        ["rpm", "-qp", "--nosignature", "--nodigest", "--qf", "%{SOURCERPM}", os.fspath(rpm)],
        check=False,
    )
    name = result.stdout.decode(errors="replace").strip()
    return name if result.ok and name and name != "(none)" else ""


def collect(output: Path, packages: Iterable[Path]) -> list[str]:
    """Copy RPMs (binary and source) into the output repository; their paths relative to it.

    Binary RPMs go to ``rpms/<arch>/``, source RPMs to ``srpms/``.  A published file is
    never replaced by different bytes under the same name (a client that has it would
    never see the change): that raises :class:`OutputRepoError` naming the file and what
    it was built from, and nothing of ``packages`` is copied.  The same bytes again are
    left as they are.  The exception: a file a killed run added, which no run has
    rebuilt since (it is *unconfirmed*, see :func:`recover`), is replaced by the rebuild
    (a rebuild of the same NVR differs in its build time).  Metadata is not refreshed: call :func:`refresh_metadata` once per
    wave or at the end of the run.
    """
    plan = [(src, rpm_destination(src)) for src in packages]  # bad names fail before copying
    with locked(output):
        unconfirmed = _unconfirmed(output)
        replace = set()
        for src, rel in plan:
            dest = output / rel
            if dest.is_file() and not _same_bytes(src, dest):
                if rel in unconfirmed:
                    replace.add(rel)
                    continue
                origin = _built_from(dest) if rel.startswith(f"{RPMS_DIR}/") else ""
                by = f" (built from {origin})" if origin else ""
                raise OutputRepoError(
                    f"{rel} is already in the output repository {output} with other "
                    f"bytes{by}: two packages make the same RPM, or a rebuild reused its "
                    "name; nothing was replaced"
                )
        todo = [(src, rel) for src, rel in plan if rel in replace or not (output / rel).is_file()]
        if todo:
            mark_pending(output, [rel for _, rel in todo], full=bool(replace))
            _install_files([(src, output / rel) for src, rel in todo], _staging(output))
        settled = unconfirmed & {rel for _, rel in plan}
        if settled:
            _set_unconfirmed(output, unconfirmed - settled)
    return sorted(rel for _, rel in plan)


def collect_files(output: Path, package: str, source: Path) -> list[str]:
    """Replace ``files/<package>/`` by a copy of the tree ``source``; the copied file paths.

    The new tree is assembled under a hidden temporary name next to the destination and
    renamed into place, so readers see the old set of files or the new one, never a mix
    (between the two renames the directory is briefly absent).
    """
    root = output / FILES_DIR
    dest = root / package
    with locked(output):
        staging = Path(tempfile.mkdtemp(dir=_staging(output), prefix=f".{package}.", suffix=".tmp"))
    new = staging / "new"
    try:
        shutil.copytree(source, new, symlinks=True)
        new.chmod(0o755)
        artifacts = _tree_files(new, f"{FILES_DIR}/{package}")
        with locked(output):
            mark_pending(output)
            root.mkdir(parents=True, exist_ok=True)
            if dest.exists() or dest.is_symlink():
                dest.replace(staging / "old")
            new.replace(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return artifacts


def _tree_files(top: Path, prefix: str) -> list[str]:
    """Files (and symlinks) under ``top`` as ``prefix/relative/path``, sorted; links not followed."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        rel = Path(dirpath).relative_to(top)
        links = [d for d in dirnames if (Path(dirpath) / d).is_symlink()]
        for name in [*filenames, *links]:
            found.append((Path(prefix) / rel / name).as_posix())
    return sorted(found)


def refresh_metadata(output: Path, *, timeout: float | None = None) -> list[Path]:
    """Run ``createrepo_c`` on ``rpms/`` and ``srpms/`` (``--update`` once metadata exists).

    Returns the repositories refreshed (those that exist).  The journal
    (``.superbuild-pending``) is removed once every one succeeded.  A failure raises
    :class:`superbuild.proc.ProcessError` naming the directory and createrepo_c's last
    error line (the journal stays: the next run refreshes again).
    """
    done = []
    with locked(output):
        # createrepo_c runs in a session with a watchdog: if this process is SIGKILLed
        # meanwhile, the watchdog stops it (no orphan keeps writing ``.repodata/``).
        full = _full_refresh(output)
        session = proc.Session()
        session.start_watchdog("_SUPERBUILD_CREATEREPO")
        with proc.session_watchdog(session):
            for sub in (RPMS_DIR, SRPMS_DIR):
                repo = output / sub
                if not repo.is_dir():
                    continue
                cmd = ["createrepo_c", "--quiet"]
                if not full and (repo / "repodata" / "repomd.xml").is_file():
                    cmd.append("--update")
                cmd.append(os.fspath(repo))
                try:
                    session.run(
                        cmd,
                        timeout=CREATEREPO_TIMEOUT_S if timeout is None else timeout,
                        what=f"createrepo_c on {repo}",
                    )
                except proc.ProcessError as exc:
                    raise _if_full(repo, exc) from exc
                done.append(repo)
        (output / PENDING_FILE).unlink(missing_ok=True)
        _tidy_staging(output)
    return done


def _if_full(repo: Path, exc: proc.ProcessError) -> SuperbuildError:
    """``exc``, or the full disk's own line when ``repo``'s file system has no room left
    (createrepo_c itself only says ``gzclose(): file operation error``)."""
    free = fileio.free_if_full(repo)
    if free is None:
        return exc
    return OutputRepoError(
        f"createrepo_c on {repo} failed: no space left on device ({free} bytes free): "
        "free space on that file system and run superbuild again (the refresh is journaled)"
    )


def _tidy_staging(output: Path) -> None:
    """Remove the empty staging folders (this process's, dead ones') and their root."""
    remove_dead_staging(output)
    root = output / STAGING_DIR
    with contextlib.suppress(OSError):
        for entry in root.iterdir():
            with contextlib.suppress(OSError):
                entry.rmdir()  # only when empty: a collect in flight keeps its folder
        root.rmdir()


def sweep_debris(output: Path) -> list[Path]:
    """Remove what a killed run can leave inside the published folders (call it holding
    :func:`locked`, with no ``createrepo_c`` of a live run possible): ``createrepo_c``'s
    temporary ``rpms/.repodata`` / ``srpms/.repodata`` (a new one refuses to start while
    it exists), and the old-style temporary names of earlier versions, ``.NAME.XXXX.tmp``
    files and ``files/.PACKAGE.XXXX.tmp`` / ``.old`` folders."""
    removed: list[Path] = []
    for sub in (RPMS_DIR, SRPMS_DIR):
        stale = output / sub / ".repodata"
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(stale)
    for sub in (RPMS_DIR, SRPMS_DIR, FILES_DIR):
        top = output / sub
        if not top.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            here = Path(dirpath)
            for name in list(dirnames):
                if name.startswith(".") and name.endswith((".tmp", ".old")):
                    dirnames.remove(name)
                    shutil.rmtree(here / name, ignore_errors=True)
                    removed.append(here / name)
            for name in filenames:
                if name.startswith(".") and name.endswith(".tmp"):
                    (here / name).unlink(missing_ok=True)
                    removed.append(here / name)
    return removed


def recover(output: Path) -> bool:
    """What the next command that opens the output does first: remove the staging folders
    of dead processes and the debris of killed runs (:func:`sweep_debris`) and, when a
    refresh is journaled, run it.  The files the killed run was adding become
    *unconfirmed*: published by this refresh (the repository stays consistent) but
    replaceable by the rebuild of their package (see :func:`collect`).  True if it
    refreshed."""
    if not output.is_dir():
        return False
    with locked(output):
        sweep_debris(output)
        if not pending(output):
            _tidy_staging(output)
            return False
        added = {rel for rel in _journaled(output) if (output / rel).is_file()}
        if added:
            _set_unconfirmed(output, _unconfirmed(output) | added)
        refresh_metadata(output)
    return True
