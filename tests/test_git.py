"""Parsing git's NUL-separated output: table and property-based tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from superbuild import git as g
from superbuild.errors import GitError

SHA_A = "a" * 40
SHA_B = "b" * 40


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


paths = st.binary(min_size=1, max_size=30).filter(lambda b: b"\0" not in b)
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
            g.encode_path(c.path),
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
    assert [(f"{e.mode:06o}", e.kind, e.oid, g.encode_path(e.path)) for e in parsed] == entries


def test_non_utf8_path_roundtrips() -> None:
    raw = b"repos/\xff\xfe"
    assert g.encode_path(g.decode_path(raw)) == raw
