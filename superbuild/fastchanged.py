"""The lean path of ``superbuild changed --format json``: the question CI asks on every push.

``superbuild [-C DIR] changed --format json [--base REV] [--head REV] [--exit-code]``
is answered here, before :mod:`superbuild.cli` (argparse), :mod:`pathlib`,
:mod:`subprocess` and the manifests' parser are imported: git runs through
:func:`os.posix_spawnp` (stdin from /dev/null or a pipe closed after writing, its own
process group, the environment of :func:`superbuild.git.git_env`; the ones it started are
reaped if it gives up midway), the packages come from the change-detection index the
general path writes next to its manifests cache (``<git dir>/superbuild/``; git runs
meanwhile, ``diff-tree --merge-base`` not waiting for ``merge-base``; the gitlinks are
listed once per commit tree, :func:`superbuild.changecore.linked_name`), and the
result is computed and printed by :mod:`superbuild.changecore`, the code the general
path runs: one code path for the answer, the same JSON.

Anything this path does not handle gives up (returns None) before printing, and the
general path answers: another option or format, ``--base green``, a work tree that is
not the superproject's top (or whose ``.git`` is a file), a root commit, a manifests
cache not written yet (the first run writes it), gitlinks both added and deleted
(moves read ``.gitmodules``), a changed submodule that is initialized (its direction
asks git), a manifest path that is not a gitlink (the error is the general path's),
any git failure.
"""

from __future__ import annotations

import os
import sys

from superbuild import MANIFESTS_DIR, SETTINGS_FILE

TYPE_CHECKING = False  # no typing import on the lean path
if TYPE_CHECKING:
    from superbuild import changecore


class _GiveUp(Exception):
    """This path does not answer: the general one does."""


def parse(argv: list[str]) -> dict[str, str | bool] | None:
    """The options of a command line this path answers, or None."""
    found: dict[str, str | bool] = {"repo": ".", "base": "", "head": "HEAD", "exit_code": False}
    words = iter(argv)
    verb = fmt = False
    for word in words:
        if word == "changed" and not verb:
            verb = True
            continue
        key, eq, value = word.partition("=")
        if key in ("-C", "--format", "--base", "--head") and not eq:
            value = next(words, "")
            if not value:
                return None
        elif key == "-C" or key not in ("--format", "--base", "--head", "--exit-code"):
            return None
        if key == "--exit-code":
            if eq:
                return None
            found["exit_code"] = True
        elif key == "--format":
            if value != "json" or fmt:
                return None
            fmt = True
        elif key == "-C":
            if found["repo"] != ".":
                return None
            found["repo"] = value
        else:
            name = key[2:]
            if name == "base" and found["base"]:
                return None
            found[name] = value
    if not (verb and fmt):
        return None
    for rev in (found["base"], found["head"]):
        assert isinstance(rev, str)
        if rev.startswith("-") or "\n" in rev or rev == "green":
            return None
    return found


class _Git:
    def __init__(self, repo: str) -> None:
        self.repo = repo
        from superbuild.gitenv import git_env

        self.env = git_env()
        self.running: dict[int, int] = {}  # read end of stdout -> pid, not finished

    def start(self, *args: str, data: bytes | None = None) -> tuple[int, int]:
        """Spawn ``git -C repo args``: (pid, read end of its stdout)."""
        out_r, out_w = os.pipe()
        actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = [
            (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
        ]
        in_r = in_w = -1
        if data is None:
            actions.append((os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0))
        else:
            in_r, in_w = os.pipe()
            actions += [(os.POSIX_SPAWN_DUP2, in_r, 0), (os.POSIX_SPAWN_CLOSE, in_w)]
        actions.append((os.POSIX_SPAWN_CLOSE, out_r))
        try:
            pid = os.posix_spawnp(
                "git",
                ["git", "-C", self.repo, *args],
                self.env,
                file_actions=actions,
                setpgroup=0,
            )
        finally:
            os.close(out_w)
            if in_r >= 0:
                os.close(in_r)
        if data is not None:
            try:
                os.write(in_w, data)  # a few hundred bytes: within the pipe's buffer
            finally:
                os.close(in_w)
        self.running[out_r] = pid
        return pid, out_r

    def finish(self, pid: int, fd: int) -> bytes:
        self.running.pop(fd, None)
        chunks = []
        try:
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
        finally:
            os.close(fd)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise _GiveUp
        return b"".join(chunks)

    def close(self) -> None:
        """Stop and reap the git processes not finished (this path gave up midway)."""
        if not self.running:
            return
        import signal

        for fd, pid in self.running.items():
            os.close(fd)
            os.kill(pid, signal.SIGKILL)  # not reaped yet: the pid is still this child's
            os.waitpid(pid, 0)
        self.running.clear()

    def run(self, *args: str, data: bytes | None = None) -> bytes:
        return self.finish(*self.start(*args, data=data))

    def resolve(self, specs: list[str]) -> list[tuple[str, str] | None]:
        return self.resolved(specs, self.start_resolve(specs))

    def start_resolve(self, specs: list[str]) -> tuple[int, int]:
        """Start resolving ``specs`` (one ``cat-file --batch-check``)."""
        data = "".join(f"{s}\n" for s in specs).encode()
        return self.start("cat-file", "--batch-check=%(objectname) %(objecttype)", data=data)

    def resolved(self, specs: list[str], started: tuple[int, int]) -> list[tuple[str, str] | None]:
        """What :meth:`start_resolve` found: (object id, type) per spec, None if missing."""
        out = self.finish(*started).decode("utf-8", "replace")
        found: list[tuple[str, str] | None] = []
        lines = out.splitlines()
        if len(lines) != len(specs):
            raise _GiveUp
        for spec, line in zip(specs, lines, strict=True):
            if line in (f"{spec} missing", f"{spec} ambiguous"):
                found.append(None)
                continue
            oid, _, kind = line.partition(" ")
            found.append((oid, kind))
        return found


def _ids(found: list[tuple[str, str] | None], i: int) -> tuple[str | None, str | None]:
    tree, settings = found[i], found[i + 1]
    return (
        tree[0] if tree and tree[1] == "tree" else None,
        settings[0] if settings and settings[1] == "blob" else None,
    )


def _side(
    cache: str, ids: tuple[str | None, str | None]
) -> tuple[changecore.Side, dict[str, tuple[str, ...]]]:
    """A commit's packages from the change-detection index the general path writes next
    to its manifests cache: (side, requires by name)."""
    from superbuild import changecore

    tree, settings = ids
    if tree is None:
        raise _GiveUp
    data = changecore.read_cache(f"{cache}/{changecore.index_name(tree, settings)}")
    if data is None:
        raise _GiveUp
    try:
        by_path, keys, requires = data["by_path"], data["keys"], data["requires"]
    except KeyError:
        raise _GiveUp from None
    if not (isinstance(by_path, dict) and isinstance(keys, dict) and isinstance(requires, dict)):
        raise _GiveUp
    return changecore.Side(by_path, keys), requires


def answer(options: dict[str, str | bool]) -> tuple[dict[str, object], bool]:
    """(the JSON report, whether a package is affected); :class:`_GiveUp` if not here."""
    repo, base, head = str(options["repo"]), str(options["base"]), str(options["head"])
    git_dir = os.path.join(repo, ".git")
    if not os.path.isdir(git_dir) or not os.path.isdir(os.path.join(repo, MANIFESTS_DIR)):
        raise _GiveUp
    git = _Git(repo)
    try:
        return _answer(git, base, head, repo, git_dir)
    finally:
        git.close()


def _answer(
    git: _Git, base: str, head: str, repo: str, git_dir: str
) -> tuple[dict[str, object], bool]:
    m, s = MANIFESTS_DIR, SETTINGS_FILE
    specs = [f"{head}^{{commit}}", f"{head}^{{commit}}:{m}", f"{head}^{{commit}}:{s}"]
    specs += [
        f"{head}^{{commit}}^1^{{commit}}",
        f"{head}^{{commit}}^1:{m}",
        f"{head}^{{commit}}^1:{s}",
    ]
    if base:
        specs += [f"{base}^{{commit}}", f"{base}^{{commit}}:{m}", f"{base}^{{commit}}:{s}"]
    specs.append(f"{head}^{{commit}}^{{tree}}")
    resolving = git.start_resolve(specs)
    # The rest of the lean path is imported while git resolves the revisions.
    from superbuild import changecore
    from superbuild.gitparse import DIFF_TREE, parse_gitlinks, parse_raw_diff
    from superbuild.graph import DependencyGraph

    found = git.resolved(specs, resolving)
    if found[0] is None or found[-1] is None:
        raise _GiveUp
    head_oid = found[0][0]
    head_ids = _ids(found, 1)
    cache = os.path.join(git_dir, "superbuild")
    # git works while the head's packages are read from the cache: the gitlinks (to
    # validate manifest paths), the diff and, for --base, the merge base, side by side.
    # diff-tree finds the merge base itself (--merge-base), so it need not wait for it.
    linked = os.path.join(cache, changecore.linked_name(found[-1][0]))
    checked = os.access(linked, os.F_OK)
    links = None if checked else git.start("ls-tree", "-r", "-z", "--full-tree", head_oid)
    if base:
        if found[6] is None:
            raise _GiveUp
        given = found[6][0]
        merge_base = git.start("merge-base", given, head_oid)
        diff = git.start(*DIFF_TREE, "--merge-base", given, head_oid)
    else:
        if found[3] is None:
            raise _GiveUp  # a root commit: the general path
        base_oid, base_ids = found[3][0], _ids(found, 4)
        diff = git.start(*DIFF_TREE, base_oid, head_oid)
    head_side, requires = _side(cache, head_ids)
    if base:
        base_oid = git.finish(*merge_base).decode().split()[0]
        if base_oid == given:  # --base is an ancestor of --head: its ids are known
            base_ids = _ids(found, 7)
        else:
            base_ids = _ids(git.resolve([f"{base_oid}:{m}", f"{base_oid}:{s}"]), 0)
    base_side = head_side if base_ids == head_ids else _side(cache, base_ids)[0]
    raw_diff = git.finish(*diff)
    if links is not None:
        gitlinks = parse_gitlinks(git.finish(*links))
        if any(p not in gitlinks for p in head_side.by_path):
            raise _GiveUp  # the general path names the manifest
        _touch(linked)
    raw = parse_raw_diff(raw_diff)
    if changecore.moves_possible(raw):
        raise _GiveUp
    analysis = changecore.analyse(raw, head_side, base_side, DependencyGraph(requires))
    todo = changecore.pending_directions(analysis.changes)
    for change in todo:
        for path in (change.path, change.old_path):
            if path and _initialized(f"{repo}/{path}"):
                raise _GiveUp  # its direction is judged in its history
    changes = changecore.with_directions(analysis.changes, {c.path: "unknown" for c in todo})
    report = changecore.report(
        base_oid, head_oid, changes, analysis, {"head": head_oid, "base": base_oid}
    )
    return report, bool(analysis.waves)


def _touch(path: str) -> None:
    """Create an empty marker file; a read-only git dir or a race: no marker, same answer."""
    try:  # noqa: SIM105 - contextlib is not imported on the lean path
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except OSError:
        pass


def _initialized(work_tree: str) -> bool:
    """As :func:`superbuild.submodules.initialized` (``os.access``: no exception to raise
    for the common answer, an uninitialized submodule)."""
    if os.access(f"{work_tree}/.git", os.F_OK):
        return True
    head = f"{work_tree}/HEAD"
    return (
        os.access(head, os.F_OK) and os.path.isfile(head) and os.path.isdir(f"{work_tree}/objects")
    )


def main(argv: list[str]) -> int | None:
    """Answer ``argv`` here (the exit code), or None for the general path."""
    if os.environ.get("SUPERBUILD_NO_FAST_PATH"):
        return None
    options = parse(argv)
    if options is None:
        return None
    try:
        report, affected = answer(options)
    except KeyboardInterrupt:
        from superbuild.errors import EXIT_INTERRUPTED

        print("superbuild: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:
        # Anything unexpected here (an unsafe path in a commit, a damaged cache): the
        # general path gives the answer or its one-line error.
        return None
    from superbuild.changecore import dumps

    try:
        sys.stdout.write(dumps(report))
        sys.stdout.flush()
    except BrokenPipeError:
        # `superbuild changed --format json | head`: stop quietly, as the general path does.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces a closed stream
        return 0
    except OSError as exc:
        from superbuild.errors import EXIT_FAILED, disk_full

        why = disk_full(exc) or f"cannot write the report to standard output: {exc.strerror}"
        print(f"superbuild: error: {why}", file=sys.stderr)
        return EXIT_FAILED
    return 1 if options["exit_code"] and affected else 0
