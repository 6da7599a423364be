"""Package manifests: ``manifests/**/<name>.yaml`` plus an optional ``superbuild.yaml``.

Manifests are read from git objects of the commit being analysed (``ls-tree`` plus one
``cat-file --batch``), never from the working tree, so every commit is judged by its
own manifests and a bare CI clone works.  Parsed and validated manifests are cached
under the git directory, keyed by the object ids of the manifests tree and of the
settings file: the same ids mean the same bytes, so the cache cannot go stale; a cache
file that does not parse is ignored and rewritten.

``yaml`` and ``jsonschema`` are imported only on a cache miss.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import superbuild
from superbuild import changecore
from superbuild import git as g
from superbuild.changecore import cache_name, index_name, read_cache
from superbuild.errors import ManifestError
from superbuild.submodules import superproject_of

if TYPE_CHECKING:
    from superbuild.graph import DependencyGraph
    from superbuild.package import Package, Settings

# Defined in superbuild/__init__ (the lean `changed` path reads them before anything else).
MANIFESTS_DIR = superbuild.MANIFESTS_DIR
SETTINGS_FILE = superbuild.SETTINGS_FILE
CACHE_FORMAT = changecore.CACHE_FORMAT


class Entry(NamedTuple):
    """One validated manifest as the cache stores it: the fields of
    :class:`~superbuild.package.Package`, in its order, then its digest.

    A NamedTuple, not the dataclass: change detection on a warm cache reads a thousand
    of these and never imports :mod:`dataclasses`.
    """

    name: str
    path: str
    manifest: str
    requires: tuple[str, ...]
    pipeline: str
    description: str
    spec: str | None
    version: str | None
    builder: str | None
    mock_config: str | None
    commands: tuple[str, ...]
    verify: tuple[str, ...]
    timeouts: tuple[tuple[str, float], ...]
    env: tuple[tuple[str, str], ...]
    source: str
    rpm_macros: tuple[tuple[str, str], ...]
    version_describe: str | None
    version_snapshot: str
    release: str | None
    archive_name: str | None
    archive_prefix: str | None
    archive_command: tuple[str, ...]
    archive_upstream: str | None
    archive_patches: str
    repo: str
    targets: tuple[str, ...]
    blob: str
    digest: str

    @classmethod
    def of(cls, package: Package) -> Entry:
        return cls._make((*package.values(), package.digest))

    def package(self) -> Package:
        from superbuild.package import Package

        return Package.of_values(self[:-1], digest=self.digest)


#: The keys of a cached entry: :class:`~superbuild.package.Package`'s fields and its digest.
ENTRY_KEYS = frozenset(Entry._fields)


class Product:
    """The packages of one superproject commit.

    Holds the cached entries (:class:`Entry`) and settings (:meth:`Settings.to_dict`);
    the :class:`~superbuild.package.Package` and :class:`~superbuild.package.Settings`
    records are made on first use, so that change detection on a warm cache neither
    builds a thousand objects nor imports dataclasses.
    """

    def __init__(
        self,
        commit: str | None,
        entries: Mapping[str, Entry],
        settings: Mapping[str, Any] | None = None,
        target_entries: Mapping[str, Mapping[str, Entry]] | None = None,
    ) -> None:
        self.commit = commit
        self.entries = dict(sorted(entries.items()))
        self.settings_data: dict[str, Any] = dict(settings or {})
        #: The commit whose ``manifests/`` these are: ``commit`` itself, another commit's
        #: (``--manifests-from``), or None when no manifests describe it.
        self.manifests: str | None = commit
        #: Packages of the borrowed manifests whose path is no gitlink of ``commit``.
        self.left_out: tuple[str, ...] = ()
        #: target -> package -> the entry with that target's defaults applied (only the
        #: packages built for the target).
        self.target_entries: dict[str, dict[str, Entry]] = {
            t: dict(sorted(e.items())) for t, e in (target_entries or {}).items()
        }

    @classmethod
    def of(
        cls,
        commit: str | None,
        packages: Iterable[Package],
        settings: Settings | None = None,
        target_packages: Mapping[str, Iterable[Package]] | None = None,
    ) -> Product:
        packages = list(packages)
        product = cls(
            commit,
            {p.name: Entry.of(p) for p in packages},
            settings.to_dict() if settings is not None else None,
            {t: {p.name: Entry.of(p) for p in ps} for t, ps in (target_packages or {}).items()},
        )
        product.__dict__["packages"] = {p.name: p for p in sorted(packages, key=lambda p: p.name)}
        if settings is not None:
            product.__dict__["settings"] = settings
        return product

    @cached_property
    def settings(self) -> Settings:
        from superbuild.package import Settings

        return Settings.from_dict(self.settings_data) if self.settings_data else Settings()

    @cached_property
    def packages(self) -> dict[str, Package]:
        return {name: e.package() for name, e in self.entries.items()}

    @cached_property
    def _by_path(self) -> dict[str, str]:
        return {e.path: name for name, e in self.entries.items()}

    def name_at(self, path: str) -> str | None:
        """The package whose manifest claims submodule ``path``."""
        return self._by_path.get(path)

    def blob(self, name: str) -> str:
        return self.entries[name].blob

    @property
    def target_names(self) -> tuple[str, ...]:
        """The targets of superbuild.yaml, in its order (empty: the implicit target)."""
        return tuple(self.settings_data.get("targets") or ())

    def targets_of(self, name: str) -> tuple[str | None, ...]:
        """The targets ``name`` is built for: ``(None,)`` without ``targets:``."""
        if not self.target_names:
            return (None,)
        return tuple(t for t in self.target_names if name in self.target_entries.get(t, {}))

    def entry_for(self, name: str, target: str | None) -> Entry:
        """The entry of ``name`` with ``target``'s defaults applied (None: as it is)."""
        return self.entries[name] if target is None else self.target_entries[target][name]

    def package_for(self, name: str, target: str | None) -> Package:
        """The package ``name`` as it is built for ``target`` (None: the implicit one)."""
        if target is None:
            return self.packages[name]
        return self._target_packages[target][name]

    @cached_property
    def _target_packages(self) -> dict[str, dict[str, Package]]:
        return {
            t: {n: e.package() for n, e in entries.items()}
            for t, entries in self.target_entries.items()
        }

    def digest(self, name: str) -> str:
        return self.entries[name].digest

    def side(self) -> changecore.Side:
        """The product as :func:`superbuild.changecore.analyse` reads it: a package's
        digest covers its digest for each target (a target's settings changed: it changed)."""
        keys = {
            n: (
                e.blob,
                changecore.target_digest(
                    e.digest,
                    [(t, es[n].digest) for t, es in self.target_entries.items() if n in es],
                ),
            )
            for n, e in self.entries.items()
        }
        return changecore.Side(self._by_path, keys)

    @cached_property
    def graph(self) -> DependencyGraph:
        from superbuild.graph import DependencyGraph

        return DependencyGraph({n: e.requires for n, e in self.entries.items()})

    def get(self, name: str) -> Package:
        try:
            return self.packages[name]
        except KeyError:
            raise ManifestError(unknown_package_message(name, self.packages)) from None


def unknown_package_message(name: str, known: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown package {name!r}{hint}: no manifests/{name}.yaml in this commit"


# --------------------------------------------------------------------------- loading


def manifest_name(path: str) -> str | None:
    """Package name of a manifest file path (relative to manifests/), None if not a manifest."""
    base = path.rsplit("/", 1)[-1]
    for ext in (".yaml", ".yml"):
        if base.endswith(ext) and len(base) > len(ext):
            return base[: -len(ext)]
    return None


def load_product(
    repo: Path,
    commit: str,
    *,
    strict: bool = True,
    cache_dir: Path | None = None,
    tree_ids: tuple[str | None, str | None] | None = None,
    links: Mapping[str, str] | None = None,
    missing_hint: str = "",
) -> Product:
    """Read, validate and default the manifests of ``commit``.

    ``strict`` raises one :class:`ManifestError` listing every problem: of the files
    (YAML, schema, names, ``requires``, cycles) and, given ``links`` (the commit's
    gitlinks: path -> commit), of each manifest ``path`` that is not a gitlink.
    ``strict=False`` is for the *base* side of a comparison: problems are tolerated and
    whatever parses is used to name packages.  ``tree_ids`` are the object ids of
    ``commit:manifests`` and ``commit:superbuild.yaml`` when the caller resolved them.
    ``missing_hint`` ends the error for a commit without ``manifests/`` (what else the
    caller's verb can do).
    """
    if tree_ids is None:
        found = g.resolve(repo, [f"{commit}:{MANIFESTS_DIR}", f"{commit}:{SETTINGS_FILE}"])
        tree_ids = (
            found[0][0] if found[0] and found[0][1] == "tree" else None,
            found[1][0] if found[1] and found[1][1] == "blob" else None,
        )
    tree, settings_blob = tree_ids
    if tree is None:
        if strict:
            raise ManifestError(_no_manifests(repo, commit, missing_hint))
        empty = Product(commit, {})
        empty.manifests = None
        return empty
    key = cache_name(tree, settings_blob)
    cached = _read_cache(cache_dir / key) if cache_dir is not None else None
    if cached is not None:
        product = Product(commit, cached[0], cached[1], cached[2])
        problems: list[str] = []
        index = cache_dir / index_name(tree, settings_blob) if cache_dir is not None else None
        if index is not None and not index.exists():
            _write_index(index, product)  # lost (a full disk): the lean path reads it
    else:
        packages, settings, problems, per_target = _parse(repo, tree, settings_blob)
        product = Product.of(
            commit,
            packages.values(),
            settings,
            {t: found.values() for t, found in per_target.items()},
        )
        if cache_dir is not None and not problems:
            _write_cache(cache_dir / key, product, cache_dir / index_name(tree, settings_blob))
    if strict and links is not None:
        problems += path_problems(product, links)
    if problems and strict:
        raise ManifestError.many(problems)
    return product


def _no_manifests(repo: Path, commit: str, hint: str = "") -> str:
    """Why a commit without ``manifests/`` cannot be analysed (an error path: may ask git);
    ``hint`` ends it unless the cause is running in a submodule."""
    found = superproject_of(repo)
    if found is not None:
        top, path = found
        return (
            f"commit {commit[:12]} has no {MANIFESTS_DIR}/ folder: you are inside submodule "
            f"{path} of {top}: run superbuild there (or with -C {top})"
        )
    return (
        f"commit {commit[:12]} has no {MANIFESTS_DIR}/ folder: describe each package in "
        f"{MANIFESTS_DIR}/<name>.yaml (superbuild init proposes them; see docs/manifest.md)" + hint
    )


def _read_cache(
    path: Path,
) -> tuple[dict[str, Entry], dict[str, Any], dict[str, dict[str, Entry]]] | None:
    """Read a cache file (:func:`superbuild.changecore.read_cache`): its entries, settings
    and entries per target.

    The CRC vouches for the bytes and CACHE_FORMAT for the layout; the field names catch
    a file of another layout that kept the same name.
    """
    data = read_cache(str(path))
    try:
        if data is None or data["fields"] != Entry._fields:
            return None
        entries = {values[0]: Entry._make(values) for values in data["packages"]}
        targets = {
            t: {values[0]: Entry._make(values) for values in rows}
            for t, rows in data["targets"].items()
        }
        settings = data["settings"]
        if not isinstance(settings, dict):
            return None
        return entries, settings, targets
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # another layout: parse again


def _write_cache(path: Path, product: Product, index: Path) -> None:
    """The cache file of a product, and the change-detection index the lean ``changed``
    path reads instead (``index``: :func:`superbuild.changecore.index_name`)."""
    _write_marshal(
        path,
        {
            "key": path.name,  # the file's own key (the manifests tree): checked on reading
            "fields": Entry._fields,
            "packages": [tuple(e) for e in product.entries.values()],
            "settings": product.settings_data,
            "targets": {
                t: [tuple(e) for e in es.values()] for t, es in product.target_entries.items()
            },
        },
    )
    _write_index(index, product)


def _write_index(index: Path, product: Product) -> None:
    found = product.side()
    _write_marshal(
        index,
        {
            "key": index.name,
            "by_path": dict(found.by_path),
            "keys": dict(found.keys),
            "requires": {n: tuple(e.requires) for n, e in product.entries.items()},
        },
    )


def _write_marshal(path: Path, data: dict[str, Any]) -> None:
    """A cache file :func:`superbuild.changecore.read_cache` reads: CRC-32, marshal."""
    import marshal
    import zlib

    from superbuild.fileio import write_bytes_atomic  # tempfile: only on a cache miss

    payload = marshal.dumps(data)
    with contextlib.suppress(OSError):  # a read-only git dir: no cache, same answers
        write_bytes_atomic(
            path, zlib.crc32(payload).to_bytes(4, "big") + payload, make_parents=True
        )


#: Parsed manifest files of this process: (blob, path, settings blob) -> (package,
#: problems, the package per target of the settings).
_MEMO: dict[tuple[str, str, str], tuple[Package | None, list[str], dict[str, Package]]] = {}


def _parse(
    repo: Path, tree: str, settings_blob: str | None
) -> tuple[dict[str, Package], Settings, list[str], dict[str, dict[str, Package]]]:
    from superbuild import schema  # only when a manifest is parsed (a cache miss)

    entries = [
        e for e in g.ls_tree(repo, tree) if e.kind == "blob" and manifest_name(e.path) is not None
    ]
    # Base and head of a range share most manifest files: each file is parsed once.
    memo_key = settings_blob or ""
    fresh = [e.oid for e in entries if (e.oid, e.path, memo_key) not in _MEMO]
    blobs = g.read_blobs(repo, fresh + ([settings_blob] if settings_blob else []))
    from superbuild.package import Settings

    problems: list[str] = []
    settings = Settings()
    if settings_blob:
        raw = schema.load_yaml(blobs[settings_blob], SETTINGS_FILE, problems)
        if raw is not None and schema.validate(
            raw, schema.SETTINGS_SCHEMA, SETTINGS_FILE, problems
        ):
            sign = raw.get("sign") or {}
            settings = Settings(
                output=raw.get("output", Settings().output),
                jobs=raw.get("jobs"),
                sign_key=sign.get("key"),
                gpg_home=sign.get("gpg_home"),
                defaults=raw.get("defaults", {}),
                executor=raw.get("executor"),
                scheduler_address=raw.get("scheduler_address"),
                keep_runs=raw.get("keep_runs", Settings().keep_runs),
                release_binary=raw.get("releases", {}).get("binary", Settings().release_binary),
                release_source=raw.get("releases", {}).get("source", Settings().release_source),
                targets=raw.get("targets", {}),
            )
            problems.extend(_releases_problems(settings))
    import re

    by_name: dict[str, list[str]] = {}
    by_path: dict[str, list[str]] = {}
    packages: dict[str, Package] = {}
    per_target: dict[str, dict[str, Package]] = {t: {} for t in settings.targets}
    for entry in sorted(entries, key=lambda e: e.path):
        file = f"{MANIFESTS_DIR}/{entry.path}"
        name = manifest_name(entry.path)
        assert name is not None
        by_name.setdefault(name, []).append(file)
        if not re.match(schema.NAME_PATTERN, name):
            problems.append(
                f"{file}: {name!r} is not a valid package name "
                "(letters, digits and . _ + -, starting with a letter or digit)"
            )
            continue
        key = (entry.oid, entry.path, memo_key)
        if key not in _MEMO:
            _MEMO[key] = _parse_one(name, file, entry.oid, blobs[entry.oid], settings)
        parsed, found, variants = _MEMO[key]
        problems.extend(found)
        if parsed is None:
            continue
        pkg = parsed
        by_path.setdefault(pkg.path, []).append(file)
        packages[name] = pkg
        for target, variant in variants.items():
            per_target.setdefault(target, {})[name] = variant
    for name, files in by_name.items():
        if len(files) > 1:
            problems.append(f"duplicate package name {name!r}: {', '.join(files)}")
            packages.pop(name, None)
    for path, files in by_path.items():
        if len(files) > 1:
            problems.append(f"duplicate path {path!r}: claimed by {', '.join(files)}")
    for pkg in packages.values():
        for req in pkg.requires:
            if req == pkg.name:
                problems.append(f"{pkg.manifest}: requires itself ({req!r})")
            elif req not in packages and req not in by_name:
                problems.append(
                    f"{pkg.manifest}: requires {unknown_package_message(req, packages)}"
                )
    packages = dict(sorted(packages.items()))
    problems.extend(_cycle_problems(packages))
    problems.extend(_target_problems(packages, per_target))
    per_target = {t: dict(sorted(found.items())) for t, found in per_target.items()}
    return packages, settings, problems, per_target


def _parse_one(
    name: str, file: str, blob: str, data: bytes, settings: Settings
) -> tuple[Package | None, list[str], dict[str, Package]]:
    """One manifest file: its package, its problems, and its package per target it is
    built for (that target's defaults over ``defaults:``, under the manifest's keys)."""
    from superbuild import schema

    found: list[str] = []
    raw = schema.load_yaml(data, file, found)
    ok = raw is not None and schema.validate(raw, schema.MANIFEST_SCHEMA, file, found)
    if not raw or not ok:
        return None, found, {}
    made = _package(name, file, blob, raw, settings.defaults)
    wanted = made.targets or tuple(settings.targets)
    unknown = [t for t in made.targets if t not in settings.targets]
    if unknown:
        defined = ", ".join(settings.targets) or "none"
        found.append(
            f"{file}: targets: unknown target {unknown[0]!r} (superbuild.yaml targets: "
            f"{defined}): name one of those, or define it in superbuild.yaml"
        )
    variants = {
        t: _package(name, file, blob, raw, _with_target(settings.defaults, settings.targets[t]))
        for t in wanted
        if t in settings.targets
    }
    for pkg in (made, *variants.values()):
        for problem in (*_archive_problems(pkg), *_env_problems(pkg), *_repo_problems(pkg)):
            if problem not in found:
                found.append(problem)
    if found:
        return None, found, {}
    return made, found, variants


def _with_target(defaults: Mapping[str, Any], target: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults:`` with a target's keys over them; the mappings (``env``,
    ``rpm_macros``, ``archive``) merged key by key, as a manifest's are."""
    merged = {**defaults, **target}
    for key in ("env", "rpm_macros", "archive"):
        if key in defaults and key in target:
            merged[key] = {**defaults[key], **target[key]}
    return merged


def _target_problems(
    packages: Mapping[str, Package], per_target: Mapping[str, Mapping[str, Package]]
) -> list[str]:
    """A package built for a target whose requirement is not: it would build against
    nothing of that target."""
    problems = []
    for target, built in per_target.items():
        for name in built:
            pkg = packages[name]
            for req in pkg.requires:
                if req in packages and req not in built:
                    problems.append(
                        f"{pkg.manifest}: requires {req!r}, which is not built for target "
                        f"{target!r} (its manifest's targets:): restrict {name} with targets: "
                        f"too, or build {req} for {target}"
                    )
    return problems


def _package(
    name: str, file: str, blob: str, raw: Mapping[str, Any], defaults: Mapping[str, Any]
) -> Package:
    from superbuild.package import Package

    data = {**defaults, **raw}
    verify = data.get("verify")
    if isinstance(verify, str):
        verify_argv: tuple[str, ...] = ("sh", "-c", verify)
    else:
        verify_argv = tuple(verify or ())
    timeout = data.get("timeout")
    if isinstance(timeout, int | float):
        timeouts: tuple[tuple[str, float], ...] = (("*", float(timeout)),)
    else:
        timeouts = tuple(sorted((s, float(t)) for s, t in (timeout or {}).items()))
    env = {**defaults.get("env", {}), **raw.get("env", {})}
    macros = {**defaults.get("rpm_macros", {}), **raw.get("rpm_macros", {})}
    version = data.get("version")
    describe: str | None = None
    snapshot = "version"
    if version == "describe":
        version, describe = None, "{version}"
    elif isinstance(version, Mapping):
        describe = version.get("describe", "{version}")
        snapshot = version.get("snapshot", "version")
        version = None
    archive = {**defaults.get("archive", {}), **raw.get("archive", {})}
    command = archive.get("command", ())
    if isinstance(command, str):
        command = ("sh", "-c", command)
    return Package(
        name=name,
        path=data["path"].strip("/"),
        manifest=file,
        requires=tuple(sorted(data.get("requires", ()))),
        pipeline=data.get("pipeline", "rpm"),
        description=data.get("description", ""),
        spec=data.get("spec"),
        version=version,
        builder=data.get("builder"),
        mock_config=data.get("mock_config"),
        commands=tuple(data.get("commands", ())),
        verify=verify_argv,
        timeouts=timeouts,
        env=tuple(sorted(env.items())),
        source=data.get("source", "export"),
        rpm_macros=tuple(sorted(macros.items())),
        version_describe=describe,
        version_snapshot=snapshot,
        release=data.get("release"),
        archive_name=archive.get("name"),
        archive_prefix=archive.get("prefix"),
        archive_command=tuple(command),
        archive_upstream=archive.get("upstream"),
        archive_patches=archive.get("patches", "per-commit"),
        repo=data.get("repo", "main"),
        targets=tuple(raw.get("targets", ())),
        blob=blob,
    )


#: Variables a commit may not set through ``env:``: they decide which programs and
#: libraries run and how shells and interpreters start (docs/security.md).
PROTECTED_ENV = frozenset(
    [
        "PATH",
        "IFS",
        "ENV",
        "BASH_ENV",
        "SHELLOPTS",
        "BASHOPTS",
        "CDPATH",
        "NODE_OPTIONS",
        "GNUPGHOME",
    ]
)
PROTECTED_ENV_PREFIXES = ("LD_", "DYLD_", "PYTHON", "PERL5", "RUBY", "GIT_", "RPM_")


def _env_problems(pkg: Package) -> list[str]:
    """``env:`` entries a commit may not set (they would change what runs)."""
    bad = sorted(
        name
        for name, _ in pkg.env
        if name in PROTECTED_ENV or name.startswith(PROTECTED_ENV_PREFIXES)
    )
    if not bad:
        return []
    return [
        f"{pkg.manifest}: env: {', '.join(bad)} may not be set by a manifest or by "
        "superbuild.yaml defaults (it would change which programs run): set it in the "
        "environment that runs superbuild instead"
    ]


def _archive_problems(pkg: Package) -> list[str]:
    """``archive:`` settings that cannot work together or would leave the archive."""
    problems = []
    if pkg.archive_command and pkg.archive_upstream:
        problems.append(
            f"{pkg.manifest}: archive: command and upstream exclude each other: choose one"
        )
    prefix = pkg.archive_prefix
    if prefix:
        parts = prefix.split("/")
        if prefix.startswith("/") or any(p in ("", ".", "..") for p in parts):
            problems.append(
                f"{pkg.manifest}: archive.prefix {prefix!r} must be a relative folder "
                "without '.', '..' or empty parts (\"\" for none)"
            )
    if pkg.archive_name in (".", ".."):
        problems.append(f"{pkg.manifest}: archive.name {pkg.archive_name!r} is not a file name")
    return problems


def relative_path_problem(value: str) -> str | None:
    """Why ``value`` is not a safe relative path (absolute, empty, ``.``/``..`` or empty
    parts), or None: the rule of every path a commit names inside superbuild's folders."""
    parts = value.split("/")
    if not value or value.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return "must be a relative path without '.', '..' or empty parts"
    if any(ord(c) < 32 or c == "\\" for c in value):
        return "must not contain control characters or backslashes"
    return None


def _repo_problems(pkg: Package) -> list[str]:
    """``repo:`` must name a folder inside a release (``deps/misc``)."""
    problem = relative_path_problem(pkg.repo)
    if problem is None:
        return []
    return [f"{pkg.manifest}: repo {pkg.repo!r} {problem} (e.g. main or deps/misc)"]


#: The placeholders a ``releases:`` template may use.
RELEASE_PLACEHOLDERS = ("target", "repo")


def _releases_problems(settings: Settings) -> list[str]:
    """``releases: {binary:, source:}``: templates that make safe, distinct folders."""
    import string

    problems = []
    made = {}
    for key, template in (("binary", settings.release_binary), ("source", settings.release_source)):
        where = f"{SETTINGS_FILE}: releases.{key} {template!r}"
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        except ValueError as exc:
            problems.append(f"{where}: {exc}: use {{target}} and {{repo}} only")
            continue
        unknown = sorted(set(fields) - set(RELEASE_PLACEHOLDERS))
        if unknown:
            problems.append(
                f"{where}: unknown placeholder {{{unknown[0]}}}: use {{target}} and {{repo}} only"
            )
            continue
        if "repo" not in fields:
            problems.append(f"{where}: needs {{repo}} (each repo: gets its own repository)")
            continue
        made[key] = template.format(target="t", repo="r")
        problem = relative_path_problem(made[key])
        if problem is not None:
            problems.append(f"{where}: {problem}")
    if len(made) == 2 and made["binary"] == made["source"]:
        problems.append(
            f"{SETTINGS_FILE}: releases.binary and releases.source must differ "
            "(binary and source RPMs are separate repositories)"
        )
    return problems


def _cycle_problems(packages: Mapping[str, Package]) -> list[str]:
    from superbuild.graph import DependencyGraph

    # Self-requires are reported on their own; requires of unknown names are ignored.
    graph = DependencyGraph({n: [r for r in p.requires if r != n] for n, p in packages.items()})
    try:
        graph.waves()  # plain Python: the common, acyclic case never imports networkx
        return []
    except ValueError:
        pass
    cycle = graph.find_cycle()
    if cycle is None:
        return []
    files = ", ".join(packages[n].manifest for n in cycle[:-1])
    return [f"dependency cycle: {' -> '.join(cycle)} (in {files}): remove one of these requires"]


def path_problems(product: Product, links: Mapping[str, str]) -> list[str]:
    """Every manifest ``path`` must be a gitlink in the product's commit."""
    problems = []
    commit = (product.commit or "")[:12]
    for entry in product.entries.values():
        if entry.path not in links:
            problems.append(
                f"{entry.manifest}: path {entry.path!r} is not a submodule (gitlink) in commit "
                f"{commit}: fix the path or add the submodule (git submodule add URL {entry.path})"
            )
    return problems
