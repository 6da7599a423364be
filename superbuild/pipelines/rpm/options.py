"""The rpm pipeline's own settings, chosen on the coordinator for each package."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from superbuild.errors import SuperbuildError
from superbuild.pipelines.registry import BUILDERS


@dataclass(frozen=True)
class RpmOptions:
    """How the rpm pipeline builds one package; picklable."""

    builder: str = "rpmbuild"
    mock_config: str | None = None
    #: For mock: repositories of packages already built in this run (``<output>/rpms``),
    #: added with ``--addrepo`` once they have metadata (never on a remote worker).
    extra_repos: tuple[Path, ...] = ()
    sign_key: str | None = None
    gpg_home: str | None = None

    def __post_init__(self) -> None:
        if self.builder not in BUILDERS:
            raise SuperbuildError(
                f"unknown builder {self.builder!r} (known: {', '.join(BUILDERS)})"
            )


def default_builder() -> str:
    """mock if it is installed, else rpmbuild."""
    return "mock" if shutil.which("mock") else "rpmbuild"
