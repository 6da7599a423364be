"""The records of a product: :class:`Package` (one manifest, defaults applied) and
:class:`Settings` (``superbuild.yaml``).

They live apart from :mod:`superbuild.manifest` so that change detection, which works on
cached manifest entries, never pays for importing :mod:`dataclasses`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any

from superbuild.layout import DEFAULT_OUTPUT

#: The default repository of a package in a release (manifest ``repo:``).
DEFAULT_REPO = "main"
#: The default layout of a release's repositories (settings ``releases:``).
DEFAULT_RELEASE_BINARY = "{target}/{repo}"
DEFAULT_RELEASE_SOURCE = "{target}/{repo}-srpms"

#: The target of a product without ``targets:`` in superbuild.yaml: ``None`` (``null`` in
#: JSON).  Its jobs are named by the package alone and its output is today's layout.
IMPLICIT: None = None


def job_id(package: str, target: str | None) -> str:
    """The id of the build of ``package`` for ``target``: ``pkg@el9``, or ``pkg`` for the
    implicit target.  ``@`` is in neither a package nor a target name, so it splits back."""
    return package if target is None else f"{package}@{target}"


def split_job_id(job: str) -> tuple[str, str | None]:
    """``(package, target)`` of a :func:`job_id`."""
    package, at, target = job.partition("@")
    return (package, target) if at else (package, None)


@dataclass(frozen=True)
class Package:
    """One package, with the defaults of superbuild.yaml applied."""

    name: str
    path: str
    manifest: str  # the manifest file, relative to the superproject root
    requires: tuple[str, ...] = ()
    pipeline: str = "rpm"
    description: str = ""
    spec: str | None = None
    version: str | None = None
    builder: str | None = None  # None: --builder, else mock if installed, else rpmbuild
    mock_config: str | None = None
    commands: tuple[str, ...] = ()
    verify: tuple[str, ...] = ()  # argv; a string in the manifest runs as ("sh", "-c", it)
    timeouts: tuple[tuple[str, float], ...] = ()  # (stage, seconds); stage "*" for all
    env: tuple[tuple[str, str], ...] = ()
    source: str = "export"
    #: rpm macros (name, value) for every rpm, rpmbuild and mock call of the package.
    rpm_macros: tuple[tuple[str, str], ...] = ()
    #: ``version: describe`` / ``{describe: TEMPLATE}``: the tag template (``v{version}``)
    #: the version is taken from; None: the spec's Version (or :attr:`version`).
    version_describe: str | None = None
    #: Where a snapshot past the tag is marked: ``version`` (``1.2^3.gabc1234``) or
    #: ``release`` (Version stays the tag's, the Release provenance orders it).
    version_snapshot: str = "version"
    release: str | None = None  # replaces every Release of the spec (``XXX`` placeholders)
    #: ``archive:`` overrides: Source0's file name and the archive's top folder ("": none).
    archive_name: str | None = None
    archive_prefix: str | None = None
    #: ``archive: {command: ...}``: argv that writes the archive into $SUPERBUILD_ARCHIVE_DIR.
    archive_command: tuple[str, ...] = ()
    #: ``archive: {upstream: TAG_OR_PATTERN, patches: per-commit|single}`` (GEAR style).
    archive_upstream: str | None = None
    archive_patches: str = "per-commit"
    #: ``repo:``: the repository of a release this package's RPMs go to (``deps/misc``);
    #: a layout choice, not a build input (left out of :attr:`digest`).
    repo: str = DEFAULT_REPO
    #: ``targets: [el9]``: the targets of superbuild.yaml this package is built for
    #: (empty: every target).
    targets: tuple[str, ...] = ()
    blob: str = ""  # object id of the manifest file

    def timeout(self, stage: str) -> float | None:
        found = dict(self.timeouts)
        return found.get(stage, found.get("*"))

    @cached_property
    def digest(self) -> str:
        """A hash of the effective entry: what a build of this package depends on."""
        data = self.to_dict()
        for key in ("manifest", "blob", "description", "repo"):
            data.pop(key)
        for key, default in _OPTIONAL.items():
            if data[key] == default:
                data.pop(key)  # keeps the build keys of packages that do not use it
        import hashlib

        raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(raw).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "manifest": self.manifest,
            "requires": list(self.requires),
            "pipeline": self.pipeline,
            "description": self.description,
            "spec": self.spec,
            "version": self.version,
            "builder": self.builder,
            "mock_config": self.mock_config,
            "commands": list(self.commands),
            "verify": list(self.verify),
            "timeouts": [list(t) for t in self.timeouts],
            "env": [list(e) for e in self.env],
            "source": self.source,
            "rpm_macros": [list(m) for m in self.rpm_macros],
            "version_describe": self.version_describe,
            "version_snapshot": self.version_snapshot,
            "release": self.release,
            "archive_name": self.archive_name,
            "archive_prefix": self.archive_prefix,
            "archive_command": list(self.archive_command),
            "archive_upstream": self.archive_upstream,
            "archive_patches": self.archive_patches,
            "repo": self.repo,
            "targets": list(self.targets),
            "blob": self.blob,
        }

    def values(self) -> tuple[Any, ...]:
        """The field values in field order (a :class:`superbuild.manifest.Entry` without
        its digest), without the deep copy of :func:`dataclasses.astuple`."""
        return tuple(getattr(self, f) for f in _FIELDS)

    @classmethod
    def of_values(cls, values: Sequence[Any], *, digest: str | None = None) -> Package:
        """The package of :meth:`values`; ``digest``: computed when it was cached."""
        package = cls(*values)
        if digest is not None:
            package.__dict__["digest"] = digest
        return package


_FIELDS = tuple(f.name for f in fields(Package))

#: Keys added after the first release: left out of :attr:`Package.digest` when unset, so
#: that the build keys of packages not using them stay what they were.
_OPTIONAL: dict[str, Any] = {
    "rpm_macros": [],
    "version_describe": None,
    "version_snapshot": "version",
    "release": None,
    "archive_name": None,
    "archive_prefix": None,
    "archive_command": [],
    "archive_upstream": None,
    "archive_patches": "per-commit",
    "targets": [],
}


@dataclass(frozen=True)
class Settings:
    output: str = DEFAULT_OUTPUT
    jobs: int | None = None
    sign_key: str | None = None
    gpg_home: str | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    executor: str | None = None
    scheduler_address: str | None = None
    keep_runs: int = 20  # superbuild clean keeps the newest runs (superbuild.cleanup)
    #: ``releases: {binary:, source:}``: where a release puts each repository, relative to
    #: the release (placeholders ``{target}`` and ``{repo}``; docs/releases.md).
    release_binary: str = DEFAULT_RELEASE_BINARY
    release_source: str = DEFAULT_RELEASE_SOURCE
    #: ``targets:``: name -> package defaults for that target (over ``defaults``), in the
    #: file's order.  Empty: one implicit target (:data:`IMPLICIT`), today's layout.
    targets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "jobs": self.jobs,
            "sign_key": self.sign_key,
            "gpg_home": self.gpg_home,
            "defaults": dict(self.defaults),
            "executor": self.executor,
            "scheduler_address": self.scheduler_address,
            "keep_runs": self.keep_runs,
            "release_binary": self.release_binary,
            "release_source": self.release_source,
            "targets": {name: dict(values) for name, values in self.targets.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Settings:
        return cls(**data)
