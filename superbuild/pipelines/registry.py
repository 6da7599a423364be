"""The pipelines by name: the one source of the names the manifest schema accepts.

Importing this module imports no pipeline (``superbuild changed`` validates manifests
against these names on its hot path); :func:`get` imports the one asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from superbuild.errors import SuperbuildError

if TYPE_CHECKING:
    from superbuild.pipelines.api import Pipeline

#: Pipeline name -> the module defining it (as ``PIPELINE``).
PIPELINES: dict[str, str] = {
    "rpm": "superbuild.pipelines.rpm",
    "command": "superbuild.pipelines.command",
}
#: The default of a manifest's ``pipeline:``.
DEFAULT_PIPELINE = "rpm"
#: What builds binary RPMs in the rpm pipeline (``builder:``, ``--builder``).
BUILDERS = ("rpmbuild", "mock")
#: What a ``command`` package starts from (``source:``).
SOURCES = ("export", "none")
#: Stages a manifest may give a ``timeout:`` (``verify`` is the pre-push hook's).
STAGES = ("source", "srpm", "rpm", "sign", "command", "verify")


def get(name: str, package: str = "") -> Pipeline:
    """The pipeline registered as ``name``; SuperbuildError naming ``package`` if unknown."""
    module = PIPELINES.get(name)
    if module is None:
        who = f"{package}: " if package else ""
        raise SuperbuildError(
            f"{who}unknown pipeline {name!r} (known: {', '.join(sorted(PIPELINES))})"
        )
    pipeline: Pipeline = importlib.import_module(module).PIPELINE
    return pipeline
