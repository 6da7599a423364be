"""Shared fixtures: real git repositories in tmp dirs, an isolated HOME and git config."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

#: What tests marked ``rpm`` run for real.
RPM_TOOLS = (
    "rpmbuild",
    "rpmspec",
    "rpm",
    "rpm2cpio",
    "cpio",
    "createrepo_c",
    "rpmsign",
    "gpg",
    "dnf",
)
#: What tests marked ``dask`` import.
DASK_MODULES = ("distributed",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``rpm`` (``dask``) need the real tools (Dask): without them they are
    skipped, loudly, on a developer's machine, and fail in CI (``CI=true``), where a
    skipped packaging test would hide a broken setup."""
    import importlib.util
    import shutil

    def bindings() -> list[str]:
        try:
            import rpm  # noqa: F401 - the shim finds the system's python3-rpm
        except ImportError:
            return ["python3-rpm"]
        return []

    missing = {
        "rpm": [t for t in RPM_TOOLS if shutil.which(t) is None] + bindings(),
        "dask": [m for m in DASK_MODULES if importlib.util.find_spec(m) is None],
    }
    hints = {
        "rpm": "apt-get install rpm createrepo-c python3-rpm dnf / dnf install rpm-build createrepo_c python3-rpm",
        "dask": "pip install 'superbuild[dask]'",
    }
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    for marker, absent in missing.items():
        if not absent:
            continue
        text = f"{', '.join(absent)} missing: the {marker} tests are NOT run ({hints[marker]})"
        marked = [item for item in items if item.get_closest_marker(marker) is not None]
        if marked and in_ci:
            raise pytest.UsageError(f"CI=true: {text}")
        for item in marked:
            item.add_marker(pytest.mark.skip(reason=f"SKIPPED LOUDLY: {text}"))


@pytest.fixture(autouse=True)
def _isolated_git(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never read or write the user's git config or $HOME; a fixed identity."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "SUPERBUILD_SKIP_HOOK"):
        monkeypatch.delenv(key, raising=False)
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Test\n\temail = test@example.com\n"
        "[init]\n\tdefaultBranch = main\n"
        '[protocol "file"]\n\tallow = always\n'
        "[commit]\n\tgpgsign = false\n"
    )
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@example.com")
    import superbuild.git as g

    monkeypatch.setattr(g, "_ENV", None)


def fake_sha(seed: str) -> str:
    """A commit id for a gitlink; the object need not exist (submodules not initialized)."""
    return hashlib.sha1(seed.encode()).hexdigest()


class Repo:
    """A git work tree for tests, driven with plumbing and porcelain alike."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        if not (path / ".git").exists():
            self.git("init", "-q")

    def git(self, *args: str, input: str | None = None) -> str:
        result = subprocess.run(
            ["git", "-C", str(self.path), *args],
            input=input,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def write(self, rel: str, text: str) -> None:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        self.git("add", "--", rel)

    def remove(self, rel: str) -> None:
        self.git("rm", "-q", "-r", "--cached", "--", rel)
        target = self.path / rel
        if target.is_file():
            target.unlink()

    def link(self, path: str, sha: str | None = None) -> str:
        """Stage a gitlink at ``path`` (no checkout needed)."""
        sha = sha or fake_sha(f"{path}-{os.urandom(4).hex()}")
        self.git("update-index", "--add", "--cacheinfo", f"160000,{sha},{path}")
        return sha

    def unlink(self, path: str) -> None:
        self.git("update-index", "--force-remove", "--", path)

    def manifest(self, name: str, text: str, folder: str = "") -> None:
        rel = f"manifests/{folder + '/' if folder else ''}{name}.yaml"
        self.write(rel, text)

    def package(self, name: str, path: str | None = None, requires: tuple[str, ...] = ()) -> str:
        """A manifest plus its gitlink; returns the gitlink's commit."""
        path = path or f"repos/{name}"
        req = f"requires: [{', '.join(requires)}]\n" if requires else ""
        self.manifest(name, f"path: {path!r}\n{req}")
        return self.link(path)

    def commit(self, message: str = "commit") -> str:
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "superproject")
