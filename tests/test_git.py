"""Parsing git's NUL-separated output: table and property-based tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from superbuild import git as g
from superbuild.errors import GitError
from tests.conftest import Repo

SHA_A = "a" * 40
SHA_B = "b" * 40


def encode(path: str) -> bytes:
    """The bytes git wrote for a path :func:`superbuild.git.decode_path` decoded."""
    return path.encode("utf-8", "surrogateescape")


def record(old_mode: str, new_mode: str, old: str, new: str, status: str, *paths: bytes) -> bytes:
    return f":{old_mode} {new_mode} {old} {new} {status}".encode() + b"".join(
        b"\0" + p for p in paths
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            record("160000", "160000", SHA_A, SHA_B, "M", b"repos/x") + b"\0",
            [g.RawChange(0o160000, 0o160000, SHA_A, SHA_B, "M", "repos/x")],
        ),
        (
            record("000000", "160000", g.ZERO_OID, SHA_B, "A", b'a b\tc\n"d"') + b"\0",
            [g.RawChange(0, 0o160000, g.ZERO_OID, SHA_B, "A", 'a b\tc\n"d"')],
        ),
        (
            record("160000", "100644", SHA_A, SHA_B, "T", "naïve".encode()) + b"\0",
            [g.RawChange(0o160000, 0o100644, SHA_A, SHA_B, "T", "naïve")],
        ),
        (
            record("100644", "100644", SHA_A, SHA_B, "R097", b"old", b"new") + b"\0",
            [g.RawChange(0o100644, 0o100644, SHA_A, SHA_B, "R", "new", "old")],
        ),
        (b"", []),
    ],
)
def test_parse_raw_diff_table(raw: bytes, expected: list[g.RawChange]) -> None:
    assert g.parse_raw_diff(raw) == expected


def test_parse_raw_diff_rejects_garbage() -> None:
    with pytest.raises(GitError):
        g.parse_raw_diff(b"not a record\0")


#: Paths git may record: any bytes but NUL, minus what superbuild refuses as leaving the
#: repository (superbuild.git.unsafe_path: tests/test_hostile.py covers those).
paths = (
    st.binary(min_size=1, max_size=30)
    .filter(lambda b: b"\0" not in b)
    .filter(lambda b: not g.unsafe_path(g.decode_path(b)))
)
modes = st.sampled_from(["000000", "100644", "100755", "120000", "160000"])
shas = st.text(alphabet="0123456789abcdef", min_size=40, max_size=40)
statuses = st.sampled_from(["A", "D", "M", "T"])


@given(st.lists(st.tuples(modes, modes, shas, shas, statuses, paths), max_size=20))
def test_parse_raw_diff_roundtrip(records: list[tuple[str, str, str, str, str, bytes]]) -> None:
    data = b"".join(record(*r[:5], r[5]) + b"\0" for r in records)
    parsed = g.parse_raw_diff(data)
    assert [
        (
            f"{c.old_mode:06o}",
            f"{c.new_mode:06o}",
            c.old_oid,
            c.new_oid,
            c.status,
            encode(c.path),
        )
        for c in parsed
    ] == records


@given(
    st.lists(
        st.tuples(modes, st.sampled_from(["blob", "commit", "tree"]), shas, paths), max_size=20
    )
)
def test_parse_ls_tree_roundtrip(entries: list[tuple[str, str, str, bytes]]) -> None:
    data = b"".join(f"{m} {k} {o}\t".encode() + p + b"\0" for m, k, o, p in entries)
    parsed = g.parse_ls_tree(data)
    assert [(f"{e.mode:06o}", e.kind, e.oid, encode(e.path)) for e in parsed] == entries


def test_non_utf8_path_roundtrips() -> None:
    raw = b"repos/\xff\xfe"
    assert encode(g.decode_path(raw)) == raw


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a" * 40, True),
        ("b" * 64, True),
        ("A" * 40, False),
        ("a" * 39, False),
        ("g" + "a" * 39, False),
    ],
)
def test_is_oid(text: str, expected: bool) -> None:
    assert g.is_oid(text) is expected


def test_short_oid() -> None:
    assert g.short_oid("0123456789abcdef") == "0123456"
    assert g.short_oid(None) == "-"
    assert g.short_oid(None, "(root)") == "(root)"


def test_first_line_is_the_cause_not_the_advice() -> None:
    stderr = (
        b"warning: something unrelated\n"
        b"fatal: '/x/no-such-remote' does not appear to be a git repository\n"
        b"fatal: Could not read from remote repository.\n\n"
        b"Please make sure you have the correct access rights\nand the repository exists.\n"
    )
    assert (
        g.first_line(stderr) == "fatal: '/x/no-such-remote' does not appear to be a git repository"
    )
    assert g.first_line(b"") == ""


def test_user_env_drops_every_git_variable_git_env_only_the_repository_ones() -> None:
    base = {"GIT_DIR": "/sp/.git", "GIT_SSH_COMMAND": "ssh -i k", "PATH": "/bin"}
    assert g.user_env(base) == {"PATH": "/bin"}
    env = g.git_env(base)
    assert "GIT_DIR" not in env and env["GIT_SSH_COMMAND"] == "ssh -i k" and env["LC_ALL"] == "C"


def test_ls_tree_with_sizes_gives_each_blob_its_size(repo: Repo) -> None:
    repo.write("a b/file with spaces.txt", "x" * 1234)
    repo.write("small", "")
    repo.link("repos/sub")
    repo.commit("sizes")
    entries = {e.path: e for e in g.ls_tree(repo.path, "HEAD", sizes=True)}
    assert entries["a b/file with spaces.txt"].size == 1234
    assert entries["small"].size == 0
    assert entries["repos/sub"].kind == "commit" and entries["repos/sub"].size is None
    plain = {e.path: e for e in g.ls_tree(repo.path, "HEAD")}
    assert {p: e._replace(size=None) for p, e in entries.items()} == plain
