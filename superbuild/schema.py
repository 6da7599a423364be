"""The manifest and settings formats: JSON schemas, strict YAML loading, one-line problems.

The schemas are published as ``docs/manifest.schema.json`` and
``docs/settings.schema.json`` (:func:`schema_documents`; a test keeps them equal).  Their
enums come from :mod:`superbuild.pipelines.registry`, which imports no pipeline.  YAML is
loaded safely, duplicate keys refused; every validation error becomes one line naming
the file and the key, with a "did you mean" for a near-miss key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from superbuild.pipelines.registry import BUILDERS, PIPELINES, SOURCES, STAGES

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]*$"
#: A target name (``targets:`` keys): one safe path component (``OUTPUT/<target>/``), no
#: ``@`` (job ids are ``package@target``), not hidden (``.``, ``..``, ``.superbuild-*``).
TARGET_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
#: An rpm macro name (``rpm_macros:`` keys).
MACRO_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

_timeout_schema: dict[str, Any] = {
    "oneOf": [
        {"type": "number", "exclusiveMinimum": 0},
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {s: {"type": "number", "exclusiveMinimum": 0} for s in STAGES},
        },
    ]
}
_strings = {"type": "array", "items": {"type": "string"}}

#: Keys a package manifest may set, also valid under ``defaults:`` in superbuild.yaml.
PACKAGE_KEYS: dict[str, Any] = {
    "description": {"type": "string"},
    "pipeline": {"enum": list(PIPELINES)},
    "spec": {"type": "string", "minLength": 1},
    "version": {
        "oneOf": [
            {"type": "string", "minLength": 1},
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "describe": {"type": "string", "pattern": r"^[^*?\[\]]*\{version\}[^*?\[\]]*$"},
                    "snapshot": {"enum": ["version", "release"]},
                },
            },
        ]
    },
    "release": {"type": "string", "minLength": 1},
    "archive": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "pattern": r"^[^/]+$"},
            "prefix": {"type": "string"},
            "command": {"oneOf": [{"type": "string", "minLength": 1}, {**_strings, "minItems": 1}]},
            "upstream": {"type": "string", "minLength": 1},
            "patches": {"enum": ["per-commit", "single"]},
        },
    },
    "builder": {"enum": list(BUILDERS)},
    "mock_config": {"type": "string", "minLength": 1},
    "commands": {**_strings, "minItems": 1},
    "verify": {"oneOf": [{"type": "string", "minLength": 1}, {**_strings, "minItems": 1}]},
    "timeout": _timeout_schema,
    "env": {"type": "object", "additionalProperties": {"type": "string"}},
    "source": {"enum": list(SOURCES)},
    "rpm_macros": {
        "type": "object",
        "propertyNames": {"pattern": MACRO_NAME_PATTERN},
        "additionalProperties": {"type": "string"},
    },
    # The repository of a release the package goes to (docs/releases.md); a relative
    # folder, checked further by superbuild.manifest (no '.', '..' or empty parts).
    "repo": {"type": "string", "minLength": 1},
}

MANIFEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "superbuild package manifest",
    "type": "object",
    "additionalProperties": False,
    "required": ["path"],
    "properties": {
        "path": {"type": "string", "minLength": 1},
        "requires": {
            "type": "array",
            "items": {"type": "string", "pattern": NAME_PATTERN},
            "uniqueItems": True,
        },
        "targets": {
            "type": "array",
            "items": {"type": "string", "pattern": TARGET_PATTERN},
            "uniqueItems": True,
            "minItems": 1,
        },
        **PACKAGE_KEYS,
    },
}

SETTINGS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "superbuild settings (superbuild.yaml)",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "defaults": {"type": "object", "additionalProperties": False, "properties": PACKAGE_KEYS},
        "targets": {
            "type": "object",
            "propertyNames": {"pattern": TARGET_PATTERN},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": PACKAGE_KEYS,
            },
        },
        "output": {"type": "string", "minLength": 1},
        "jobs": {"type": "integer", "minimum": 0},
        "keep_runs": {"type": "integer", "minimum": 0},
        "executor": {"enum": ["local", "dask"]},
        "scheduler_address": {"type": "string", "minLength": 1},
        "releases": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "binary": {"type": "string", "minLength": 1},
                "source": {"type": "string", "minLength": 1},
            },
        },
        "sign": {
            "type": "object",
            "additionalProperties": False,
            "required": ["key"],
            "properties": {
                "key": {"type": "string", "minLength": 1},
                "gpg_home": {"type": "string"},
            },
        },
    },
}


# --------------------------------------------------------------------------- YAML and validation


def _yaml_loader() -> type:
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class StrictLoader(base):  # type: ignore[valid-type,misc]
        """Safe loading that refuses duplicate keys instead of keeping the last one."""

        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    mark = key_node.start_mark
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (line {mark.line + 1})", mark
                    )
                seen[key] = True
            result: dict[Any, Any] = super().construct_mapping(node, deep=deep)
            return result

    StrictLoader.add_constructor(
        "tag:yaml.org,2002:map",
        lambda loader, node: loader.construct_mapping(node, deep=True),
    )
    return StrictLoader


_LOADER: type | None = None

#: Bounds on a YAML file read from a commit (docs/security.md): checked before anything
#: is built from the file, so a crafted file costs no more than reading it once.
MAX_YAML_BYTES = 1024 * 1024
MAX_YAML_DEPTH = 100


def _where(event: Any) -> str:
    mark = event.start_mark
    return f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""


def _bounded(data: bytes, file: str) -> str | None:
    """The problem with ``data``'s shape (an alias, too deep), from the parser's events."""
    import yaml

    depth = 0
    for event in yaml.parse(data, Loader=_LOADER):  # type: ignore[arg-type]
        if isinstance(event, yaml.AliasEvent):
            return (
                f"{file}{_where(event)}: YAML aliases (*name) are not "
                "allowed in superbuild's files: write the value out"
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                return (
                    f"{file}{_where(event)}: the document is nested deeper "
                    f"than {MAX_YAML_DEPTH} levels: flatten it"
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


#: The bytes that can open a YAML collection (a block mapping needs ``:`` or ``?``, a
#: sequence ``-``, a flow collection ``[`` or ``{``): each nesting level needs its own.
_OPENERS = (b":", b"?", b"-", b"[", b"{")


def _may_exceed_bounds(data: bytes) -> bool:
    """Whether ``data`` could hold an alias or nest deeper than :data:`MAX_YAML_DEPTH`:
    an alias needs a ``*``, and every collection on the way down needs an indicator
    byte of its own, so a file with fewer of them than the bound cannot be too deep.
    A manifest of ordinary size passes without the parser's event pass."""
    if b"*" in data:
        return True
    return sum(data.count(c) for c in _OPENERS) >= MAX_YAML_DEPTH


def load_yaml(data: bytes, file: str, problems: list[str]) -> dict[str, Any] | None:
    import yaml

    global _LOADER  # noqa: PLW0603 - built once per process
    if _LOADER is None:
        _LOADER = _yaml_loader()
    if len(data) > MAX_YAML_BYTES:
        problems.append(
            f"{file}: the file is larger than 1 MiB ({len(data)} bytes): "
            "superbuild reads no YAML file that large; make it smaller"
        )
        return None
    try:
        refusal = _bounded(data, file) if _may_exceed_bounds(data) else None
        if refusal:
            problems.append(refusal)
            return None
        doc = yaml.load(data, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        what = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        problems.append(f"{file}{where}: invalid YAML: {what}")
        return None
    except yaml.YAMLError as exc:
        problems.append(f"{file}: invalid YAML: {' '.join(str(exc).split())}")
        return None
    if doc is None:
        problems.append(f"{file}: the file is empty: a manifest needs at least a 'path'")
        return None
    if not isinstance(doc, dict):
        problems.append(
            f"{file}: expected a mapping of keys (path: ..., requires: [...]), got {_kind(doc)}"
        )
        return None
    return doc


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
        type(None): "null",
    }.get(type(value), type(value).__name__)


_VALIDATORS: dict[int, Any] = {}


class _Unsure(Exception):
    """The quick check meets a keyword it does not know: jsonschema decides."""


_NUMBER = (int, float)
_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "number": _NUMBER,
    "integer": int,
    "boolean": bool,
}
_KNOWN = {
    "$schema", "title", "description", "type", "enum", "minLength", "pattern", "properties",
    "additionalProperties", "required", "items", "uniqueItems", "minItems", "oneOf",
    "exclusiveMinimum", "minimum", "propertyNames",
}  # fmt: skip


def _quick(doc: Any, schema: dict[str, Any]) -> bool:
    """Whether ``doc`` is valid, for the keywords the schemas above use (else
    :class:`_Unsure`): about 50 times faster than jsonschema and no import of it, so a
    commit's thousand valid manifests cost little; a document it rejects is validated
    by jsonschema, whose errors make the messages (a test checks the two agree)."""
    if not _KNOWN.issuperset(schema):
        raise _Unsure
    want = schema.get("type")
    if want is not None:
        cls = _TYPES.get(want) if isinstance(want, str) else None
        if cls is None:
            raise _Unsure  # a list of types, "null": jsonschema's
        if isinstance(doc, bool) and want != "boolean":
            return False
        if not isinstance(doc, cls):
            return False
    if "enum" in schema and not any(type(doc) is type(v) and doc == v for v in schema["enum"]):
        return False
    if isinstance(doc, str):
        if len(doc) < schema.get("minLength", 0):
            return False
        if "pattern" in schema and not re.search(schema["pattern"], doc):
            return False
    if isinstance(doc, _NUMBER) and not isinstance(doc, bool):
        if "exclusiveMinimum" in schema and not doc > schema["exclusiveMinimum"]:
            return False
        if "minimum" in schema and not doc >= schema["minimum"]:
            return False
    if isinstance(doc, list):
        if len(doc) < schema.get("minItems", 0):
            return False
        if schema.get("uniqueItems") and not all(isinstance(v, str) for v in doc):
            raise _Unsure  # equality of mixed values is jsonschema's to judge
        if schema.get("uniqueItems") and len(set(doc)) != len(doc):
            return False
        if "items" in schema and not all(_quick(v, schema["items"]) for v in doc):
            return False
    if isinstance(doc, dict):
        if not all(k in doc for k in schema.get("required", ())):
            return False
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        names = schema.get("propertyNames")
        for key, value in doc.items():
            if not isinstance(key, str):
                raise _Unsure
            if names is not None and not _quick(key, names):
                return False
            if key in props:
                if not _quick(value, props[key]):
                    return False
            elif extra is False or (isinstance(extra, dict) and not _quick(value, extra)):
                return False
    return "oneOf" not in schema or sum(_quick(doc, s) for s in schema["oneOf"]) == 1


def validate(doc: Any, schema: dict[str, Any], file: str, problems: list[str]) -> bool:
    try:
        if _quick(doc, schema):
            return True
    except _Unsure:
        pass
    validator = _VALIDATORS.get(id(schema))
    if validator is None:
        import jsonschema

        validator = _VALIDATORS[id(schema)] = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.path])
    for error in errors:
        problems.append(f"{file}: {_describe(error)}")
    return not errors


def _describe(error: Any) -> str:
    import difflib

    where = ".".join(str(p) for p in error.absolute_path)
    prefix = f"{where}: " if where else ""
    value = error.instance
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(value) - set(allowed), key=str)
        parts = []
        for key in extra:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            parts.append(f"unknown key {key!r}{hint}")
        return prefix + "; ".join(parts) + f"; allowed keys: {', '.join(allowed)}"
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in value]
        return prefix + f"missing required key {missing[0]!r}"
    if error.validator == "type":
        want = error.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        article = "an" if str(want)[0] in "aeiou" else "a"
        quote = " (quote it)" if want == "string" and isinstance(value, int | float) else ""
        return prefix + f"expected {article} {want}, got {_kind(value)} {value!r}{quote}"
    if error.validator == "enum":
        return prefix + f"{value!r} is not one of: {', '.join(map(str, error.validator_value))}"
    if error.validator == "pattern":
        if error.validator_value == TARGET_PATTERN:
            return prefix + (
                f"{value!r} is not a valid target name (letters, digits and . _ -, "
                "starting with a letter or digit)"
            )
        return prefix + f"{value!r} is not a valid package name"
    if error.validator == "oneOf":
        kinds = [option.get("type") for option in error.schema.get("oneOf", ())]
        if isinstance(value, int | float) and not isinstance(value, bool) and "string" in kinds:
            return prefix + f"expected a string, got {_kind(value)} {value!r} (quote it)"
        return prefix + f"{value!r} has the wrong form ({_one_of_hint(error.schema)})"
    return prefix + " ".join(error.message.split())


def _one_of_hint(schema: Mapping[str, Any]) -> str:
    kinds = []
    for option in schema.get("oneOf", ()):
        kind = option.get("type")
        kinds.append({"array": "a list of strings", "object": "a mapping"}.get(kind, f"a {kind}"))
    return "expected " + " or ".join(kinds)


def schema_documents() -> dict[str, dict[str, Any]]:
    """The JSON schemas, for docs and editors."""
    return {"manifest": MANIFEST_SCHEMA, "settings": SETTINGS_SCHEMA}
