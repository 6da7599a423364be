"""Reading and stamping spec files with rpm's own parser (through Packit's ``specfile``).

A regex over spec text gets real specs wrong (Release lines under ``%if``, ``%package``
inside a multi-line macro, ``%autorelease``, ``Source0: ...#/renamed.tar.bz2``), so the
source stage asks rpm: :func:`read_spec` parses the spec with librpm (its macros,
conditionals and ``#/`` renames) and returns :class:`SpecFacts`: the expanded Name,
Version, Release and Epoch, every Source and Patch file name, and the folder the
``%prep`` section's ``%setup``/``%autosetup`` enters (``-n``, ``-c``).

Provenance (:func:`with_provenance`) edits the spec the same way, tag by tag:

- every ``Release:`` tag of every package section (the main one and each ``%package``,
  in every ``%if`` branch) gets ``.<n>.g<sha7>`` (``n`` = commits reachable from the
  recorded commit) before the dist tag, and the dist tag (``%{?dist}``, ``%{dist}``,
  ``%dist``) is moved to the end: ``1%{?dist}.1`` becomes ``1.1.<n>.g<sha7>%{?dist}``;
- ``%autorelease`` (any form: ``-p``, ``-e EXTRA``, ``-s SNAP``, ``-b BASE``, ``-n``) is
  kept, and the spec gets a definition of the macro that puts the provenance before the
  dist tag, as rpmautospec would put its release number: ``%autorelease -e rc1`` gives
  ``1.rc1.<n>.g<sha7>%{?dist}``;
- a ``VCS: <full commit>`` tag is set in the main package (rpm >= 4.15).

librpm keeps its macros in process-wide state: every parse holds :data:`RPM_LOCK`.  The
spec's bytes are never re-formatted beyond the tags that change.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from superbuild import proc
from superbuild.errors import ToolMissingError

#: librpm's macro context is global to the process: one parse at a time.
RPM_LOCK = threading.Lock()

_DIST_RE = re.compile(r"%\{\?dist\}|%\{dist\}|%dist\b|%\{\?dist:[^}]*\}")
_AUTORELEASE_RE = re.compile(r"%\{?autorelease\b")
#: rpm's flags of a ``spec.sources`` entry (rpmbuild.h: RPMBUILD_ISSOURCE, RPMBUILD_ISPATCH).
_RPMBUILD_ISSOURCE = 1 << 0
_RPMBUILD_ISPATCH = 1 << 1


class SpecError(ValueError):
    """The spec cannot be read or given provenance; the message says why."""


@dataclass(frozen=True)
class SpecSource:
    """One Source or Patch of a spec, as rpm expands it."""

    kind: str  # "Source" or "Patch"
    number: int
    #: The file name rpmbuild looks for in SOURCES (after ``#/`` renames).
    file_name: str
    #: The tag's value as rpm expands it (a URL or a plain name).
    location: str

    @property
    def tag(self) -> str:
        return f"{self.kind}{self.number}"


@dataclass(frozen=True)
class SpecFacts:
    """What rpm says about a spec."""

    name: str
    version: str
    release: str
    epoch: str | None
    sources: tuple[SpecSource, ...]
    #: The folder ``%prep`` unpacks the main archive into and enters: ``-n``, default
    #: ``%{name}-%{version}``.
    archive_dir: str
    #: ``%setup -c``: the folder is created first and the archive unpacked inside it,
    #: so the archive must hold the files at its root (no top folder).
    creates_dir: bool
    #: ``%autorelease`` in a Release tag.
    autorelease: bool

    @property
    def source0(self) -> SpecSource | None:
        """The main archive's source: the lowest-numbered ``Source``."""
        found = [s for s in self.sources if s.kind == "Source"]
        return min(found, key=lambda s: s.number) if found else None


def _specfile() -> Any:
    try:
        import specfile
    except ImportError as exc:  # the rpm shim finds no system bindings
        raise ToolMissingError(
            f"rpm's Python bindings are missing ({exc}): install python3-rpm "
            "(apt-get install python3-rpm / dnf install python3-rpm)"
        ) from None
    return specfile


def _autorelease_definition(suffix: str) -> str:
    # rpmautospec's %autorelease gives [0.]<n>[.<extra>][.<snapshot>]%{?dist}; ours puts
    # the provenance (if any) where its release number's history would be, before the
    # dist tag.
    return (
        "%define autorelease(e:s:pb:n) "
        "%{?-p:0.}%{?-b:%{-b*}}%{!?-b:1}%{?-e:.%{-e*}}%{?-s:.%{-s*}}"
        f"{suffix}%{{!?-n:%{{?dist}}}}\n"
    )


#: ``%autochangelog`` where no rpmautospec defines it (a Debian host): an empty changelog.
_AUTOCHANGELOG_DEFAULT = "%{!?autochangelog:%global autochangelog %{nil}}\n"


def prelude(text: str, suffix: str = "") -> str:
    """Definitions a spec needs before rpm can parse it here: ``%autorelease`` (with
    ``suffix``, the provenance) and a default ``%autochangelog``, when the spec uses them."""
    lines = ""
    if _AUTORELEASE_RE.search(text) and "%define autorelease(" not in text:
        lines += _autorelease_definition(suffix)
    if "autochangelog" in text and _AUTOCHANGELOG_DEFAULT not in text:
        lines += _AUTOCHANGELOG_DEFAULT
    return lines


@contextlib.contextmanager
def parsed(text: str, macros: Sequence[tuple[str, str]] = ()) -> Iterator[Any]:
    """A ``specfile.Specfile`` of ``text`` parsed by librpm, under :data:`RPM_LOCK`.

    ``macros`` are defined for the parse (``rpm_macros``).  Sources the spec names are
    faked by empty files in a private folder so that rpm parses without them.  The caller
    adds :func:`prelude` when the spec needs it.
    """
    specfile = _specfile()
    # specfile logs one warning per dummy source it cannot create: not ours to show.
    logging.getLogger("specfile").setLevel(logging.ERROR)
    with (
        RPM_LOCK,
        tempfile.TemporaryDirectory(
            # the owner in the name: a SIGKILLed run's folder is removed by the next build
            prefix=f"superbuild-spec-{proc.owner_tag()}-"
        ) as sourcedir,
    ):
        try:
            spec = specfile.Specfile(
                content=text, sourcedir=Path(sourcedir), macros=list(macros), force_parse=True
            )
        except Exception as exc:  # specfile raises RPMException and friends
            raise SpecError(_one_line(exc)) from None
        try:
            yield spec
        except SpecError:
            raise
        except Exception as exc:  # rpm parsed it, but specfile cannot map a part of it
            raise SpecError(
                f"specfile cannot read this spec's structure ({type(exc).__name__}: "
                f"{_one_line(exc)})"
            ) from None


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines[:3]) or type(exc).__name__


def read_spec(text: str, macros: Sequence[tuple[str, str]] = ()) -> SpecFacts:
    """Ask rpm what ``text`` builds (raises :class:`SpecError` if rpm cannot parse it)."""
    with parsed(prelude(text) + text, macros) as spec:
        return _facts(spec)


def _facts(spec: Any) -> SpecFacts:
    # rpm's own list of the sources it kept (expanded, under the true %if branches):
    # specfile's per-tag expansion re-parses the whole spec twice per source.
    sources = [
        SpecSource(
            "Patch" if flags & _RPMBUILD_ISPATCH else "Source",
            int(number),
            _file_name(location),
            location,
        )
        for location, number, flags in (
            (_text(raw), number, flags) for raw, number, flags in spec.rpm_spec.sources
        )
        if flags & (_RPMBUILD_ISSOURCE | _RPMBUILD_ISPATCH)
    ]
    header = spec.rpm_spec.sourceHeader  # rpm's own answer, dist tag included
    name, version, release = (_text(header[tag]) for tag in ("name", "version", "release"))
    archive_dir, creates_dir = _prep_folder(_text(spec.rpm_spec.prep or ""), f"{name}-{version}")
    raw = spec.raw_release or ""
    epoch = header["epoch"]
    return SpecFacts(
        name=name,
        version=version,
        release=release,
        epoch=str(epoch) if epoch not in (None, "") else None,
        sources=tuple(sorted(sources, key=lambda s: (s.kind, s.number))),
        archive_dir=archive_dir,
        creates_dir=creates_dir,
        autorelease=bool(_AUTORELEASE_RE.search(raw))
        or ("autorelease" in raw and bool(spec.has_autorelease)),
    )


_CD_RE = re.compile(r"^cd '([^'/][^']*)'$")
_MKDIR_RE = re.compile(r"^(?:\S*/)?mkdir -p '?([^'/\s][^'\s]*)'?$")


def _prep_folder(prep: str, default: str) -> tuple[str, bool]:
    """The folder rpm's expanded ``%prep`` enters first after ``%setup``, and whether it
    made it (``-c``); ``default`` when %prep enters none.

    Reading rpm's expansion (not the ``%setup`` line) covers every wrapper:
    ``%autosetup``, ``%forgesetup``, ``%forgeautosetup``, ``%pypi_source`` helpers.
    """
    created: set[str] = set()
    for raw in prep.splitlines():
        line = raw.strip()
        made = _MKDIR_RE.match(line)
        if made:
            created.add(made.group(1))
            continue
        entered = _CD_RE.match(line)
        if entered:
            folder = entered.group(1)
            return folder, folder in created
    return default, False


def _file_name(location: str) -> str:
    """The file rpmbuild looks for in SOURCES: after the last ``/`` (``#/`` renames)."""
    slash = location.rfind("/")
    return location if slash < 0 else location[slash + 1 :].rsplit("=", maxsplit=1)[-1]


def _text(value: Any) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


_VERSION_LINE_RE = re.compile(r"^[ \t]*version[ \t]*:(.*)$", re.IGNORECASE | re.MULTILINE)


def has_version(text: str, version: str) -> bool:
    """Whether :func:`with_version` would leave ``text`` as it is: its one ``Version:``
    line already says ``version`` (the source stage then skips that parse)."""
    lines = _VERSION_LINE_RE.findall(text)
    return len(lines) == 1 and lines[0].strip() == version


def with_version(text: str, version: str, macros: Sequence[tuple[str, str]] = ()) -> str:
    """``text`` with the main package's Version (every branch of it) set to ``version``."""
    return _set_tag(text, "Version", version, macros, every_package=False)


def with_release(text: str, release: str, macros: Sequence[tuple[str, str]] = ()) -> str:
    """``text`` whose every ``Release:`` (each package, each ``%if`` branch) is ``release``."""
    return _set_tag(text, "Release", release, macros, every_package=True)


def _set_tag(
    text: str,
    name: str,
    value: str,
    macros: Sequence[tuple[str, str]],
    *,
    every_package: bool,
) -> str:
    """``text`` with every ``name`` tag of the main package (``every_package``: of each
    ``%package`` too) set to ``value``; the spec's other bytes as they were."""
    head = prelude(text)
    with parsed(head + text, macros) as spec:
        changed = False
        with spec.sections() as sections:
            packages = [s for s in sections if s.normalized_name == "package"]
            for section in packages if every_package else packages[:1]:
                with spec.tags(section) as tags:
                    for tag in tags:
                        if tag.normalized_name == name:
                            tag.value = value
                            changed = True
        if not changed:
            where = "" if every_package else " in its main package"
            raise SpecError(f"the spec has no {name}: tag{where}")
        return str(spec).removeprefix(head)


def with_patches(text: str, names: Sequence[str], macros: Sequence[tuple[str, str]] = ()) -> str:
    """``text`` with a numbered ``Patch`` tag for each of ``names``, after its own."""
    head = prelude(text)
    with parsed(head + text, macros) as spec:
        for name in names:
            spec.add_patch(name, initial_number=1)
        return str(spec).removeprefix(head)


def prep_applies(
    text: str, names: Sequence[str], macros: Sequence[tuple[str, str]] = ()
) -> list[str]:
    """The ``names`` that rpm's expansion of the spec's ``%prep`` does not mention."""
    with parsed(prelude(text) + text, macros) as spec:
        prep = _text(spec.rpm_spec.prep or "")
    return [name for name in names if name not in prep]


def release_suffix(commit: str, count: int, rebuild: int = 0) -> str:
    """``.<n>.g<sha7>``, then ``.<k>`` for the k-th rebuild of the same commit: added to
    every Release (``n`` = commits reachable).  A rebuild sorts newer than the build
    before it, and older than any build of a descendant commit (``n`` is larger)."""
    return f".{count}.g{commit[:7]}" + (f".{rebuild}" if rebuild else "")


def stamped_release(value: str, suffix: str) -> str:
    """A Release value with ``suffix`` added before the dist tag, which ends up last.

    ``%autorelease`` values are left as they are: the macro itself is redefined (see
    :func:`with_provenance`).
    """
    if _AUTORELEASE_RE.search(value):
        return value
    trailing = value[len(value.rstrip()) :]
    body = value.rstrip()
    dist = _DIST_RE.search(body)
    if dist is None:
        return body + suffix + trailing
    rest = (body[: dist.start()] + body[dist.end() :]).rstrip(".")
    return rest + suffix + dist.group(0) + trailing


_RELEASE_LINE_RE = re.compile(r"^[ \t]*release[ \t]*:(.*)$", re.IGNORECASE | re.MULTILINE)
_PLAIN_RELEASE_RE = re.compile(r"^([0-9A-Za-z._+~^]+)(%\{\?dist\})?$")


def stamped_facts(text: str, facts: SpecFacts, suffix: str) -> SpecFacts | None:
    """What rpm reads from ``text`` stamped with ``suffix``, known without parsing it
    again when it is certain: ``text`` has one ``Release:`` line (no ``%if`` branches,
    no subpackage's own), a literal value with at most ``%{?dist}`` after it, no
    ``%autorelease``.  Then rpm's Release of ``facts`` is that literal plus the dist
    tag's expansion, and the stamped one puts ``suffix`` between them (the other facts
    do not change).  None: ask rpm (:func:`read_spec`)."""
    lines = _RELEASE_LINE_RE.findall(text)
    if len(lines) != 1 or "autorelease" in text:
        return None
    plain = _PLAIN_RELEASE_RE.match(lines[0].strip())
    if plain is None or not facts.release.startswith(plain.group(1)):
        return None
    dist = facts.release[len(plain.group(1)) :]
    if dist and plain.group(2) is None:
        return None
    return dataclasses.replace(facts, release=plain.group(1) + suffix + dist)


def with_provenance(
    text: str,
    commit: str,
    count: int,
    macros: Sequence[tuple[str, str]] = (),
    rebuild: int = 0,
) -> str:
    """``text`` whose every Release names ``commit`` (see the module doc), with ``VCS:``."""
    suffix = release_suffix(commit, count, rebuild)
    edited = _plain_provenance(text, commit, suffix)
    if edited is not None:
        return edited
    head = prelude(text, suffix)  # kept: the SRPM's spec rebuilds the same Release anywhere
    with parsed(head + text, macros) as spec:
        found_release = False
        # Tags edited through a section are saved when the sections context closes.
        with spec.sections() as sections:
            packages = [s for s in sections if s.normalized_name == "package"]
            for index, section in enumerate(packages):
                with spec.tags(section) as tags:
                    first_release = None
                    vcs = None
                    for position, tag in enumerate(tags):
                        if tag.normalized_name == "Release":
                            found_release = True
                            tag.value = stamped_release(tag.value, suffix)
                            if first_release is None:
                                first_release = position
                        elif tag.normalized_name == "Vcs":
                            vcs = tag
                    if index == 0:
                        if vcs is not None:
                            vcs.value = commit
                        elif first_release is not None:
                            _insert_vcs(tags, first_release, commit)
        if not found_release:
            raise SpecError("the spec has no Release: tag")
        return str(spec)


_PLAIN_RELEASE_LINE_RE = re.compile(
    r"^(release)([ \t]*:[ \t]*)([0-9A-Za-z._+~^]+(?:%\{\?dist\})?)([ \t]*)$",
    re.IGNORECASE | re.MULTILINE,
)
_VCS_LINE_RE = re.compile(r"^[ \t]*vcs[ \t]*:", re.IGNORECASE | re.MULTILINE)


def _plain_provenance(text: str, commit: str, suffix: str) -> str | None:
    """:func:`with_provenance`'s edit without a parse, for the plain spec whose result is
    certain: one ``Release:`` line (at the line start, a literal value, at most
    ``%{?dist}`` after it), no ``VCS:`` line, no ``%autorelease``/``%autochangelog``.
    The same bytes as specfile's edit (``tests/test_pipeline_rpm.py`` compares them);
    None: parse."""
    if "autorelease" in text or "autochangelog" in text or "\r" in text:
        return None
    if len(_RELEASE_LINE_RE.findall(text)) != 1 or _VCS_LINE_RE.search(text):
        return None
    found = _PLAIN_RELEASE_LINE_RE.search(text)
    if found is None:
        return None
    name, separator, value, trailing = found.groups()
    vcs = "VCS:" + " " * max(1, len(name) + len(separator) - len("VCS:")) + commit
    line = f"{name}{separator}{stamped_release(value, suffix)}{trailing}\n{vcs}"
    return text[: found.start()] + line + text[found.end() :]


def _insert_vcs(tags: Any, after: int, commit: str) -> None:
    from specfile.tags import Comments, Tag

    release = tags[after]
    separator = ":" + " " * max(1, len(release.name) + len(release._separator) - len("VCS:"))
    tags.insert(after + 1, Tag("VCS", commit, separator, Comments()))


@dataclass(frozen=True)
class SpecInputs:
    """The ``rpm`` pipeline's spec, as the source stage prepared it from git."""

    #: The full commit id the source stage resolved (stamped as ``VCS:``).
    commit: str
    #: File name of the spec (``hello.spec``).
    file_name: str
    #: Its text: ``version:`` applied, provenance added (ready for ``rpmbuild -bs``).
    text: str
    #: ``git rev-list --count <commit>``: the ``n`` of the Release suffix.
    commit_count: int
    #: Name, Version and Release as rpm reads the stamped spec.
    name: str
    version: str
    release: str
