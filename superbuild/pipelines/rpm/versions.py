"""Versions from git tags (``version: describe``), the way Fedora's guidelines spell them.

``git describe --tags --long --match GLOB`` at the recorded commit gives the nearest tag
and how many commits the commit is past it.  The tag's version (the part of the tag
that the template's ``{version}`` stands for; a leading ``v`` is dropped with the default
template) becomes an rpm Version:

- a pre-release tag sorts before its release with a tilde: ``1.2.0rc1``, ``1.2.0-rc.1``,
  ``v1.2.0.beta2`` give ``1.2.0~rc1``, ``1.2.0~rc.1``, ``1.2.0~beta2``;
- a commit past the tag is a post-release snapshot (``snapshot: version``, the
  default): ``18.12.0`` plus 9 commits at ``856aa2d`` gives ``18.12.0^9.g856aa2d``, which
  sorts after ``18.12.0`` and before ``18.12.1`` (and ``1.2.0~rc1^3.gabc1234`` after the
  rc, before the release).  The caret needs rpm >= 4.15 on every host that compares
  versions (EL 9, Fedora >= 31; not EL 8's rpm 4.14).  For older targets use
  ``snapshot: release``: Version stays the tag's and superbuild's Release provenance
  (``.<n>.g<sha7>``, ``n`` = commits reachable) orders the snapshots.

Other characters rpm does not allow in a Version (``-``, ``/``, spaces) fail with one
line naming the tag.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from superbuild import git as g

DEFAULT_TEMPLATE = "{version}"

_PRE_RE = re.compile(
    r"^(?P<base>\d+(?:\.\d+)*)[-_.]?(?P<pre>(?:alpha|beta|rc|pre|preview|dev|a|b|c)\.?\d*)$",
    re.IGNORECASE,
)
_VERSION_RE = re.compile(r"^[A-Za-z0-9._+~^]+$")


class VersionError(ValueError):
    """No usable tag; the message says why."""


class Described(NamedTuple):
    tag: str
    distance: int  # commits from the tag to the described commit
    commit: str  # the described commit's full id


def describe(repo: Path, commit: str, template: str = DEFAULT_TEMPLATE) -> Described | None:
    """The nearest tag matching ``template`` reachable from ``commit``, or None."""
    glob = template.replace("{version}", "*")
    result = g.git(
        repo,
        "describe",
        "--tags",
        "--long",
        "--abbrev=40",
        f"--match={glob}",
        commit,
        check=False,
        what="git describe",
    )
    if result.returncode != 0:
        return None
    tag, distance, sha = result.stdout.decode("utf-8", "surrogateescape").strip().rsplit("-", 2)
    return Described(tag, int(distance), sha.removeprefix("g"))


def tag_version(tag: str, template: str = DEFAULT_TEMPLATE) -> str:
    """The part of ``tag`` that ``template``'s ``{version}`` matches."""
    prefix, _, suffix = template.partition("{version}")
    if not (tag.startswith(prefix) and tag.endswith(suffix)) or len(tag) <= len(prefix + suffix):
        raise VersionError(f"tag {tag!r} does not match the template {template!r}")
    version = tag[len(prefix) : len(tag) - len(suffix)] if suffix else tag[len(prefix) :]
    if template == DEFAULT_TEMPLATE and re.match(r"^[vV]\d", version):
        version = version[1:]
    return version


def rpm_version(version: str, tag: str) -> str:
    """``version`` as an rpm Version: pre-releases with ``~``; refused if rpm cannot."""
    pre = _PRE_RE.match(version)
    if pre:
        version = f"{pre.group('base')}~{pre.group('pre')}"
    if not _VERSION_RE.match(version):
        raise VersionError(
            f"tag {tag!r} gives version {version!r}, which rpm does not accept (letters, "
            "digits and . _ + ~ ^ only): set version: in the manifest, or a describe "
            "template that leaves the rest of the tag out"
        )
    return version


def version_of(described: Described, template: str, snapshot: str) -> str:
    """The rpm Version of a described commit (see the module doc)."""
    base = rpm_version(tag_version(described.tag, template), described.tag)
    if described.distance == 0 or snapshot == "release":
        return base
    return f"{base}^{described.distance}.g{described.commit[:7]}"
