"""A superproject under a path that is not UTF-8 (a byte 0xff in a folder name), with
``LC_ALL=C``: a real rpm build works end to end, its output is a repository dnf reads,
and every verb prints the path with ``\\xff`` escapes instead of failing.

rpm refuses a spec whose expansion is not UTF-8 (``_topdir`` is in it), so the run's
scratch then goes to the system's temporary folder, under a name a later run can clean.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from superbuild.testing.sample import make_sample_superproject
from tests.test_crash import child_env, dnf_problems, repo_problems

pytestmark = pytest.mark.rpm


def _superbuild(sp: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**child_env("undecodable"), "LC_ALL": "C"}
    env.pop("LANG", None)
    return subprocess.run(
        [sys.executable, "-m", "superbuild", *argv],
        cwd=sp,
        env=env,
        capture_output=True,
        text=True,
        errors="surrogateescape",
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


def test_a_build_under_an_undecodable_path_works_end_to_end(tmp_path: Path) -> None:
    top = Path(os.fsdecode(os.fsencode(tmp_path) + b"/r\xffoot"))
    top.mkdir()
    folder = top / "manifests"
    folder.mkdir()
    (folder / "base.yaml").write_text("path: repos/base\n")
    (folder / "lib.yaml").write_text("path: repos/lib\nrequires: [base]\n")
    sp = make_sample_superproject(top / "sp", folder, settings=None).path
    before = set(Path(tempfile.gettempdir()).glob("superbuild-run-*"))

    done = _superbuild(sp, "build", "--all")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "r\\xffoot" in done.stderr  # the path, escaped, in the run's first line
    output = sp / ".superbuild" / "output"
    assert repo_problems(output) == []
    # dnf itself cannot take such a path as an argument: it reads the repository through
    # a UTF-8 name for it (as a web server would serve it).
    view = tmp_path / "served"
    view.symlink_to(output)
    assert dnf_problems(view, tmp_path / "dnfroot") == []
    assert sorted(p.name.split("-")[0] for p in (output / "rpms").rglob("*.rpm")) == [
        "base",
        "lib",
    ]
    # The scratch in the temporary folder is gone with the run.
    assert set(Path(tempfile.gettempdir()).glob("superbuild-run-*")) - before == set()

    status = _superbuild(sp, "status", "--json")
    assert status.returncode == 0, status.stderr
    rows = json.loads(status.stdout)
    assert rows, status.stdout
    for argv in (["plan", "--all"], ["changed"], ["graph"], ["build"]):
        shown = _superbuild(sp, *argv)
        assert shown.returncode == 0, (argv, shown.stderr)
        assert "Traceback" not in shown.stderr, argv
