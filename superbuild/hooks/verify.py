"""Run a package's ``verify`` command on a clean export of the commit a push records.

The command runs in ``git archive`` of the submodule commit (never the work tree:
:func:`superbuild.export.export_commit`), with stdin closed, in its own process group
(:mod:`superbuild.proc`), with the ``verify`` timeout, and in the environment of user
commands (:func:`superbuild.export.command_env`: no ``GIT_*`` variable, plus the
manifest's ``env`` and ``SUPERBUILD_PACKAGE/COMMIT/PATH/SRC``).  Its output is never held
whole: at most the log cap (``SUPERBUILD_LOG_CAP``) of stdout and of stderr each, their
head and tail (:meth:`superbuild.proc.Session.run`).
"""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path
from typing import NamedTuple

from superbuild import git as g
from superbuild import proc
from superbuild.errors import SuperbuildError
from superbuild.export import command_env, export_commit, package_variables
from superbuild.package import Package
from superbuild.submodules import initialized


class Outcome(NamedTuple):
    """What :func:`verify` found: at most one of ``problem`` (refuse) or ``skipped`` (warn)."""

    ran: bool  # the command ran (it counts as verified, whatever its exit)
    problem: str | None = None
    skipped: str | None = None


def verify(repo: Path, package: Package, commit: str, label: str) -> Outcome:
    """Run ``package.verify`` on an export of submodule ``commit``; ``label`` names the
    package in messages."""
    sub = repo / package.path
    if not initialized(sub):
        return Outcome(
            False,
            skipped=f"{label}: verify skipped: submodule not initialized "
            f"(git submodule update --init {shlex.quote(package.path)})",
        )
    if g.resolve(sub, [f"{commit}^{{commit}}"])[0] is None:
        return Outcome(
            False, skipped=f"{label}: verify skipped: commit {commit[:12]} is not in the submodule"
        )
    command = shlex.join(package.verify)
    cap = proc.log_cap()
    timeout = package.timeout("verify")
    with tempfile.TemporaryDirectory(prefix="superbuild-verify-") as tmp:
        src = export_commit(sub, commit, Path(tmp) / "src")
        env = command_env(package.env, package_variables(package.name, package.path, commit, src))
        try:
            # Its output is read as it comes and kept to the log cap (head and tail):
            # a command writing without end cannot exhaust memory.
            done = proc.Session().run(
                package.verify, cwd=src, env=env, check=False, timeout=timeout, cap=cap
            )
        except SuperbuildError as exc:  # the command is not installed
            return Outcome(False, f"{label}: verify `{command}` cannot run: {exc.lines[0]}")
    if done.ok:
        return Outcome(True)
    output = (done.stderr.strip() or done.stdout.strip()).decode(errors="replace").splitlines()
    tail = f": {output[-1].strip()}" if output else ""
    how = f"timed out after {timeout:g}s" if done.timed_out else f"failed (exit {done.returncode})"
    return Outcome(
        True,
        f"{label}: verify `{command}` {how} on commit {commit[:12]}{tail}: "
        f"fix it, or run it in a checkout of that commit (git -C {shlex.quote(package.path)} "
        f"checkout {commit[:12]}) to see why",
    )
