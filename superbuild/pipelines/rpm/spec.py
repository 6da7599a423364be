"""Spec text operations of the rpm pipeline: version override, Release provenance, query.

rpm's own parser (``rpmspec -q``) reads a spec's Name, Version, Release and sources
(:func:`parse_spec_query`); the text edits below only touch the main package's preamble.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SECTIONS = (
    "package|description|prep|build|install|check|clean|files|changelog|pre|post|preun|"
    "postun|pretrans|posttrans|preuntrans|postuntrans|triggerin|triggerun|triggerpostun|"
    "triggerprein|filetriggerin|filetriggerun|filetriggerpostun|transfiletriggerin|"
    "transfiletriggerun|transfiletriggerpostun|verifyscript|generate_buildrequires|conf|"
    "sourcelist|patchlist"
)
_SECTION_RE = re.compile(rf"^%({_SECTIONS})\b", re.MULTILINE)
_DIST = "%{?dist}"


class SpecError(ValueError):
    """The spec cannot be given provenance (no Release or Version line)."""


def _tag_re(tag: str) -> re.Pattern[str]:
    return re.compile(
        rf"^(?P<head>{tag}[ \t]*:[ \t]*)(?P<value>[^\n]*?)[ \t]*$", re.IGNORECASE | re.MULTILINE
    )


_RELEASE_RE = _tag_re("Release")
_VERSION_RE = _tag_re("Version")
_VCS_RE = _tag_re("VCS")


def _preamble_end(text: str) -> int:
    found = _SECTION_RE.search(text)
    return found.start() if found else len(text)


def set_version(text: str, version: str) -> str:
    """Replace the value of the main package's ``Version:`` line."""
    end = _preamble_end(text)
    found = _VERSION_RE.search(text, 0, end)
    if found is None:
        raise SpecError("the spec has no Version: line in its preamble")
    return text[: found.start("value")] + version + text[found.end("value") :]


def release_suffix(commit: str, count: int) -> str:
    """``.<n>.g<sha7>``: appended to the spec's Release (``n`` = commits reachable)."""
    return f".{count}.g{commit[:7]}"


def add_provenance(text: str, commit: str, count: int) -> str:
    """Rewrite a spec so its Release names the commit and it carries ``VCS: <commit>``.

    ``Release: 1%{?dist}`` becomes ``Release: 1.<count>.g<sha7>%{?dist}``; an existing
    ``VCS:`` tag is replaced, otherwise one is added after the Release line.
    """
    end = _preamble_end(text)
    found = _RELEASE_RE.search(text, 0, end)
    if found is None:
        raise SpecError("the spec has no Release: line in its preamble")
    value = found.group("value")
    suffix = release_suffix(commit, count)
    base, dist = (value[: -len(_DIST)], _DIST) if value.endswith(_DIST) else (value, "")
    release = base + suffix + dist
    vcs = _VCS_RE.search(text, 0, end)
    if vcs is not None:
        text = text[: vcs.start("value")] + commit + text[vcs.end("value") :]
        # The VCS line may come before the Release line: search again.
        found = _RELEASE_RE.search(text, 0, _preamble_end(text))
        assert found is not None
        return text[: found.start("value")] + release + text[found.end("value") :]
    pad = " " * max(1, len(found.group("head")) - len("VCS:"))
    line_end = found.end()
    return (
        text[: found.start("value")]
        + release
        + text[found.end("value") : line_end]
        + f"\nVCS:{pad}{commit}"
        + text[line_end:]
    )


@dataclass(frozen=True)
class SpecQuery:
    """What ``rpmspec -q --srpm`` says about a spec."""

    name: str
    version: str
    release: str
    sources: tuple[str, ...]  # file names (basenames) of Source and Patch tags


def parse_spec_query(out: str) -> SpecQuery:
    lines = out.splitlines()
    if len(lines) < 3:
        raise SpecError(f"unexpected rpmspec output: {out[:200]!r}")
    sources = tuple(line[2:] for line in lines[3:] if line[:2] in ("S ", "P "))
    return SpecQuery(lines[0], lines[1], lines[2], sources)


QUERY_FORMAT = "%{NAME}\\n%{VERSION}\\n%{RELEASE}\\n[S %{SOURCE}\\n][P %{PATCH}\\n]"


@dataclass(frozen=True)
class SpecInputs:
    """The ``rpm`` pipeline's spec, as the source stage read it from git."""

    #: The full commit id the source stage resolved (stamped as ``VCS:``).
    commit: str
    #: File name of the spec (``hello.spec``).
    file_name: str
    #: Its text, with ``version:`` applied; provenance is added by the srpm stage.
    text: str
    #: ``git rev-list --count <commit>``: the ``n`` of the Release suffix.
    commit_count: int
    #: Name, Version and Release as ``rpmspec`` reads them.
    name: str
    version: str
    release: str
