"""The quick manifest check (schema._quick) never accepts what jsonschema rejects.

A thousand valid manifests are accepted without importing jsonschema; anything the quick
check rejects or is unsure of is jsonschema's to judge, so its messages stay the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from superbuild import schema

ROOT = Path(__file__).resolve().parents[1]

_keys = st.sampled_from(
    [
        *sorted(schema.MANIFEST_SCHEMA["properties"]),
        *["describe", "snapshot", "name", "prefix", "command", "srpm", "rpm", "X_1", "bad key"],
    ]
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 3),
    st.floats(-1, 3, allow_nan=False),
    st.sampled_from(["", "a", "x.spec", "1.0", "b001", "rpm", "rpmbuild", "git", "per-commit"]),
    st.sampled_from(["version", "{version}", "v{version}", "a/b", "-x", "single", "el9"]),
)
_docs = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_keys, inner, max_size=5)),
    max_leaves=12,
)


def _manifests() -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(_keys, _docs, max_size=6).map(lambda d: {"path": "repos/x", **d})


_PLAUSIBLE: dict[str, list[Any]] = {
    "requires": [[], ["b001"], ["b001", "b001"], ["a b"], [1]],
    "targets": [[], ["el9"], ["el9", "x@y"], ["el9", "el9"]],
    "spec": ["x.spec", "", 1],
    "version": ["1.0", "", {"describe": "v{version}"}, {"describe": "v*"}, {"snapshot": "x"}],
    "release": ["1", ""],
    "archive": [{"name": "a.tar.gz"}, {"name": "a/b"}, {"command": []}, {"command": ["x"]}],
    "commands": [["make"], [], "make"],
    "verify": ["true", "", [], ["true"]],
    "timeout": [1, 0, -1, True, {"rpm": 2}, {"rpm": 0}, {"nope": 1}],
    "env": [{"A": "1"}, {"A": 1}],
    "rpm_macros": [{"_x": "1"}, {"1x": "1"}, {"_x": 1}],
    "repo": ["extras", ""],
    "description": ["text", None],
}


def _nearly_valid() -> st.SearchStrategy[dict[str, Any]]:
    keys = st.lists(st.sampled_from(sorted(_PLAUSIBLE)), unique=True, max_size=6)
    return keys.flatmap(
        lambda ks: st.fixed_dictionaries({k: st.sampled_from(_PLAUSIBLE[k]) for k in ks})
    ).map(lambda d: {"path": "repos/x", **d})


def _agrees(doc: Any, which: dict[str, Any]) -> bool:
    try:
        quick = schema._quick(doc, which)
    except schema._Unsure:
        return True
    valid = jsonschema.Draft202012Validator(which).is_valid(doc)
    return valid or not quick


@settings(max_examples=600, deadline=None)
@given(_manifests())
def test_quick_check_never_accepts_an_invalid_manifest(doc: dict[str, Any]) -> None:
    assert _agrees(doc, schema.MANIFEST_SCHEMA), doc


@settings(max_examples=600, deadline=None)
@given(_nearly_valid())
def test_quick_check_agrees_on_nearly_valid_manifests(doc: dict[str, Any]) -> None:
    try:
        quick = schema._quick(doc, schema.MANIFEST_SCHEMA)
    except schema._Unsure:
        return
    assert quick == jsonschema.Draft202012Validator(schema.MANIFEST_SCHEMA).is_valid(doc), doc


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(schema.SETTINGS_SCHEMA["properties"])), _docs))
def test_quick_check_never_accepts_invalid_settings(doc: dict[str, Any]) -> None:
    assert _agrees(doc, schema.SETTINGS_SCHEMA), doc


def test_quick_check_accepts_the_sample_manifests_and_rejects_a_bad_one() -> None:
    files = sorted((ROOT / "manifests").rglob("*.yaml"))
    assert files
    for file in files:
        doc = yaml.safe_load(file.read_text())
        which = schema.SETTINGS_SCHEMA if file.name == "superbuild.yaml" else schema.MANIFEST_SCHEMA
        assert schema._quick(doc, which), file
    bad = {"path": "repos/x", "requires": ["a", "a"]}
    assert not schema._quick(bad, schema.MANIFEST_SCHEMA)
    problems: list[str] = []
    assert not schema.validate(bad, schema.MANIFEST_SCHEMA, "manifests/x.yaml", problems)
    assert problems and problems[0].startswith("manifests/x.yaml: requires")


def test_quick_check_leaves_a_type_keyword_it_does_not_know_to_jsonschema() -> None:
    nullable = {"type": ["string", "null"]}
    for doc in ("a", None, 1):
        try:
            schema._quick(doc, nullable)
        except schema._Unsure:
            continue
        raise AssertionError(f"quick check judged {doc!r} against a list of types")
    problems: list[str] = []
    assert schema.validate(None, nullable, "manifests/x.yaml", problems) and not problems
    assert not schema.validate(1, nullable, "manifests/x.yaml", problems)
    assert problems and problems[0].startswith("manifests/x.yaml")


_nested = st.recursive(
    st.one_of(st.integers(0, 9), st.sampled_from(["a", "b: c", "- x", "[y]", "*z", "&w v"])),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=2),
        st.dictionaries(st.sampled_from(["k", "k:", "?", "-"]), inner, min_size=1, max_size=2),
    ),
    max_leaves=120,
)


@settings(max_examples=300, deadline=None)
@given(_nested, st.booleans(), st.integers(0, 110))
def test_the_bounds_prescreen_never_skips_a_file_the_event_pass_refuses(
    doc: Any, flow: bool, extra: int
) -> None:
    """Files the prescreen lets through (no ``*``, fewer indicator bytes than the depth
    bound) are always within the bounds the parser's event pass enforces."""
    for _ in range(extra):
        doc = [doc] if extra % 2 else {"k": doc}
    data = yaml.safe_dump(doc, default_flow_style=flow).encode()
    schema._LOADER = schema._LOADER or schema._yaml_loader()
    if not schema._may_exceed_bounds(data):
        assert schema._bounded(data, "x.yaml") is None, data
    deep = (b"[" * (schema.MAX_YAML_DEPTH + 1)) + (b"]" * (schema.MAX_YAML_DEPTH + 1))
    assert schema._may_exceed_bounds(deep)
    assert schema._bounded(deep, "x.yaml") is not None
