"""``superbuild changed``: every kind of change, ranges, merges, root commits, odd paths."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Repo, fake_sha
from tests.helpers import cli, cli_json


def changed(capsys: pytest.CaptureFixture[str], repo: Repo, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = cli_json(
        capsys, "changed", "-C", str(repo.path), "--format", "json", *args
    )
    return data


def product(repo: Repo) -> dict[str, str]:
    """A small product: base <- client <- service <- installer, and a lone tool."""
    shas = {
        "base": repo.package("base"),
        "client": repo.package("client", requires=("base",)),
        "service": repo.package("service", requires=("client",)),
        "installer": repo.package("installer", requires=("service",)),
        "tool": repo.package("tool"),
    }
    repo.commit("initial")
    return shas


def test_root_commit_everything_added(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    shas = product(repo)
    data = changed(capsys, repo)
    assert data["base"] is None
    assert data["head"] == repo.head()
    assert [(c["path"], c["status"], c["package"]) for c in data["changes"]] == [
        ("repos/base", "added", "base"),
        ("repos/client", "added", "client"),
        ("repos/installer", "added", "installer"),
        ("repos/service", "added", "service"),
        ("repos/tool", "added", "tool"),
    ]
    assert data["changes"][0]["new_commit"] == shas["base"]
    assert data["changes"][0]["old_commit"] is None
    assert data["waves"] == [["base", "tool"], ["client"], ["service"], ["installer"]]
    assert data["affected"] == ["base", "tool", "client", "service", "installer"]
    assert sorted(data["manifest_changes"]) == ["base", "client", "installer", "service", "tool"]


def test_modified_gitlink_affects_dependents_only(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    shas = product(repo)
    parent = repo.head()
    new = repo.link("repos/client")
    repo.commit("bump client")
    data = changed(capsys, repo)
    assert data["base"] == parent
    assert data["changes"] == [
        {
            "path": "repos/client",
            "old_path": None,
            "package": "client",
            "status": "modified",
            "old_commit": shas["client"],
            "new_commit": new,
            "direction": "unknown",  # the submodule is not initialized here
        }
    ]
    assert data["manifest_changes"] == []
    assert data["affected"] == ["client", "service", "installer"]
    assert data["waves"] == [["client"], ["service"], ["installer"]]
    assert data["unmanaged"] == []


def test_added_and_deleted(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    product(repo)
    repo.unlink("repos/tool")
    repo.remove("manifests/tool.yaml")
    new = repo.package("extra", requires=("base",))
    repo.commit("swap tool for extra")
    data = changed(capsys, repo)
    statuses = {c["path"]: (c["status"], c["package"]) for c in data["changes"]}
    assert statuses == {"repos/extra": ("added", "extra"), "repos/tool": ("deleted", "tool")}
    deleted = next(c for c in data["changes"] if c["status"] == "deleted")
    assert deleted["new_commit"] is None and deleted["old_commit"]
    added = next(c for c in data["changes"] if c["status"] == "added")
    assert added["new_commit"] == new
    assert data["affected"] == ["extra"]  # a deleted package is not built
    assert data["manifest_changes"] == ["extra"]


def test_unmanaged_gitlink(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    product(repo)
    repo.link("vendor/orphan")
    repo.commit("add an unmanaged submodule")
    data = changed(capsys, repo)
    assert data["changes"][0]["package"] is None
    assert data["unmanaged"] == ["vendor/orphan"]
    assert data["affected"] == []


def test_moved_submodule_keeps_its_name(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.write(".gitmodules", '[submodule "tool"]\n\tpath = repos/tool\n\turl = ../tool.git\n')
    sha = repo.package("tool")
    repo.package("other")
    repo.commit("initial")
    repo.unlink("repos/tool")
    repo.link("repos/tools/tool", sha)
    repo.write(
        ".gitmodules", '[submodule "tool"]\n\tpath = repos/tools/tool\n\turl = ../tool.git\n'
    )
    repo.manifest("tool", "path: repos/tools/tool\n")
    repo.commit("git mv repos/tool repos/tools/tool")
    data = changed(capsys, repo)
    assert data["changes"] == [
        {
            "path": "repos/tools/tool",
            "old_path": "repos/tool",
            "package": "tool",
            "status": "moved",
            "old_commit": sha,
            "new_commit": sha,
            "direction": None,  # same commit: only the path moved
        }
    ]
    assert data["affected"] == ["tool"]


def test_delete_and_add_without_shared_name_is_not_a_move(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.write(".gitmodules", '[submodule "a"]\n\tpath = repos/a\n\turl = ../a.git\n')
    sha = repo.package("a")
    repo.commit("initial")
    repo.unlink("repos/a")
    repo.link("repos/b", sha)
    repo.write(".gitmodules", '[submodule "b"]\n\tpath = repos/b\n\turl = ../b.git\n')
    repo.manifest("a", "path: repos/b\n")
    repo.commit("replace")
    data = changed(capsys, repo)
    assert sorted(c["status"] for c in data["changes"]) == ["added", "deleted"]


def test_typechange_gitlink_to_file_and_back(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    product(repo)
    repo.unlink("repos/tool")
    repo.remove("manifests/tool.yaml")
    repo.write("repos/tool", "now a plain file\n")
    repo.commit("tool becomes a file")
    data = changed(capsys, repo)
    assert [(c["path"], c["status"], c["package"]) for c in data["changes"]] == [
        ("repos/tool", "typechange", "tool")
    ]
    assert data["changes"][0]["new_commit"] is None
    assert data["affected"] == []
    # and back: the file becomes a gitlink again
    repo.remove("repos/tool")
    sha = repo.package("tool")
    repo.commit("tool is a submodule again")
    data = changed(capsys, repo)
    assert [(c["status"], c["old_commit"], c["new_commit"]) for c in data["changes"]] == [
        ("typechange", None, sha)
    ]
    assert data["affected"] == ["tool"]


def test_gitlink_replaced_by_directory_is_a_typechange(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    product(repo)
    repo.unlink("repos/tool")
    repo.remove("manifests/tool.yaml")
    repo.write("repos/tool/main.c", "int main(void) { return 0; }\n")
    repo.commit("vendor the tool's sources")
    data = changed(capsys, repo)
    assert [(c["path"], c["status"]) for c in data["changes"]] == [("repos/tool", "typechange")]


def test_base_uses_merge_base_and_net_change(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    shas = product(repo)
    repo.git("checkout", "-q", "-b", "feature")
    repo.link("repos/tool")
    repo.commit("bump tool")
    repo.link("repos/tool", shas["tool"])
    repo.commit("revert tool bump")
    bumped = repo.link("repos/base")
    repo.commit("bump base")
    # main moves on meanwhile: its own changes must not show up (three-dot semantics)
    repo.git("checkout", "-q", "main")
    repo.link("repos/installer")
    repo.commit("main bumps installer")
    data = changed(capsys, repo, "--base", "main", "--head", "feature")
    assert data["base"] == repo.git("merge-base", "main", "feature").strip()
    assert [(c["path"], c["new_commit"]) for c in data["changes"]] == [("repos/base", bumped)]
    assert data["affected"] == ["base", "client", "service", "installer"]


def test_merge_commit_compares_with_first_parent(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    product(repo)
    repo.git("checkout", "-q", "-b", "topic")
    topic_sha = repo.link("repos/service")
    repo.commit("topic bumps service")
    repo.git("checkout", "-q", "main")
    repo.link("repos/tool")
    repo.commit("main bumps tool")
    main_tip = repo.head()
    repo.git("merge", "-q", "--no-ff", "--no-edit", "topic")
    data = changed(capsys, repo)
    assert data["base"] == main_tip
    assert [(c["path"], c["new_commit"]) for c in data["changes"]] == [("repos/service", topic_sha)]
    assert data["affected"] == ["service", "installer"]


@pytest.mark.parametrize(
    "path",
    [
        "repos/with space",
        'repos/"quoted"',
        "repos/tab\there",
        "repos/naïve-ünïcode",
        "repos/new\nline",
        "repos/back\\slash",
    ],
)
def test_odd_paths_come_through_exactly(
    repo: Repo, capsys: pytest.CaptureFixture[str], path: str
) -> None:
    repo.write("manifests/odd.yaml", yaml.safe_dump({"path": path}))
    repo.link(path)
    repo.commit("initial")
    repo.link(path)
    repo.commit("bump")
    data = changed(capsys, repo)
    assert [c["path"] for c in data["changes"]] == [path]
    assert data["changes"][0]["package"] == "odd"
    assert data["affected"] == ["odd"]


def test_manifest_edit_marks_package_changed(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    product(repo)
    repo.manifest("client", "path: repos/client\nrequires: [base, tool]\n")
    repo.commit("client needs tool")
    data = changed(capsys, repo)
    assert data["changes"] == []
    assert data["manifest_changes"] == ["client"]
    assert data["affected"] == ["client", "service", "installer"]
    code, out, _ = cli(capsys, "changed", "-C", str(repo.path), "--why", "installer")
    assert (code, out.strip()) == (0, "installer <- service <- client (manifest changed)")


def test_manifest_edit_outside_the_build_key_changes_nothing(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    """A description, a comment, key order or quoting: no change, as status says."""
    product(repo)
    repo.manifest(
        "client",
        "# the client library\nrequires: ['base']\ndescription: now documented\n"
        'path: "repos/client"\n',
    )
    repo.commit("document client")
    data = changed(capsys, repo)
    assert data["changes"] == []
    assert data["manifest_changes"] == []
    assert data["affected"] == []
    code, out, _ = cli(capsys, "changed", "-C", str(repo.path), "--why", "client")
    assert code == 0 and "client is not affected" in out
    code, out, _ = cli(capsys, "changed", "-C", str(repo.path))
    assert code == 0 and "client" not in out


def test_each_commit_uses_its_own_manifests(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    """A package renamed between base and head: the deleted gitlink is named from base."""
    product(repo)
    repo.unlink("repos/tool")
    repo.remove("manifests/tool.yaml")
    repo.commit("drop tool")
    data = changed(capsys, repo)
    assert [(c["status"], c["package"]) for c in data["changes"]] == [("deleted", "tool")]
    assert data["unmanaged"] == []


def test_settings_change_marks_packages_whose_entry_changed(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    product(repo)
    repo.manifest("tool", "path: repos/tool\npipeline: command\ncommands: [make]\n")
    repo.commit("tool is built by a command")
    repo.write("superbuild.yaml", "defaults:\n  pipeline: command\n  commands: [make]\n")
    repo.commit("default pipeline")
    data = changed(capsys, repo)
    assert data["manifest_changes"] == ["base", "client", "installer", "service"]


def test_uninitialized_submodules_are_not_needed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CI clone has only the superproject: the gitlinks' commits do not exist locally."""
    origin = Repo(tmp_path / "origin")
    product(origin)
    origin.link("repos/tool", fake_sha("v2"))
    origin.commit("bump")
    clone = tmp_path / "clone"
    origin.git("clone", "-q", str(origin.path), str(clone))
    data = changed(capsys, Repo(clone))
    assert [c["package"] for c in data["changes"]] == ["tool"]


def test_bare_clone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    origin = Repo(tmp_path / "origin")
    product(origin)
    origin.link("repos/base")
    origin.commit("bump")
    bare = tmp_path / "bare.git"
    origin.git("clone", "-q", "--bare", str(origin.path), str(bare))
    data = cli_json(capsys, "changed", "-C", str(bare), "--format", "json")
    assert data["affected"] == ["base", "client", "service", "installer"]


def test_why_explains_the_chain(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    shas = product(repo)
    new = repo.link("repos/base")
    repo.commit("bump base")
    code, out, _ = cli(capsys, "changed", "-C", str(repo.path), "--why", "installer")
    assert code == 0
    assert out.strip() == (
        f"installer <- service <- client <- base (gitlink {shas['base'][:7]} -> {new[:7]})"
    )
    code, out, _ = cli(capsys, "changed", "-C", str(repo.path), "--why", "tool")
    assert code == 0 and "tool is not affected" in out
    code, _, err = cli(capsys, "changed", "-C", str(repo.path), "--why", "instaler")
    assert code == 2
    assert "unknown package 'instaler' (did you mean 'installer'?)" in err


def test_text_output_lists_changes_and_order(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    product(repo)
    repo.link("repos/client")
    repo.commit("bump client")
    code, out, _ = cli(capsys, "changed", "-C", str(repo.path))
    assert code == 0
    assert "modified" in out and "repos/client" in out
    assert "wave 1: client" in out and "wave 3: installer" in out


def test_cache_never_gives_a_wrong_answer(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    product(repo)
    repo.link("repos/base")
    repo.commit("bump")
    first = changed(capsys, repo)
    cache = repo.path / ".git" / "superbuild"
    files = list(cache.glob("manifests-*.marshal"))
    assert files, "the manifests cache was written"
    for f in files:
        f.write_text("{not a cache")  # a corrupt cache is ignored
    assert changed(capsys, repo) == first
    for f in files:  # rewritten; now damage one byte in the middle of the payload
        data = bytearray(f.read_bytes())
        data[len(data) // 2] ^= 0xFF
        f.write_bytes(bytes(data))
    assert changed(capsys, repo) == first
    # a new manifests tree is a new cache entry: the edit is seen
    repo.manifest("tool", "path: repos/tool\nrequires: [base]\n")
    repo.commit("tool needs base")
    repo.link("repos/base")
    repo.commit("bump again")
    assert changed(capsys, repo)["affected"] == ["base", "client", "tool", "service", "installer"]
    # another key's file copied over this key's (same CRC, wrong key) is not trusted
    newest = max(cache.glob("manifests-*.marshal"), key=lambda f: f.stat().st_mtime_ns)
    other = next(f for f in files if f != newest)
    newest.write_bytes(other.read_bytes())
    assert changed(capsys, repo)["affected"] == ["base", "client", "tool", "service", "installer"]


def test_direction_of_gitlink_moves(
    tmp_path: Path, repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    """forward / backward / sideways are judged in the initialized submodule's history."""
    sub = Repo(tmp_path / "sub")
    a = sub.commit("A")
    b = sub.commit("B")
    sub.git("checkout", "-q", "-b", "other", a)
    c = sub.commit("C")  # neither descends from B nor B from C
    repo.git(
        "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub.path), "repos/sub"
    )
    repo.manifest("sub", "path: repos/sub\n")
    repo.link("repos/sub", a)
    repo.commit("add sub at A")

    def step(sha: str) -> str:
        repo.link("repos/sub", sha)
        repo.commit(f"sub at {sha[:7]}")
        [change] = changed(capsys, repo)["changes"]
        direction: str = change["direction"]
        return direction

    assert step(b) == "forward"
    assert step(c) == "sideways"
    assert step(a) == "backward"
    assert step(fake_sha("not in the submodule")) == "unknown"


def test_cache_entry_keys_are_the_package_fields() -> None:
    from superbuild.manifest import ENTRY_KEYS
    from superbuild.package import Package

    assert {f.name for f in dataclasses.fields(Package)} | {"digest"} == ENTRY_KEYS


def test_entries_are_typed_records_fresh_and_cached(repo: Repo) -> None:
    from superbuild.changes import cache_dir
    from superbuild.manifest import Entry, load_product
    from superbuild.package import Package

    assert Entry._fields == (*(f.name for f in dataclasses.fields(Package)), "digest")
    repo.package("base")
    repo.manifest("client", "path: repos/client\nrequires: [base]\nenv: {A: '1'}\ntimeout: 5\n")
    repo.link("repos/client")
    head = repo.commit()
    links = {"repos/base": "x", "repos/client": "y"}
    fresh = load_product(repo.path, head, cache_dir=cache_dir(repo.path), links=links)
    cached = load_product(repo.path, head, cache_dir=cache_dir(repo.path), links=links)
    assert list((repo.path / ".git" / "superbuild").glob("manifests-*"))
    for product in (fresh, cached):
        entry = product.entries["client"]
        assert isinstance(entry, Entry)
        assert (entry.path, entry.manifest, entry.requires) == (
            "repos/client",
            "manifests/client.yaml",
            ("base",),
        )
        assert (entry.env, entry.timeouts, entry.pipeline) == ((("A", "1"),), (("*", 5.0),), "rpm")
        assert entry.digest == product.packages["client"].digest == product.digest("client")
        assert product.packages["client"] == fresh.packages["client"]
    assert cached.entries == fresh.entries


def test_changed_does_not_import_dataclasses_or_networkx(repo: Repo) -> None:
    """The hot path of every push stays light (speed is measured in bench/)."""
    import subprocess
    import sys

    product(repo)
    repo.commit("bump")
    code = (
        "import sys; from superbuild.cli import main; main(['changed', '--format', 'json']);"
        "print(sorted(m for m in ('dataclasses', 'networkx', 'yaml', 'jsonschema', 'rich', 'git')"
        " if m in sys.modules), file=sys.stderr)"
    )
    for _ in range(2):  # the second run reads the cache
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=repo.path, capture_output=True, text=True, check=True
        )
    assert result.stderr.strip() == "[]"
