"""Helpers to run the CLI in-process and as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from superbuild.cli import main
from superbuild.testing.sample import make_sample_superproject


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``superbuild argv...`` in this process: (exit code, stdout, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = cli(capsys, *argv)
    assert code == 0, err
    return json.loads(out)


def run_superbuild(
    *argv: str, cwd: Path | None = None, input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run superbuild as a separate process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "superbuild", *argv],
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children, grandchildren...), from one ``ps``."""
    out = subprocess.run(
        ["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True, check=True
    ).stdout
    pairs = [tuple(map(int, line.split())) for line in out.splitlines() if line.strip()]
    found = {pid}
    grew = True
    while grew:
        grew = False
        for child, parent in pairs:
            if parent in found and child not in found:
                found.add(child)
                grew = True
    return found - {pid}


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped, does not count)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "zombie" not in status.lower()


COMMAND_STEPS = ["! grep -q FAIL NEWS", 'cp NEWS "$SUPERBUILD_OUTPUT/"']


def command_product(tmp_path: Path, product: dict[str, list[str]], settings: str = "") -> Path:
    """A sample superproject whose packages build with the ``command`` pipeline."""
    folder = tmp_path / "manifests"
    folder.mkdir()
    for name, requires in product.items():
        lines = [f"path: repos/{name}", "pipeline: command", "commands:"]
        lines += [f"  - {json.dumps(step)}" for step in COMMAND_STEPS]
        if requires:
            lines.append(f"requires: [{', '.join(requires)}]")
        (folder / f"{name}.yaml").write_text("\n".join(lines) + "\n")
    yaml_file = None
    if settings:
        yaml_file = tmp_path / "superbuild.yaml"
        yaml_file.write_text(settings)
    sample = make_sample_superproject(tmp_path / "sp", folder, settings=yaml_file)
    return sample.path
