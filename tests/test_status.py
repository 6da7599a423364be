"""``superbuild status``: checkout states, build verdicts, refs read from files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from superbuild import git as sbgit
from superbuild import status as sts
from superbuild.testing.sample import SampleSuperproject, make_sample_superproject, run_git
from tests.helpers import cli, run_superbuild

# base <- client <- service; tool alone.  The `command` pipeline keeps builds fast; a
# package fails when its NEWS mentions FAIL (bump it with such a message).
PRODUCT = {"base": [], "client": ["base"], "service": ["client"], "tool": []}
STEPS = ["! grep -q FAIL NEWS", 'cp NEWS "$SUPERBUILD_OUTPUT/"']


def write_manifests(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, requires in PRODUCT.items():
        lines = [f"path: repos/{name}", "pipeline: command", "commands:"]
        lines += [f"  - {json.dumps(step)}" for step in STEPS]
        if requires:
            lines.append(f"requires: [{', '.join(requires)}]")
        (folder / f"{name}.yaml").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="session")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Manifests and bare remotes, made once (each superproject pushes to its own branch)."""
    root = tmp_path_factory.mktemp("status-remotes")
    return write_manifests(root / "manifests"), root / "remotes"


@pytest.fixture
def sample(tmp_path: Path, shared: tuple[Path, Path]) -> SampleSuperproject:
    manifests, remotes = shared
    return make_sample_superproject(tmp_path / "sp", manifests, bare_remotes=remotes, settings=None)


def status(sample: SampleSuperproject) -> dict[str, dict[str, Any]]:
    """``collect`` by package (or path for unmanaged submodules), as JSON objects."""
    return {r["package"] or r["path"]: r for r in sts.to_json(sts.collect(sample.path))}


def build(capsys: pytest.CaptureFixture[str], sample: SampleSuperproject, *args: str) -> int:
    code, _, _ = cli(capsys, "-C", str(sample.path), "build", "-j", "2", *args)
    return code


def sub_git(sample: SampleSuperproject, name: str, *args: str) -> str:
    return run_git(sample.work_tree(name), *args, env=sample.env)


def verdicts(sample: SampleSuperproject) -> dict[str, tuple[bool | None, str]]:
    return {n: (r["needs_rebuild"], r["reason"]) for n, r in status(sample).items()}


KEYS = {
    "package",
    "path",
    "recorded_commit",
    "checkout_commit",
    "initialized",
    "dirty",
    "checkout_differs",
    "unpushed",
    "last_build",
    "needs_rebuild",
    "reason",
}


# --------------------------------------------------------------------------- checkouts


def test_fresh_clone_without_submodules(sample: SampleSuperproject, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    run_git(None, "clone", "-q", str(sample.path), str(clone), env=sample.env)
    result = run_superbuild("status", "--json", cwd=clone, env=sample.env)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["package"] for r in rows] == ["base", "client", "service", "tool"]
    recorded = sample.gitlinks()
    for row in rows:
        assert set(row) >= KEYS
        assert row["recorded_commit"] == recorded[row["path"]]
        assert row["initialized"] is False and row["checkout_commit"] is None
        assert row["dirty"] is None and row["checkout_differs"] is None
        assert row["unpushed"] is None and row["last_build"] is None
        assert (row["needs_rebuild"], row["reason"]) == (True, "never built")
    assert not (clone / ".superbuild").exists()  # status writes nothing
    plain = run_superbuild("status", cwd=clone, env=sample.env)
    assert plain.returncode == 0 and "not initialized" in plain.stdout


def test_checkout_states(sample: SampleSuperproject) -> None:
    recorded = sample.gitlinks()
    rows = status(sample)
    for name in PRODUCT:
        row = rows[name]
        assert row["initialized"] is True
        assert row["checkout_commit"] == row["recorded_commit"] == recorded[f"repos/{name}"]
        assert (row["dirty"], row["checkout_differs"], row["unpushed"]) == (False, False, 0)

    (sample.work_tree("base") / "README").write_text("edited\n")  # tracked change
    (sample.work_tree("tool") / "scratch.txt").write_text("new\n")  # untracked file
    (sample.work_tree("client") / "NEWS").write_text("ahead\n")  # a local commit
    sub_git(sample, "client", "commit", "-qam", "local work")
    (sample.work_tree("service") / "NEWS").write_text("pushed\n")  # a pushed, unrecorded one
    sub_git(sample, "service", "commit", "-qam", "pushed work")
    sub_git(sample, "service", "push", "-q", "origin", f"HEAD:refs/heads/{sample.branch}")

    rows = status(sample)
    assert (rows["base"]["dirty"], rows["base"]["checkout_differs"]) == (True, False)
    assert (rows["tool"]["dirty"], rows["tool"]["checkout_differs"]) == (True, False)
    client = rows["client"]
    assert (client["dirty"], client["checkout_differs"], client["unpushed"]) == (False, True, 1)
    assert client["checkout_commit"] == sub_git(sample, "client", "rev-parse", "HEAD")
    service = rows["service"]
    assert (service["checkout_differs"], service["unpushed"]) == (True, 0)
    # Building uses recorded commits: nothing about the checkouts makes a rebuild reason.
    assert {r["reason"] for r in rows.values()} == {"never built"}


def test_detached_head_packed_refs_and_local_branches(sample: SampleSuperproject) -> None:
    recorded = sample.gitlinks()["repos/tool"]
    sub_git(sample, "tool", "checkout", "-q", "-b", "topic")
    for i in range(2):
        (sample.work_tree("tool") / "NEWS").write_text(f"topic {i}\n")
        sub_git(sample, "tool", "commit", "-qam", f"topic {i}")
    sub_git(sample, "tool", "checkout", "-q", "--detach", recorded)
    sub_git(sample, "tool", "pack-refs", "--all")
    row = status(sample)["tool"]
    # HEAD is the recorded commit, but the local branch holds 2 unpushed commits.
    assert (row["checkout_commit"], row["checkout_differs"], row["unpushed"]) == (
        recorded,
        False,
        2,
    )


def test_unmanaged_submodule_row(sample: SampleSuperproject) -> None:
    url = sample.packages["tool"].remote.resolve().as_uri()
    sample.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", url, "extra/copy")
    sample.commit("an unmanaged submodule")
    row = status(sample)["extra/copy"]
    assert row["package"] is None and row["initialized"] is True
    assert (row["needs_rebuild"], row["reason"], row["last_build"]) == (None, "", None)


# --------------------------------------------------------------------------- verdicts


def test_build_verdicts(sample: SampleSuperproject, capsys: pytest.CaptureFixture[str]) -> None:
    assert set(verdicts(sample).values()) == {(True, "never built")}

    assert build(capsys, sample, "--all") == 0
    rows = status(sample)
    assert {n: r["needs_rebuild"] for n, r in rows.items()} == dict.fromkeys(PRODUCT, False)
    last = rows["base"]["last_build"]
    assert last["commit"] == rows["base"]["recorded_commit"] and last["status"] == "succeeded"
    assert last["finished_at"].endswith("+00:00")  # ISO-8601, UTC

    sample.bump("tool")
    assert verdicts(sample)["tool"] == (
        True,
        "recorded commit differs from last successful build",
    )

    sample.bump("base")
    assert build(capsys, sample, "--packages-select", "base", "tool") == 0
    found = verdicts(sample)
    assert found["base"] == found["tool"] == (False, "")
    assert found["client"] == (True, "dependency base rebuilt since")
    assert found["service"] == (True, "dependency client changed since last successful build")

    sample.bump("client", "FAIL: broken")
    assert build(capsys, sample) == 1  # client fails, service is skipped
    found = verdicts(sample)
    assert found["client"] == (True, "last build failed")
    assert found["service"] == (True, "last build skipped (dependency client failed)")
    assert status(sample)["client"]["last_build"]["status"] == "failed"

    manifest = sample.path / "manifests" / "tool.yaml"
    manifest.write_text(manifest.read_text() + "env:\n  TOOL_FLAVOUR: spicy\n")
    sample.commit("tool: new flavour")
    assert verdicts(sample)["tool"] == (True, "manifest changed since last successful build")


def test_status_text_output(sample: SampleSuperproject, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "-C", str(sample.path), "status")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["package", "path", "recorded"]
    assert lines[1].startswith("base ") and "yes: never built" in lines[1]
    assert lines[-1].startswith("4 submodule(s), 4 initialized")
    code, out, _ = cli(capsys, "-C", str(sample.path), "status", "--json")
    assert code == 0 and {r["package"] for r in json.loads(out)} == set(PRODUCT)


# --------------------------------------------------------------------------- git status


def test_parse_porcelain_v2() -> None:
    oid = "a" * 40
    data = b"\0".join(
        [
            b"# branch.oid " + oid.encode(),
            f"1 .M S.M. 160000 160000 160000 {oid} {oid} repos/dirty".encode(),
            f"1 .M S..U 160000 160000 160000 {oid} {oid} repos/untracked".encode(),
            f"1 .M SC.. 160000 160000 160000 {oid} {oid} repos/moved on".encode(),
            f"1 .M N... 100644 100644 100644 {oid} {oid} a file".encode(),
            f"2 R. N... 100644 100644 100644 {oid} {oid} R100 new name".encode(),
            b"old name",
            f"u UU N... 100644 100644 100644 100644 {oid} {oid} {oid} conflict".encode(),
            "? répertoire/".encode(),
            b"",
        ]
    )
    assert sts.parse_porcelain_v2(data) == {
        "repos/dirty": sts.SubmoduleFlags(False, True, False),
        "repos/untracked": sts.SubmoduleFlags(False, False, True),
        "repos/moved on": sts.SubmoduleFlags(True, False, False),
    }


# --------------------------------------------------------------------------- refs from files


def git_answer(work_tree: Path) -> sts.Checkout:
    return sts._checkout_from_git(work_tree)


@pytest.mark.parametrize("packed", [False, True], ids=["loose", "packed"])
def test_refs_read_from_files_agree_with_git(
    sample: SampleSuperproject, packed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = sample.work_tree("base")
    recorded = sample.gitlinks()["repos/base"]

    def pack() -> None:
        if packed:
            sub_git(sample, "base", "pack-refs", "--all")

    # 1. detached at the remote-tracking tip: answered from files, no process at all
    sub_git(sample, "base", "checkout", "-q", "--detach", recorded)
    pack()
    assert git_answer(tree) == sts.Checkout(recorded, 0)
    git_calls: list[tuple[str, ...]] = []
    real_git = sbgit.git  # what status calls, as g.git

    def counting_git(repo: Any, *args: str, **kw: Any) -> Any:
        git_calls.append(args)
        return real_git(repo, *args, **kw)

    monkeypatch.setattr(sbgit, "git", counting_git)
    assert sts.read_checkout(tree) == sts.Checkout(recorded, 0)
    assert git_calls == []
    # 2. on a branch (symbolic HEAD) with a local commit: rev-list counts it
    sub_git(sample, "base", "checkout", "-q", "main")
    (tree / "NEWS").write_text("local\n")
    sub_git(sample, "base", "commit", "-qam", "local")
    pack()
    head = sub_git(sample, "base", "rev-parse", "HEAD")
    git_calls.clear()
    assert sts.read_checkout(tree) == sts.Checkout(head, 1)
    assert [c[0] for c in git_calls] == ["rev-list"]
    assert git_answer(tree) == sts.Checkout(head, 1)
    # 3. a loose ref (reset after packing) wins over its packed copy
    sub_git(sample, "base", "reset", "-q", "--hard", recorded)
    assert sts.read_checkout(tree) == git_answer(tree) == sts.Checkout(recorded, 0)
    # 4. an unborn branch
    sub_git(sample, "base", "checkout", "-q", "--orphan", "empty")
    assert sts.read_checkout(tree) == git_answer(tree) == sts.Checkout(None, 0)


def test_unknown_ref_storage_falls_back_to_git(sample: SampleSuperproject) -> None:
    tree = sample.work_tree("client")
    git_dir = sts.submodule_git_dir(tree)
    assert git_dir is not None and git_dir.is_dir()
    (git_dir / "reftable").mkdir()  # what a reftable repository has: ask git instead
    assert sts.read_checkout(tree) == sts.Checkout(sample.gitlinks()["repos/client"], 0)


def test_unpushed_counts_are_cached_by_tips(
    sample: SampleSuperproject, monkeypatch: pytest.MonkeyPatch
) -> None:
    (sample.work_tree("tool") / "NEWS").write_text("one\n")
    sub_git(sample, "tool", "commit", "-qam", "local one")
    assert status(sample)["tool"]["unpushed"] == 1
    calls: list[tuple[str, ...]] = []
    real_git = sbgit.git

    def counting_git(repo: Any, *args: str, **kw: Any) -> Any:
        calls.append(args)
        return real_git(repo, *args, **kw)

    monkeypatch.setattr(sbgit, "git", counting_git)
    assert status(sample)["tool"]["unpushed"] == 1
    assert [c for c in calls if c[0] == "rev-list"] == []  # same tips: from the cache
    (sample.work_tree("tool") / "NEWS").write_text("two\n")
    sub_git(sample, "tool", "commit", "-qam", "local two")
    assert status(sample)["tool"]["unpushed"] == 2  # new tips: counted again
    assert len([c for c in calls if c[0] == "rev-list"]) == 1
    cache = sts.UnpushedCache(sample.path / ".git" / "superbuild" / sts.UNPUSHED_CACHE)
    assert list(cache.load().values()) == [2]
    cache.path.write_text("{not json")
    assert status(sample)["tool"]["unpushed"] == 2  # a corrupt cache is ignored
    data = json.loads(cache.path.read_text())
    data["entries"] = {k: 7 for k in data["entries"]}  # a flipped count, checksum kept
    cache.path.write_text(json.dumps(data))
    assert cache.load() == {}
    assert status(sample)["tool"]["unpushed"] == 2  # recomputed, never trusted
    old_format = {k: 7 for k in data["entries"]}  # an unchecked file (no checksum)
    cache.path.write_text(json.dumps(old_format))
    assert cache.load() == {}
    assert status(sample)["tool"]["unpushed"] == 2


def test_a_commit_only_on_a_remote_tag_is_published_for_status_and_the_hook(
    sample: SampleSuperproject,
) -> None:
    """One rule (submodules.PUBLISHED_REFS): remote branches and tags count, for both."""
    from superbuild.submodules import published

    (sample.work_tree("client") / "NEWS").write_text("tagged\n")
    sub_git(sample, "client", "commit", "-qam", "released by tag only")
    commit = sub_git(sample, "client", "rev-parse", "HEAD")
    sub_git(sample, "client", "tag", "v9.9")
    sub_git(sample, "client", "push", "-q", "origin", "refs/tags/v9.9")
    branch = sub_git(sample, "client", "symbolic-ref", "--short", "HEAD")
    sub_git(sample, "client", "checkout", "-q", "--detach")
    sub_git(sample, "client", "branch", "-q", "-f", branch, "HEAD~1")  # only the tag has it
    assert status(sample)["client"]["unpushed"] == 0
    assert published(sample.work_tree("client"), [commit]).statuses == {commit: "ok"}
