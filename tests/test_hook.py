"""The pre-push hook, through real ``git push`` to local bare remotes.

A sample superproject (with a bare remote of its own and the hook installed) is made once
per module; each test works on a copy.  The package remotes are shared: tests publish
submodule commits to branches of their own.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from superbuild import hooks
from superbuild.testing.sample import SAMPLE_MANIFESTS, make_sample_superproject, run_git

ROOT = Path(__file__).resolve().parent.parent
FAKE = "1234567890abcdef1234567890abcdef12345678"  # a commit no repository has

# The sample's verify commands, replaced by ones the tests control: each fails when the
# recorded commit holds a file named FAIL; focus's also reads stdin (cat).
VERIFY = {
    "python-openstackclient-base": None,
    "python-keystoneclient": "test ! -e FAIL",
    "python-novaclient": "test ! -e FAIL",
    "focus": "cat; test ! -e FAIL",
}


@dataclass
class Super:
    """A copy of the sample superproject with its own bare remote and the hook installed."""

    path: Path
    env: dict[str, str]
    paths: dict[str, str]  # package -> submodule path

    def git(self, *args: str, cwd: Path | None = None) -> str:
        return run_git(cwd or self.path, *args, env=self.env)

    def sub(self, package: str) -> Path:
        return self.path / self.paths[package]

    def sub_commit(self, package: str, name: str = "NEWS", text: str = "change\n") -> str:
        """Commit a change in ``package``'s submodule (not pushed): the new commit."""
        with (self.sub(package) / name).open("a") as fh:
            fh.write(text)
        self.git("add", "-A", cwd=self.sub(package))
        self.git("commit", "-q", "-m", f"{package}: {name}", cwd=self.sub(package))
        return self.git("rev-parse", "HEAD", cwd=self.sub(package))

    def publish(self, package: str) -> None:
        """Push the submodule's HEAD to a new branch of its remote."""
        branch = f"refs/heads/t-{uuid.uuid4().hex[:10]}"
        self.git("push", "-q", "origin", f"HEAD:{branch}", cwd=self.sub(package))

    def checkout(self, package: str, commit: str) -> None:
        self.git("checkout", "-q", commit, cwd=self.sub(package))

    def commit(self, message: str = "change", *, add: bool = True) -> str:
        """Commit (``add``: everything changed in the work tree, gitlinks included)."""
        if add:
            self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "--no-verify", "-m", message)
        return self.git("rev-parse", "HEAD")

    def link(self, path: str, commit: str) -> None:
        self.git("update-index", "--add", "--cacheinfo", f"160000,{commit},{path}")

    def push(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "-C", str(self.path), "push", *args],
            capture_output=True,
            text=True,
            env={**self.env, **env},
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def hook_run(
        self, *args: str, stdin: str = "", env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``superbuild hook run`` by hand, as pre-commit or a test drives it."""
        return subprocess.run(
            [sys.executable, "-m", "superbuild", "hook", "run", *args],
            cwd=self.path,
            input=stdin,
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            check=False,
        )

    def remote_head(self) -> str:
        return self.git("rev-parse", "origin/main")


def said(result: subprocess.CompletedProcess[str], kind: str) -> list[str]:
    """The hook's lines of one kind (refused, warning) from a push's stderr."""
    prefix = f"superbuild: {kind}: "
    return [line[len(prefix) :] for line in result.stderr.splitlines() if line.startswith(prefix)]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], dict[str, str]]:
    root = tmp_path_factory.mktemp("hook")
    manifests = root / "manifests"
    shutil.copytree(SAMPLE_MANIFESTS, manifests)
    for file in manifests.rglob("*.yaml"):
        if file.stem in VERIFY:
            doc = yaml.safe_load(file.read_text())
            doc.pop("verify", None)
            if VERIFY[file.stem]:
                doc["verify"] = VERIFY[file.stem]
            file.write_text(yaml.safe_dump(doc))
    sample = make_sample_superproject(root / "sample", manifests)
    env = dict(sample.env)
    run_git(None, "init", "-q", "--bare", str(root / "sample" / "super.git"), env=env)
    sample.git("remote", "add", "origin", "../super.git")
    sample.git("push", "-q", "origin", "main")
    installed = subprocess.run(
        [sys.executable, "-m", "superbuild", "-C", str(sample.path), "hook", "install"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "installed the pre-push hook" in installed.stderr
    return root / "sample", env, {n: p.path for n, p in sample.packages.items()}


@pytest.fixture
def sp(base: tuple[Path, dict[str, str], dict[str, str]], tmp_path: Path) -> Super:
    root, env, paths = base
    shutil.copytree(root, tmp_path / "sample", symlinks=True)
    return Super(tmp_path / "sample" / "superproject", env, paths)


# --------------------------------------------------------------------------- submodule commits


def test_unpublished_submodule_commit_is_refused_until_pushed(sp: Super) -> None:
    before = sp.remote_head()
    new = sp.sub_commit("glance")
    sp.commit("Bump glance")
    result = sp.push("origin", "main")
    assert result.returncode == 1, result.stderr
    [line] = said(result, "refused")
    assert line.startswith("refs/heads/main: glance (repos/openstack/glance): ")
    assert f"commit {new[:12]}" in line
    assert "is not on any remote-tracking branch or tag" in line
    assert "push it first: git -C repos/openstack/glance push origin main" in line
    assert sp.remote_head() == before  # nothing was pushed

    sp.publish("glance")
    result = sp.push("origin", "main")
    assert result.returncode == 0, result.stderr
    assert "superbuild: pre-push ok: 1 ref, 1 commit, 0 packages verified" in result.stderr


def test_every_pushed_commit_is_checked_not_only_the_tip(sp: Super) -> None:
    unpublished = sp.sub_commit("nova")
    sp.commit("Bump nova to a local commit")
    published = sp.git("rev-parse", "origin/main", cwd=sp.sub("nova"))
    sp.checkout("nova", published)
    sp.commit("Back to the published nova")
    result = sp.push("origin", "main")
    assert result.returncode == 1
    [line] = said(result, "refused")
    assert f"nova (repos/openstack/nova): commit {unpublished[:12]}" in line


def test_unknown_submodule_commit_is_refused(sp: Super) -> None:
    sp.link("repos/openstack/glance", FAKE)
    sp.commit("glance at a commit nobody has", add=False)
    result = sp.push("origin", "main")
    assert result.returncode == 1
    [line] = said(result, "refused")
    assert f"glance (repos/openstack/glance): unknown commit {FAKE[:12]}" in line
    assert "fetch it: git -C repos/openstack/glance fetch" in line


def test_uninitialized_submodule_is_a_warning(sp: Super) -> None:
    sp.git("submodule", "deinit", "-q", "-f", "repos/openstack/nova")
    sp.link("repos/openstack/nova", FAKE)
    sp.commit("nova elsewhere", add=False)
    result = sp.push("origin", "main")
    assert result.returncode == 0, result.stderr
    [warning] = said(result, "warning")
    assert warning.startswith(
        "refs/heads/main: nova (repos/openstack/nova): submodule not initialized"
    )
    assert "git submodule update --init repos/openstack/nova" in warning


# --------------------------------------------------------------------------- manifests


MANIFEST_CASES = {
    "invalid-yaml": (
        "manifests/openstack/glance.yaml",
        "path: [repos/openstack/glance\n",
        "manifests/openstack/glance.yaml:",
    ),
    "missing-requires": (
        "manifests/openstack/glance.yaml",
        "path: repos/openstack/glance\nrequires: [python-keystoneclient, no-such-package]\n",
        "manifests/openstack/glance.yaml: requires unknown package 'no-such-package'",
    ),
    "cycle": (
        "manifests/altai/python-openstackclient-base.yaml",
        "path: repos/altai/python-openstackclient-base\nrequires: [altai-installer]\n",
        "dependency cycle: ",
    ),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_invalid_manifests_are_refused(sp: Super, case: str) -> None:
    file, text, expected = MANIFEST_CASES[case]
    (sp.path / file).write_text(text)
    sp.commit(case)
    result = sp.push("origin", "main")
    assert result.returncode == 1
    lines = said(result, "refused")
    assert any(line.startswith(f"refs/heads/main: {expected}") for line in lines), lines
    if case == "cycle":
        assert "manifests/altai/python-openstackclient-base.yaml" in lines[0]


def test_unmanaged_gitlink_is_refused(sp: Super) -> None:
    published = sp.git("rev-parse", "HEAD", cwd=sp.sub("glance"))
    sp.link("repos/extra", published)
    sp.commit("a submodule without a manifest", add=False)
    result = sp.push("origin", "main")
    assert result.returncode == 1
    [line] = said(result, "refused")
    assert line.startswith("refs/heads/main: repos/extra: gitlink changed but no manifest")
    assert "manifests/<name>.yaml with 'path: repos/extra'" in line


# --------------------------------------------------------------------------- verify


def test_failing_verify_is_refused(sp: Super) -> None:
    new = sp.sub_commit("python-keystoneclient", "FAIL", "broken\n")
    sp.publish("python-keystoneclient")
    sp.commit("Bump keystoneclient")
    result = sp.push("origin", "main")
    assert result.returncode == 1
    [line] = said(result, "refused")
    assert line.startswith(
        "refs/heads/main: python-keystoneclient (repos/openstack/python-keystoneclient): "
        "verify `sh -c 'test ! -e FAIL'` failed (exit 1)"
    )
    assert new[:12] in line


def test_verify_runs_on_the_recorded_commit_not_the_work_tree(sp: Super) -> None:
    sp.sub_commit("python-novaclient")
    sp.publish("python-novaclient")
    sp.commit("Bump novaclient")
    (sp.sub("python-novaclient") / "FAIL").write_text("untracked, not in the commit\n")
    result = sp.push("origin", "main")
    assert result.returncode == 0, result.stderr
    assert "1 package verified" in result.stderr


def test_verify_reading_stdin_does_not_eat_the_other_refs(sp: Super) -> None:
    # Ref a: focus changes, its verify runs `cat`.  Ref b: an unpublished glance commit.
    sp.git("checkout", "-q", "-b", "a")
    sp.sub_commit("focus")
    sp.publish("focus")
    sp.commit("Bump focus")
    sp.git("checkout", "-q", "-b", "b", "main")
    sp.git("submodule", "update", "-q")
    bad = sp.sub_commit("glance")
    sp.commit("Bump glance")
    result = sp.push("origin", "a", "b")
    assert result.returncode == 1, result.stderr
    [line] = said(result, "refused")
    assert line.startswith(f"refs/heads/b: glance (repos/openstack/glance): commit {bad[:12]}")
    assert "2 refs, 2 commits, 1 package verified" in result.stderr


# --------------------------------------------------------------------------- refs


def test_deletion_checks_nothing(sp: Super) -> None:
    sp.git("checkout", "-q", "-b", "gone")
    sp.sub_commit("glance")
    sp.commit("unpublished glance")
    assert sp.push("--no-verify", "origin", "gone").returncode == 0
    result = sp.push("origin", ":gone")
    assert result.returncode == 0, result.stderr
    assert "pre-push ok: 1 ref, 0 commits, 0 packages verified" in result.stderr


def test_new_branch_checks_only_commits_not_on_remote_tracking_branches(sp: Super) -> None:
    glance = sp.git("rev-parse", "HEAD", cwd=sp.sub("glance"))
    sp.sub_commit("glance")
    sp.commit("glance at a local commit")  # published below with --no-verify
    sp.checkout("glance", glance)
    sp.commit("glance back")
    assert sp.push("--no-verify", "origin", "main").returncode == 0
    sp.git("checkout", "-q", "-b", "feature")
    sp.sub_commit("nova")
    sp.publish("nova")
    sp.commit("Bump nova")
    result = sp.push("origin", "feature")
    assert result.returncode == 0, result.stderr
    assert "pre-push ok: 1 ref, 1 commit, 0 packages verified" in result.stderr
    # The same branch to a remote that has none of it: the whole history is checked.
    run_git(None, "init", "-q", "--bare", str(sp.path.parent / "mirror.git"), env=sp.env)
    sp.git("remote", "add", "mirror", "../mirror.git")
    result = sp.push("mirror", "feature")
    assert result.returncode == 1
    [line] = said(result, "refused")
    assert line.startswith("refs/heads/feature: glance (repos/openstack/glance): commit ")


def test_backward_and_sideways_gitlinks_warn(sp: Super) -> None:
    glance0 = sp.git("rev-parse", "HEAD", cwd=sp.sub("glance"))
    nova0 = sp.git("rev-parse", "HEAD", cwd=sp.sub("nova"))
    glance1 = sp.sub_commit("glance")
    sp.publish("glance")
    nova1 = sp.sub_commit("nova")
    sp.publish("nova")
    sp.commit("Bump glance and nova")
    assert sp.push("origin", "main").returncode == 0
    sp.checkout("glance", glance0)
    sp.checkout("nova", nova0)
    nova2 = sp.sub_commit("nova", "OTHER")
    sp.publish("nova")
    sp.commit("glance back, nova on another line")
    result = sp.push("origin", "main")
    assert result.returncode == 0, result.stderr
    warnings = said(result, "warning")
    assert (
        f"refs/heads/main: glance (repos/openstack/glance): gitlink moves backwards "
        f"{glance1[:12]} -> {glance0[:12]}" in warnings[0]
    )
    assert (
        f"nova (repos/openstack/nova): gitlink moves sideways {nova1[:12]} -> {nova2[:12]}"
        in (warnings[1])
    )


def test_remote_check_asks_the_submodule_remote(sp: Super) -> None:
    sp.sub_commit("nova")
    sp.publish("nova")
    # Forget the remote-tracking branch: only the remote itself knows the commit now.
    refs = sp.git("for-each-ref", "--format=%(refname)", "refs/remotes/", cwd=sp.sub("nova"))
    for ref in refs.split():
        if "/t-" in ref:
            sp.git("update-ref", "-d", ref, cwd=sp.sub("nova"))
    sp.commit("Bump nova")
    result = sp.push("origin", "main")
    assert result.returncode == 1
    head = sp.git("rev-parse", "HEAD")
    line = f"refs/heads/main {head} refs/heads/main {sp.remote_head()}\n"
    result = sp.hook_run("--remote-check", "origin", "../super.git", stdin=line)
    assert result.returncode == 0, result.stderr
    unpushed = sp.sub_commit("nova")
    sp.commit("Bump nova again")
    line = f"refs/heads/main {sp.git('rev-parse', 'HEAD')} refs/heads/main {sp.remote_head()}\n"
    result = sp.hook_run("--remote-check", "origin", "../super.git", stdin=line)
    assert result.returncode == 1
    [refused] = said(result, "refused")
    assert f"commit {unpushed[:12]}" in refused
    assert "is not on the submodule's remote (--remote-check)" in refused
    # A remote that cannot be listed: refused (fail-closed).
    sp.git("config", "submodule.repos/openstack/nova.url", str(sp.path / "no-such-remote"))
    result = sp.hook_run("--remote-check", "origin", "../super.git", stdin=line)
    assert result.returncode == 1
    [refused] = said(result, "refused")
    assert "nova (repos/openstack/nova): cannot list the submodule's remote" in refused


def test_remote_check_error_names_the_url_and_gits_reason(sp: Super) -> None:
    missing = sp.path / "no-such-remote"
    sp.git("config", "submodule.repos/openstack/nova.url", str(missing))
    sp.commit("empty")
    line = f"refs/heads/main {sp.git('rev-parse', 'HEAD')} refs/heads/main {sp.remote_head()}\n"
    result = sp.hook_run("--remote-check", "origin", "../super.git", stdin=line)
    assert result.returncode == 1
    [refused] = said(result, "refused")
    assert refused.startswith(
        f"refs/heads/main: nova (repos/openstack/nova): cannot list the submodule's remote "
        f"{missing} (--remote-check): fatal: '{missing}' does not appear to be a git repository"
    )
    assert "the repository exists" not in refused  # git's generic advice, not its reason


def test_pre_commit_environment(sp: Super) -> None:
    """pre-commit keeps git's stdin and arguments and sets PRE_COMMIT_* instead."""
    before = sp.remote_head()
    bad = sp.sub_commit("glance")
    head = sp.commit("Bump glance")
    env = {
        "PRE_COMMIT": "1",
        "PRE_COMMIT_FROM_REF": before,
        "PRE_COMMIT_TO_REF": head,
        "PRE_COMMIT_LOCAL_BRANCH": "refs/heads/main",
        "PRE_COMMIT_REMOTE_BRANCH": "refs/heads/main",
        "PRE_COMMIT_REMOTE_NAME": "origin",
        "PRE_COMMIT_REMOTE_URL": "../super.git",
    }
    result = sp.hook_run(env=env)
    assert result.returncode == 1
    [line] = said(result, "refused")
    assert line.startswith(f"refs/heads/main: glance (repos/openstack/glance): commit {bad[:12]}")


def test_bad_stdin_is_a_usage_error(sp: Super) -> None:
    result = sp.hook_run("origin", "url", stdin="refs/heads/main not-a-sha\n")
    assert result.returncode == 2
    assert "stdin line 1: expected '<local ref> <local sha> <remote ref> <remote sha>'" in (
        result.stderr
    )


# --------------------------------------------------------------------------- bypasses


def test_skip_variable_and_no_verify_bypass_the_hook(sp: Super) -> None:
    sp.sub_commit("glance")
    sp.commit("Bump glance")
    assert sp.push("origin", "main").returncode == 1
    result = sp.push("origin", "main", SUPERBUILD_SKIP_HOOK="1")
    assert result.returncode == 0
    assert "superbuild: SUPERBUILD_SKIP_HOOK=1: pre-push checks skipped" in result.stderr
    sp.sub_commit("glance")
    sp.commit("Bump glance again")
    result = sp.push("--no-verify", "origin", "main")
    assert result.returncode == 0
    assert "superbuild" not in result.stderr


# --------------------------------------------------------------------------- install


def test_installed_hook_runs_the_recorded_interpreter(sp: Super) -> None:
    hook = sp.path / ".git" / "hooks" / "pre-push"
    text = hook.read_text()
    assert f"INSTALL_PYTHON={shlex.quote(sys.executable)}\n" in text
    assert os.access(hook, os.X_OK)
    sp.commit("empty")
    # No virtualenv on PATH: the recorded interpreter is what runs superbuild.
    result = sp.push("origin", "main", PATH="/usr/bin:/bin")
    assert result.returncode == 0, result.stderr
    assert "pre-push ok: 1 ref, 1 commit" in result.stderr
    # The interpreter gone: superbuild from PATH, with a message.
    bindir = Path(sys.executable).parent
    if not (bindir / "superbuild").exists():
        pytest.skip("no superbuild console script next to the interpreter")
    hook.write_text(re.sub(r"(?m)^INSTALL_PYTHON=.*$", "INSTALL_PYTHON=/nonexistent/python", text))
    sp.commit("empty again")
    result = sp.push("origin", "main", PATH=f"{bindir}:/usr/bin:/bin")
    assert result.returncode == 0, result.stderr
    assert "superbuild: /nonexistent/python not found: using superbuild from PATH" in (
        result.stderr
    )


def _superbuild(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "superbuild", "-C", str(repo), "hook", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def _new_repo(tmp_path: Path, *, manifests: bool = True) -> Path:
    """A repository whose HEAD has a ``manifests/`` folder (or not)."""
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ("manifests" if manifests else "src")).mkdir()
    (repo / ("manifests" if manifests else "src") / "a.yaml").write_text("path: repos/a\n")
    who = ["-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), *who, "commit", "-q", "-m", "x"], check=True)
    return repo


def test_install_refuses_a_repository_without_manifests(tmp_path: Path) -> None:
    repo = _new_repo(tmp_path, manifests=False)
    result = _superbuild(repo, "install")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert str(repo) in line
    assert "has no manifests/ folder at HEAD" in line
    assert "--force" in line
    assert "Traceback" not in result.stderr
    assert not (repo / ".git" / "hooks" / "pre-push").exists()
    assert _superbuild(repo, "install", "--force").returncode == 0
    assert hooks.is_ours(repo / ".git" / "hooks" / "pre-push")


def test_install_refuses_a_foreign_hook_and_uninstall_removes_only_ours(tmp_path: Path) -> None:
    repo = _new_repo(tmp_path)
    hook = repo / ".git" / "hooks" / "pre-push"
    hook.write_text("#!/bin/sh\necho mine\n")
    result = _superbuild(repo, "install")
    assert result.returncode == 2
    assert "was not written by superbuild: rerun with --force" in result.stderr
    assert hook.read_text() == "#!/bin/sh\necho mine\n"

    assert _superbuild(repo, "install", "--force").returncode == 0
    assert hooks.is_ours(hook)
    assert (hook.parent / "pre-push.before-superbuild").read_text() == "#!/bin/sh\necho mine\n"
    assert _superbuild(repo, "install").returncode == 0  # ours: updated in place
    result = _superbuild(repo, "uninstall")
    assert result.returncode == 0
    assert hook.read_text() == "#!/bin/sh\necho mine\n"  # the previous hook is back
    result = _superbuild(repo, "uninstall")
    assert result.returncode == 0
    assert "was not written by superbuild: left alone" in result.stderr
    assert hook.exists()


def test_install_honours_core_hooks_path(tmp_path: Path) -> None:
    repo = _new_repo(tmp_path)
    subprocess.run(["git", "-C", str(repo), "config", "core.hooksPath", "githooks"], check=True)
    assert _superbuild(repo, "install").returncode == 0
    assert hooks.is_ours(repo / "githooks" / "pre-push")
    assert not (repo / ".git" / "hooks" / "pre-push").exists()
    assert _superbuild(repo, "uninstall").returncode == 0
    assert not (repo / "githooks" / "pre-push").exists()


def test_shipped_hook_and_pre_commit_entry() -> None:
    shipped = ROOT / "hooks" / "pre-push"
    assert shipped.read_text() == hooks.hook_script(None)
    assert os.access(shipped, os.X_OK)
    [entry] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert entry["id"] == "superbuild-pre-push"
    assert entry["entry"] == "superbuild hook run"
    assert entry["stages"] == ["pre-push"]
    assert entry["language"] == "python"
    assert entry["pass_filenames"] is False
    assert entry["always_run"] is True


def test_parse_refs() -> None:
    zero = "0" * 40
    refs = hooks.parse_refs(
        f"refs/heads/a {FAKE} refs/heads/a {zero}\n\n(delete) {zero} refs/heads/b {FAKE}\n".encode()
    )
    assert [r.new for r in refs] == [True, False]
    assert [r.deletion for r in refs] == [False, True]


@pytest.mark.parametrize("where", ["gitmodules", "config", "diff.ignoreSubmodules"])
def test_submodule_ignore_settings_do_not_hide_an_unpublished_commit(sp: Super, where: str) -> None:
    names = [
        key.split(".")[1]
        for key in sp.git("config", "-f", ".gitmodules", "--get-regexp", r"\.path$").splitlines()
    ]
    if where == "gitmodules":
        for name in names:
            sp.git("config", "-f", ".gitmodules", f"submodule.{name}.ignore", "all")
        sp.commit("ignore every submodule")
        assert sp.push("origin", "main").returncode == 0
    elif where == "config":
        for name in names:
            sp.git("config", f"submodule.{name}.ignore", "all")
    else:
        sp.git("config", "diff.ignoreSubmodules", "all")
    new = sp.sub_commit("glance")
    sp.link(sp.paths["glance"], new)
    sp.commit("Bump glance", add=False)
    assert sp.git("rev-parse", f"HEAD:{sp.paths['glance']}") == new
    result = sp.push("origin", "main")
    assert result.returncode == 1, result.stderr
    [line] = said(result, "refused")
    assert f"glance ({sp.paths['glance']}): commit {new[:12]}" in line
