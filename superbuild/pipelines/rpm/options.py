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
    #: rpm macros (name, value) defined for every rpm, rpmbuild and mock call.
    macros: tuple[tuple[str, str], ...] = ()

    def defines(self) -> list[str]:
        """``--define 'NAME VALUE'`` arguments for :attr:`macros`."""
        return [arg for name, value in self.macros for arg in ("--define", f"{name} {value}")]

    def __post_init__(self) -> None:
        if self.builder not in BUILDERS:
            raise SuperbuildError(
                f"unknown builder {self.builder!r} (known: {', '.join(BUILDERS)})"
            )


def default_builder() -> str:
    """mock if it is installed, else rpmbuild."""
    return "mock" if shutil.which("mock") else "rpmbuild"


def options_of(options: object) -> RpmOptions:
    """The rpm options carried by a context or job inputs (defaults when there are none)."""
    if options is None:
        return RpmOptions()
    if not isinstance(options, RpmOptions):
        raise SuperbuildError(f"rpm pipeline given options of type {type(options).__name__}")
    return options
