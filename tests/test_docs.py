"""The docs stay true to the code."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from pathlib import Path

from superbuild.cli import build_parser
from superbuild.schema import PACKAGE_KEYS, schema_documents

ROOT = Path(__file__).resolve().parent.parent


def test_published_schemas_match_the_code() -> None:
    for name, schema in schema_documents().items():
        published = json.loads((ROOT / "docs" / f"{name}.schema.json").read_text())
        assert published == schema, f"regenerate docs/{name}.schema.json"


def test_manifest_doc_covers_every_key() -> None:
    text = (ROOT / "docs" / "manifest.md").read_text()
    for key in ["path", "requires", *PACKAGE_KEYS]:
        assert f"`{key}`" in text, key


def _options(parser: argparse.ArgumentParser) -> Iterator[str]:
    """Every long option of ``parser`` and of its sub-verbs (``hook install --force``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _options(sub)
        for opt in action.option_strings:
            if opt.startswith("--") and opt != "--help":
                yield opt


def test_cli_doc_covers_every_verb_and_option() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    parser = build_parser()
    verbs = next(a for a in parser._actions if a.dest == "verb")
    for verb, sub in verbs.choices.items():  # type: ignore[union-attr]
        assert f"superbuild {verb}" in text, verb
        for opt in _options(sub):
            assert opt in text, f"{verb} {opt}"


def test_readme_has_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert re.search(r"^make demo$", text, re.M)
    assert re.search(r"^make test$", text, re.M)
