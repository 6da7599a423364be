"""The ``command`` pipeline: run the manifest's shell steps, collect what they leave behind.

Each entry of ``commands`` runs as ``sh -c STEP`` (a plain step, words without shell
syntax such as ``make -j4 install``, runs directly, as make runs such recipes: see
:func:`plain_argv`): the step is the user's own shell text; superbuild passes its values
only through environment variables, never by pasting them into the text:

==========================  ===============================================================
``SUPERBUILD_PACKAGE``      the package name
``SUPERBUILD_COMMIT``       the recorded submodule commit
``SUPERBUILD_PATH``         the submodule path in the superproject
``SUPERBUILD_SRC``          the working directory of the steps
``SUPERBUILD_OUTPUT``       an empty directory: every file left there becomes an artifact,
                            collected into ``<output>/files/<package>/`` (replacing the
                            previous build's files atomically)
``SUPERBUILD_TARBALL``      ``NAME-COMMIT7.tar.gz`` of the commit (prefix ``NAME-COMMIT7/``),
                            only with ``source: export``
``SUPERBUILD_TARGET``       the target built for (superbuild.yaml ``targets:``), only with
                            targets
==========================  ===============================================================

plus ``ctx.env`` and the manifest's ``env``.  With ``source: export`` (the default)
``SUPERBUILD_SRC`` is a clean export of the recorded commit (``git archive``, never the
submodule's work tree); with ``source: none`` it is an empty directory and git is not run
at all.  The ``source`` stage (``git archive``) runs on the coordinator
(:meth:`CommandPipeline.prepare`); the tarball travels to wherever the ``command`` stage
runs (:meth:`CommandPipeline.build`), which unpacks it and runs the steps.  Steps run in order and stop at the first failure; their output goes to
``command.log``.  The ``command`` stage timeout covers all steps together.

The per-package cost with ``source: none`` is one process per step and a few
``mkdir`` calls: benchmarks build 1,000 such packages.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from superbuild import export
from superbuild import git as g
from superbuild.errors import SuperbuildError, ToolMissingError
from superbuild.pipelines.api import (
    BuildContext,
    BuildProducts,
    JobInputs,
    Pipeline,
    PipelineFailed,
    Runner,
    Workspace,
)
from superbuild.pipelines.source import (
    check_source_repo,
    inputs_for,
    source_unavailable,
)
from superbuild.pipelines.stage import Stage, build_env
from superbuild.pipelines.transport import Blob

if TYPE_CHECKING:
    pass

#: Characters of a step shown in a failure message.
STEP_PREVIEW = 60

_PLAIN_WORD = r"[A-Za-z0-9_./=:,+@%-]+"
_PLAIN_STEP = re.compile(rf"{_PLAIN_WORD}( +{_PLAIN_WORD})*")
#: Words whose meaning needs a shell (builtins that act on the shell itself, keywords).
_SHELL_ONLY = frozenset(
    [
        ".",
        ":",
        "[[",
        "!",
        "{",
        "}",
        "alias",
        "bg",
        "break",
        "case",
        "cd",
        "command",
        "continue",
        "do",
        "done",
        "elif",
        "else",
        "esac",
        "eval",
        "exec",
        "exit",
        "export",
        "fg",
        "fi",
        "for",
        "function",
        "getopts",
        "hash",
        "if",
        "in",
        "jobs",
        "local",
        "read",
        "readonly",
        "return",
        "select",
        "set",
        "shift",
        "source",
        "then",
        "time",
        "times",
        "trap",
        "type",
        "ulimit",
        "umask",
        "unalias",
        "unset",
        "until",
        "wait",
        "while",
    ]
)


def plain_argv(step: str) -> list[str] | None:
    """The argv of a step that needs no shell, as make runs such recipes; else None.

    Plain means words of ``[A-Za-z0-9_./=:,+@%-]`` separated by spaces, the first not an
    assignment nor a word only a shell understands: ``make -j4 install`` qualifies,
    ``make && make install`` or ``cd src`` do not.  Running it directly saves starting
    ``sh`` for each step.
    """
    if not _PLAIN_STEP.fullmatch(step):
        return None
    argv = step.split()
    if "=" in argv[0] or argv[0] in _SHELL_ONLY:
        return None
    return argv


def _preview(step: str) -> str:
    first = step.strip().splitlines()[0] if step.strip() else ""
    return first if len(first) <= STEP_PREVIEW else first[: STEP_PREVIEW - 3] + "..."


def _reset(path: Path) -> None:
    """An empty directory at ``path`` (a retried build may have left files)."""
    try:
        path.mkdir(parents=True)
    except FileExistsError:
        shutil.rmtree(path)
        path.mkdir(parents=True)


class CommandPipeline(Pipeline):
    """Run shell steps in an export of the commit (or an empty directory)."""

    name: str = "command"
    stages: tuple[str, ...] = ("source", "command", "collect")

    def reads_git(self, ctx: BuildContext) -> bool:
        return ctx.package.source != "none"

    def prepare(self, ctx: BuildContext, runner: Runner, durations: dict[str, float]) -> JobInputs:
        """The source stage (coordinator): ``git archive`` of the commit, unless ``source: none``."""
        if ctx.package.source == "none":
            return inputs_for(ctx, durations)
        with Stage.of(ctx, "source", runner, durations) as st:
            tarball = self._archive(ctx, st)
        return inputs_for(ctx, durations, sources=[tarball])

    def build(
        self,
        inputs: JobInputs,
        ws: Workspace,
        runner: Runner,
        durations: dict[str, float],
    ) -> BuildProducts:
        """The command stage (worker): unpack the tarball, run the steps in order."""
        pkg = inputs.package
        src = ws.work_dir / "src"
        out = ws.work_dir / "out"
        env_extra = export.package_variables(pkg.name, pkg.path, inputs.commit, src)
        env_extra["SUPERBUILD_OUTPUT"] = os.fspath(out)
        if inputs.target is not None:
            env_extra["SUPERBUILD_TARGET"] = inputs.target
        tarball: Path | None = None
        if inputs.sources:
            tarball = inputs.sources[0].write(ws.work_dir)
            env_extra["SUPERBUILD_TARBALL"] = os.fspath(tarball)
        else:
            _reset(src)
        _reset(out)
        env = build_env(inputs, env_extra)

        with Stage.in_workspace(ws, pkg, "command", runner, durations) as st:
            if tarball is not None:
                try:
                    export.unpack(tarball, src, prefix=tarball.name.removesuffix(".tar.gz"))
                except SuperbuildError as exc:
                    st.fail(str(exc))
                st.note(f"# unpacked {tarball.name} to {src}")
            total = len(pkg.commands)
            for number, step in enumerate(pkg.commands, 1):
                st.note(f"# step {number}/{total}")
                what = f"step {number} ({_preview(step)})"
                argv = plain_argv(step)
                if argv is not None:
                    try:
                        st.run(argv, cwd=src, env=env, what=what)
                        continue
                    except ToolMissingError:
                        pass  # let the shell say it (exit 127), as it would have
                st.run(["sh", "-c", step], cwd=src, env=env, what=what)
        return BuildProducts(package=pkg.name, files_dir=out, version=pkg.version)

    def _archive(self, ctx: BuildContext, st: Stage) -> Blob:
        """``git archive`` the commit to ``NAME-COMMIT7.tar.gz`` (prefix ``NAME-COMMIT7/``)."""
        check_source_repo(ctx)
        prefix = f"{ctx.package.name}-{ctx.commit[:7]}"
        folder = ctx.work_dir / "input"
        folder.mkdir(parents=True, exist_ok=True)
        tarball = folder / f"{prefix}.tar.gz"
        cmd = export.archive_command(ctx.source_repo, ctx.commit, tarball, prefix=prefix)
        try:
            st.run(cmd, env=g.default_git_env(), what="git archive")
            st.note(f"# archived {ctx.commit} as {tarball.name}")
            return Blob.read(tarball)
        except PipelineFailed:
            # Only now ask why (saves a git process per package on the happy path).
            [found] = g.resolve(ctx.source_repo, [f"{ctx.commit}^{{commit}}"])
            if found is None:
                raise source_unavailable(ctx, "no such commit") from None
            raise
        finally:
            shutil.rmtree(folder, ignore_errors=True)


PIPELINE = CommandPipeline()
