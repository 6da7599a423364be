"""The command line as a new user meets it: help pages, typos, messages, clean."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from superbuild.cli import VERBS, verb_module
from superbuild.testing.sample import run_git
from tests.conftest import Repo
from tests.helpers import cli, cli_json, command_product, run_superbuild

# --------------------------------------------------------------------------- parsing


def test_a_mistyped_verb_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "chnged", "--format", "json")
    assert code == 2 and out == ""
    assert err == (
        "superbuild: error: unknown verb 'chnged'; did you mean 'changed'? "
        "(see superbuild --help)\n"
    )
    code, _, err = cli(capsys, "-C", ".", "xyzzy")
    assert code == 2 and "unknown verb 'xyzzy' (verbs: changed, graph, plan, build," in err


def test_an_unknown_option_points_to_the_verbs_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "changed", "--bogus")
    assert code == 2
    assert err == (
        "superbuild changed: error: unrecognized arguments: --bogus "
        "(see superbuild changed --help)\n"
    )
    code, _, err = cli(capsys, "hook", "run", "--bogus")
    assert code == 2 and err.endswith("(see superbuild hook run --help)\n")


@pytest.mark.parametrize("verb", list(VERBS))
def test_every_verb_help_page_has_a_description(
    verb: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, verb, "--help")
    assert code == 0
    doc = verb_module(verb).__doc__
    assert doc and doc.split("\n")[0].strip() in out
    # the description sits between the usage and the options
    assert re.search(r"usage: superbuild .*?\n\n\S.*\n.*options:", out, re.S)


@pytest.mark.parametrize("verb", ["graph", "plan", "changed"])
def test_format_options_have_help(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = cli(capsys, verb, "--help")
    line = re.search(r"--format \{[^}]*\}\s*(.*)", out)
    assert line is not None and line.group(1).strip(), out


def test_since_last_success_help_names_the_build_key(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = cli(capsys, "build", "--help")
    text = " ".join(out.split())
    assert "recorded commit differs" not in text
    assert "whose build key (recorded commit, manifest entry, dependencies' keys) differs" in text


def test_only_the_chosen_verbs_module_is_imported() -> None:
    code = (
        "import sys; from superbuild.cli import main; main(['status', '--json']);"
        "print(sorted(m for m in sys.modules if m.startswith('superbuild.commands.')"
        " or m in ('rich', 'superbuild.ui')), file=sys.stderr)"
    )
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd="/"
    )
    assert result.stderr.strip().splitlines()[-1] == "['superbuild.commands.status']"


# --------------------------------------------------------------------------- changed


def small_product(repo: Repo) -> dict[str, str]:
    shas = {
        "base": repo.package("base"),
        "client": repo.package("client", requires=("base",)),
        "tool": repo.package("tool"),
    }
    repo.commit("initial")
    return shas


def test_why_as_json(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    shas = small_product(repo)
    new = repo.link("repos/base")
    repo.commit("bump base")
    args = ("changed", "-C", str(repo.path), "--format", "json", "--why")
    assert cli_json(capsys, *args, "client") == {
        "package": "client",
        "affected": True,
        "chain": ["client", "base"],
        "reason": f"gitlink {shas['base'][:7]} -> {new[:7]}",
    }
    assert cli_json(capsys, *args, "tool") == {
        "package": "tool",
        "affected": False,
        "chain": [],
        "reason": None,
    }
    code, out, err = cli(capsys, *args, "tol")
    assert code == 2 and out == "" and "did you mean 'tool'?" in err


def test_text_output_flags_a_gitlink_moved_backward(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sp = command_product(tmp_path, {"base": [], "tool": []})
    tree = sp / "repos" / "base"
    old = run_git(tree, "rev-parse", "HEAD")
    (tree / "NEWS").write_text("more\n")
    run_git(tree, "commit", "-q", "-am", "more")
    run_git(sp, "commit", "-q", "-am", "bump base")
    run_git(tree, "checkout", "-q", old)
    run_git(sp, "commit", "-q", "-am", "back to the old base")
    code, out, _ = cli(capsys, "changed", "-C", str(sp))
    assert code == 0
    [row] = [line for line in out.splitlines() if "repos/base" in line and "->" in line]
    assert row.rstrip().endswith("(backward)")
    assert "warning: gitlinks moved backward or sideways" in out
    assert "repos/base (backward)" in out


def test_plain_output_is_neither_padded_nor_wrapped(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(60):
        repo.package(f"package-with-a-long-name-{i:02}")
    repo.commit("initial")
    code, out, _ = cli(capsys, "changed", "-C", str(repo.path))
    assert code == 0
    lines = out.splitlines()
    assert all(line == line.rstrip() for line in lines)
    [listed] = [line for line in lines if line.startswith("manifests changed: ")]
    assert len(listed.split(", ")) == 60 and len(listed) > 250


# --------------------------------------------------------------------------- graph


def test_graph_shows_descriptions_and_json_is_in_build_order(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.manifest("zlib", "path: repos/zlib\ndescription: compression library\n")
    repo.link("repos/zlib")
    repo.manifest("app", "path: repos/app\nrequires: [zlib]\n")
    repo.link("repos/app")
    repo.package("bar")
    repo.commit()
    code, out, _ = cli(capsys, "graph", "-C", str(repo.path))
    assert code == 0
    assert "description" in out.splitlines()[0]
    assert re.search(r"zlib\s+repos/zlib\s+-\s+compression library", out)
    data = cli_json(capsys, "graph", "-C", str(repo.path), "--format", "json")
    assert [p["name"] for p in data["packages"]] == ["bar", "zlib", "app"]
    assert data["waves"] == [["bar", "zlib"], ["app"]]
    assert data["packages"][1]["description"] == "compression library"


# --------------------------------------------------------------------------- build


def test_building_one_package_says_so(tmp_path: Path) -> None:
    sp = command_product(tmp_path, {"base": [], "tool": []})
    result = run_superbuild("build", "--packages-select", "tool", "-j", "2", cwd=sp)
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("building ")]
    assert line.startswith("building 1 package (run ")
    result = run_superbuild("build", "--all", "-j", "2", cwd=sp)
    [line] = [line for line in result.stderr.splitlines() if line.startswith("building ")]
    assert line.startswith("building 2 packages, 2 at a time (run ")


def test_jobs_zero_in_settings_means_the_cpu_count(tmp_path: Path) -> None:
    sp = command_product(tmp_path, {"base": [], "tool": []}, settings="jobs: 0\n")
    result = run_superbuild("build", "--all", cwd=sp)
    assert result.returncode == 0, result.stderr
    at_a_time = min(os.cpu_count() or 1, 2)
    expected = f", {at_a_time} at a time" if at_a_time > 1 else " (run"
    assert expected in result.stderr
    result = run_superbuild("build", "--all", "-j", "0", "--dry-run", cwd=sp)
    assert result.returncode == 0, result.stderr


def on_a_terminal(cwd: Path, *argv: str, **env: str) -> tuple[int, str]:
    """Run superbuild with stdout and stderr on a pseudo-terminal: (exit code, output)."""
    import pty
    import subprocess
    import sys

    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "superbuild", *argv],
        cwd=cwd,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(primary)
    return proc.wait(), b"".join(chunks).decode()


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_ci_on_a_terminal_gives_plain_progress_lines(tmp_path: Path) -> None:
    """A pseudo-terminal with CI=true: timestamped lines, no live view."""
    sp = command_product(tmp_path, {"base": [], "tool": []})
    code, text = on_a_terminal(sp, "build", "--all", CI="true", COLUMNS="80")
    assert code == 0, text
    assert "\x1b[?25l" not in text  # the live view hides the cursor
    assert re.search(r"\d\d:\d\d:\d\d \[1/2\] succeeded", text)


def test_status_fits_80_columns(tmp_path: Path) -> None:
    sp = command_product(tmp_path, {"base": [], "client": ["base"], "tool": []})
    assert run_superbuild("build", "--packages-select", "base", "client", cwd=sp).returncode == 0
    code, text = on_a_terminal(sp, "status", COLUMNS="80", LINES="40", CI="")
    assert code == 0, text
    lines = [ANSI.sub("", line) for line in text.splitlines()]
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    [client] = [line for line in lines if line.startswith("client ")]
    assert re.search(r"repos/client\s+[0-9a-f]{7}\s+same\s+0\s+succeeded \d+s ago\s+no\s*$", client)


def test_since_last_success_text_gives_the_reasons(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, step, req in (("base", "false", ""), ("client", "true", "requires: [base]\n")):
        repo.manifest(
            name,
            f"path: repos/{name}\n{req}pipeline: command\nsource: none\ncommands: ['{step}']\n",
        )
        repo.link(f"repos/{name}")
    repo.commit("initial")
    assert cli(capsys, "build", "-C", str(repo.path), "--all", "-j", "1")[0] == 1
    code, out, _ = cli(capsys, "changed", "-C", str(repo.path), "--since-last-success")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("since the last successful builds, at ")
    assert re.search(r"^base\s+last build failed$", out, re.M)
    assert re.search(r"^client\s+last build skipped \(dependency base failed\)$", out, re.M)
    assert "changes" not in out and "wave 2: client" in out


def test_plain_console_strips_padding_and_keeps_line_ends() -> None:
    import io

    from rich.table import Table

    from superbuild.ui import PlainConsole

    out = io.StringIO()
    plain = PlainConsole(file=out)
    table = Table("name", "value", box=None, title="a title", title_justify="left")
    table.add_row("x", "a value longer than its header")
    plain.print(table)
    plain.print("no newline", end="")
    plain.print(" and " + "a/" * 200 + "path")
    assert out.getvalue().splitlines()[0] == "a title"
    assert all(line == line.rstrip() for line in out.getvalue().splitlines())
    assert out.getvalue().endswith("no newline and " + "a/" * 200 + "path\n")
