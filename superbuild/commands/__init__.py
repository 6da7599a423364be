"""One module per verb: each ``run(args) -> int`` turns parsed arguments into library calls."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from superbuild import git as g


def superproject(args: argparse.Namespace) -> Path:
    """The superproject the command works on (``-C DIR`` or the current directory)."""
    return g.find_toplevel(getattr(args, "repo", None) or ".")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def warn(*lines: str) -> None:
    """Warnings go to stderr, one line each, never mixed into JSON on stdout."""
    for line in lines:
        print(f"superbuild: warning: {line}", file=sys.stderr)
