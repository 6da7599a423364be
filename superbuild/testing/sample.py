"""Real git superprojects of the sample product, for demos, tests and benches.

The sample product lives in ``manifests/`` at the root of this repository (modelled on
Altai Private Cloud: OpenStack client libraries, Glance, Nova, an extension, the Focus
web UI and the installer); its settings are ``sample_settings.yaml`` next to this module.

:func:`make_sample_superproject` turns it into git repositories under ``root``::

    root/remotes/<name>.git          one bare "upstream" repository per package
    root/superproject/               the superproject work tree:
        .gitmodules, superbuild.yaml (the sample settings), manifests/**/<name>.yaml,
        <path of each manifest>      a submodule checkout of <name>.git

Each package repository holds ``<name>.spec`` (a noarch RPM spec that builds with
``rpmbuild -bs`` then ``rpmbuild --rebuild --nodeps``, the source tarball being
``git archive --prefix=<name>-<version>/``), ``README``, ``NEWS`` and
``<name with _>/__init__.py``.  The versions come from the manifests' ``version`` key,
else :data:`DEFAULT_VERSION`.

The returned :class:`SampleSuperproject` makes history: :meth:`~SampleSuperproject.bump`
commits in a submodule, pushes to its remote and records the new gitlink in a
superproject commit; :meth:`~SampleSuperproject.commit` commits whatever was edited in the
work tree (a manifest, say).

Git runs with the environment of :func:`git_env`: fixed author and committer, no system
or global git config, and ``protocol.file.allow=always`` (through ``GIT_CONFIG_*``, which
superbuild passes on to its own git processes) so that local submodule URLs work.  Use
it for any git or superbuild process run against these repositories.

Passing ``bare_remotes=`` shares remotes between superprojects (a session fixture, say):
remotes already there are reused, and a superproject that does not own its remotes
pushes its bumps to a branch of its own, leaving ``main`` as created.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from superbuild import git as sgit
from superbuild.manifest import MANIFESTS_DIR, SETTINGS_FILE, manifest_name

#: The sample product's manifests (in the source tree, not in an installed wheel).
SAMPLE_MANIFESTS = Path(__file__).resolve().parents[2] / MANIFESTS_DIR
#: The sample product's ``superbuild.yaml``.
SAMPLE_SETTINGS = Path(__file__).resolve().with_name("sample_settings.yaml")
DEFAULT_VERSION = "1.0.0"
BRANCH = "main"
AUTHOR_NAME = "Superbuild Sample"
AUTHOR_EMAIL = "sample@example.invalid"


def git_env(base: Mapping[str, str] | None = None, *, date: str | None = None) -> dict[str, str]:
    """Environment for git (and superbuild) processes run on sample repositories.

    ``base`` defaults to ``os.environ``; git variables that point at another repository
    are dropped (as :func:`superbuild.git.git_env` does).  ``date`` (any git date, e.g.
    ``"2024-01-01T00:00:00Z"``) fixes author and committer dates, so commits of the same
    content get the same ids.
    """
    env = sgit.git_env(base)
    env.update(
        GIT_AUTHOR_NAME=AUTHOR_NAME,
        GIT_AUTHOR_EMAIL=AUTHOR_EMAIL,
        GIT_COMMITTER_NAME=AUTHOR_NAME,
        GIT_COMMITTER_EMAIL=AUTHOR_EMAIL,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
    )
    if date is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    count = int(env.get("GIT_CONFIG_COUNT", "0") or "0")
    env[f"GIT_CONFIG_KEY_{count}"] = "protocol.file.allow"
    env[f"GIT_CONFIG_VALUE_{count}"] = "always"
    env["GIT_CONFIG_COUNT"] = str(count + 1)
    return env


_ENV: dict[str, str] | None = None


def run_git(repo: Path | None, *args: str, env: Mapping[str, str] | None = None) -> str:
    """Run ``git [-C repo] args...`` and return its stripped stdout; failures raise."""
    global _ENV  # noqa: PLW0603 - computed once per process
    if env is None:
        if _ENV is None:
            _ENV = git_env()
        env = _ENV
    argv = ["git", *(["-C", os.fspath(repo)] if repo is not None else []), *args]
    try:
        result = subprocess.run(  # noqa: S603 - argv list, test tooling
            argv, check=True, stdin=subprocess.DEVNULL, capture_output=True, env=dict(env)
        )
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"{' '.join(argv)} exited {exc.returncode}: {detail}") from None
    return result.stdout.decode(errors="surrogateescape").strip()


# --------------------------------------------------------------------------- packages


def module_name(name: str) -> str:
    """The Python package directory of a sample package (``python-novaclient`` -> ``python_novaclient``)."""
    return name.replace("-", "_").replace(".", "_").replace("+", "_")


def render_spec(name: str, version: str, requires: Sequence[str], summary: str) -> str:
    """A noarch RPM spec installing the package's files under ``/usr/share/<name>/``."""
    deps = "".join(f"BuildRequires:  {r}\nRequires:       {r}\n" for r in requires)
    return f"""\
Name:           {name}
Version:        {version}
Release:        1%{{?dist}}
Summary:        {summary}
License:        ASL 2.0
BuildArch:      noarch
Source0:        %{{name}}-%{{version}}.tar.gz
{deps}
%description
{summary}.
A package of the superbuild sample product.

%prep
%setup -q

%build

%install
mkdir -p %{{buildroot}}%{{_datadir}}/%{{name}}
cp -p README NEWS {module_name(name)}/__init__.py %{{buildroot}}%{{_datadir}}/%{{name}}/

%files
%{{_datadir}}/%{{name}}

%changelog
* Mon Jan 01 2024 {AUTHOR_NAME} <{AUTHOR_EMAIL}> - {version}-1
- Initial sample package
"""


def make_package_repo(
    dest: Path,
    name: str,
    version: str,
    requires: Sequence[str],
    *,
    summary: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Create a git work tree at ``dest`` (branch ``main``, one commit) holding an RPM package.

    Files: ``<name>.spec``, ``README``, ``NEWS``, ``<module_name(name)>/__init__.py``.
    """
    summary = summary or f"Sample package {name}"
    dest.mkdir(parents=True, exist_ok=True)
    run_git(None, "init", "-q", "-b", BRANCH, os.fspath(dest), env=env)
    (dest / f"{name}.spec").write_text(render_spec(name, version, requires, summary))
    (dest / "README").write_text(f"{name} {version}\n\n{summary}.\n")
    (dest / "NEWS").write_text(f"{name} {version}: initial sample package\n")
    module = dest / module_name(name)
    module.mkdir(exist_ok=True)
    (module / "__init__.py").write_text(f'"""{summary}."""\n\n__version__ = "{version}"\n')
    run_git(dest, "add", "-A", env=env)
    run_git(dest, "commit", "-q", "--no-verify", "-m", f"{name} {version}", env=env)
    return dest


# --------------------------------------------------------------------------- superproject


@dataclass(frozen=True)
class SamplePackage:
    """One package of the sample product, as its manifest describes it."""

    name: str
    path: str  # the submodule path in the superproject
    manifest: str  # the manifest file, relative to the superproject root
    requires: tuple[str, ...]
    version: str
    description: str
    remote: Path  # the bare upstream repository


def read_manifests(manifests_dir: Path, remotes: Path) -> dict[str, SamplePackage]:
    """The packages of a ``manifests/`` folder (only the keys the sample needs), by name."""
    if not manifests_dir.is_dir():
        raise FileNotFoundError(
            f"{manifests_dir}: no such folder (the sample manifests ship in the source tree)"
        )
    packages: dict[str, SamplePackage] = {}
    files = sorted(p for p in manifests_dir.rglob("*") if p.is_file())
    for file in files:
        rel = file.relative_to(manifests_dir).as_posix()
        name = manifest_name(rel)
        if name is None:
            continue
        raw = yaml.safe_load(file.read_text())
        if not isinstance(raw, dict) or not isinstance(raw.get("path"), str):
            raise ValueError(f"{file}: not a manifest (a mapping with a 'path')")
        if name in packages:
            raise ValueError(f"{file}: duplicate package name {name!r}")
        packages[name] = SamplePackage(
            name=name,
            path=raw["path"].strip("/"),
            manifest=f"{MANIFESTS_DIR}/{rel}",
            requires=tuple(raw.get("requires", ())),
            version=str(raw.get("version", DEFAULT_VERSION)),
            description=str(raw.get("description", "")),
            remote=remotes / f"{name}.git",
        )
    if not packages:
        raise ValueError(f"{manifests_dir}: no manifests (<name>.yaml files)")
    return packages


@dataclass
class SampleSuperproject:
    """A superproject made by :func:`make_sample_superproject`."""

    root: Path
    path: Path  # the superproject work tree
    remotes: Path
    packages: dict[str, SamplePackage]
    branch: str = BRANCH  # where bump() pushes in the remotes
    env: dict[str, str] = field(default_factory=git_env, repr=False)

    def git(self, *args: str) -> str:
        """``git -C <superproject> args...``: stripped stdout."""
        return run_git(self.path, *args, env=self.env)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def commit(self, message: str, *, allow_empty: bool = False) -> str:
        """Commit everything changed in the work tree (``git add -A``); the new HEAD."""
        self.git("add", "-A")
        extra = ["--allow-empty"] if allow_empty else []
        self.git("commit", "-q", "--no-verify", *extra, "-m", message)
        return self.head()

    def work_tree(self, package: str) -> Path:
        """The submodule checkout of ``package``."""
        return self.path / self.packages[package].path

    def gitlinks(self, rev: str = "HEAD") -> dict[str, str]:
        """Submodule path -> recorded commit, in ``rev``."""
        return sgit.gitlinks(self.path, self.git("rev-parse", "--verify", f"{rev}^{{commit}}"))

    def bump(self, package: str, message: str | None = None) -> str:
        """Commit a change in ``package``, push it, record it in a superproject commit.

        Returns the new commit of the submodule.
        """
        return self.bump_many([package], message)[package]

    def bump_many(self, packages: Iterable[str], message: str | None = None) -> dict[str, str]:
        """:meth:`bump` several packages in one superproject commit: name -> new commit."""
        names = list(dict.fromkeys(packages))
        if not names:
            raise ValueError("bump_many: no package given")
        message = message or f"Bump {', '.join(names)}"
        new: dict[str, str] = {}
        for name in names:
            tree = self.work_tree(name)
            with (tree / "NEWS").open("a") as fh:
                fh.write(f"- {message}\n")
            run_git(tree, "commit", "-q", "--no-verify", "-am", message, env=self.env)
            run_git(tree, "push", "-q", "origin", f"HEAD:refs/heads/{self.branch}", env=self.env)
            new[name] = run_git(tree, "rev-parse", "HEAD", env=self.env)
        self.git("add", "--", *(self.packages[n].path for n in names))
        self.git("commit", "-q", "--no-verify", "-m", message)
        return new


def make_sample_superproject(
    root: Path,
    manifests_dir: Path = SAMPLE_MANIFESTS,
    *,
    bare_remotes: Path | None = None,
    settings: Path | None = SAMPLE_SETTINGS,
    env: Mapping[str, str] | None = None,
) -> SampleSuperproject:
    """Build the sample product's remotes and superproject under ``root`` (see the module doc).

    ``bare_remotes``: where the bare repositories go (default ``root/remotes``); existing
    ``<name>.git`` there are reused.  ``settings``: copied to ``superbuild.yaml`` (None:
    no settings file).  ``env``: for git, default :func:`git_env`.
    """
    environ = dict(env) if env is not None else git_env()
    remotes = bare_remotes if bare_remotes is not None else root / "remotes"
    packages = read_manifests(manifests_dir, remotes)
    seeds = root / "seeds"
    for pkg in packages.values():
        if pkg.remote.exists():
            continue
        seed = make_package_repo(
            seeds / pkg.name,
            pkg.name,
            pkg.version,
            pkg.requires,
            summary=pkg.description or None,
            env=environ,
        )
        run_git(None, "clone", "-q", "--bare", os.fspath(seed), os.fspath(pkg.remote), env=environ)
    shutil.rmtree(seeds, ignore_errors=True)

    path = root / "superproject"
    run_git(None, "init", "-q", "-b", BRANCH, os.fspath(path), env=environ)
    for pkg in sorted(packages.values(), key=lambda p: p.path):
        url = pkg.remote.resolve().as_uri()
        run_git(
            path,
            *("-c", "protocol.file.allow=always", "submodule", "add", "-q", url, pkg.path),
            env=environ,
        )
    shutil.copytree(manifests_dir, path / MANIFESTS_DIR)
    if settings is not None:
        shutil.copyfile(settings, path / SETTINGS_FILE)
    sample = SampleSuperproject(
        root=root,
        path=path,
        remotes=remotes,
        packages=packages,
        branch=BRANCH if bare_remotes is None else f"sample-{uuid.uuid4().hex[:12]}",
        env=environ,
    )
    sample.commit("Sample product: submodules, manifests and settings")
    return sample
