"""Bad input: one line per problem naming the file/package/revision, exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Repo
from tests.helpers import cli, run_superbuild


def base_product(repo: Repo) -> None:
    repo.package("base")
    repo.package("client", requires=("base",))


def errors_of(capsys: pytest.CaptureFixture[str], repo: Repo, *args: str) -> list[str]:
    code, out, err = cli(capsys, *(args or ("changed",)), "-C", str(repo.path))
    assert code == 2, (out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert all(line.startswith("superbuild: error: ") for line in lines), lines
    return [line.removeprefix("superbuild: error: ") for line in lines]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("path: [unclosed\n", "manifests/bad.yaml:2:1: invalid YAML"),
        (
            "path: repos/bad\nreqiures: [base]\n",
            "unknown key 'reqiures' (did you mean 'requires'?)",
        ),
        ("path: repos/bad\nrequires: base\n", "requires: expected an array, got a string 'base'"),
        ("requires: [base]\n", "missing required key 'path'"),
        ("path: repos/bad\npipeline: deb\n", "pipeline: 'deb' is not one of: rpm, command"),
        (
            "path: repos/bad\nversion: 1.10\n",
            "version: expected a string, got a number 1.1 (quote it)",
        ),
        ("path: repos/bad\npath: repos/other\n", "duplicate key 'path'"),
        ("", "manifests/bad.yaml: the file is empty"),
        ("- path: repos/bad\n", "expected a mapping of keys"),
        ("path: repos/bad\ntimeout: -5\n", "timeout: -5 has the wrong form"),
    ],
)
def test_invalid_manifest(
    repo: Repo, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    base_product(repo)
    repo.link("repos/bad")
    repo.write("manifests/bad.yaml", text)
    repo.commit()
    [line] = errors_of(capsys, repo)
    assert line.startswith("manifests/bad.yaml")
    assert expected in line


def test_every_problem_is_reported(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    base_product(repo)
    repo.write("manifests/a.yaml", "path: repos/a\nbogus: 1\n")
    repo.write("manifests/b.yaml", "path: [\n")
    repo.commit()
    lines = errors_of(capsys, repo)
    assert [line.split(":")[0] for line in lines] == ["manifests/a.yaml", "manifests/b.yaml"]


def test_duplicate_names_and_paths(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    base_product(repo)
    repo.manifest("base", "path: repos/base2\n", folder="other")
    repo.manifest("copy", "path: repos/client\n")
    repo.link("repos/base2")
    repo.commit()
    lines = errors_of(capsys, repo)
    assert "duplicate package name 'base': manifests/base.yaml, manifests/other/base.yaml" in lines
    assert (
        "duplicate path 'repos/client': claimed by manifests/client.yaml, manifests/copy.yaml"
        in lines
    )


def test_requires_unknown_package(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    base_product(repo)
    repo.package("service", requires=("clinet",))
    repo.commit()
    [line] = errors_of(capsys, repo)
    assert line.startswith("manifests/service.yaml: requires unknown package 'clinet'")
    assert "did you mean 'client'?" in line


def test_path_not_a_gitlink(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    base_product(repo)
    repo.manifest("ghost", "path: repos/ghost\n")
    sha = repo.commit()
    [line] = errors_of(capsys, repo)
    assert line.startswith("manifests/ghost.yaml: path 'repos/ghost' is not a submodule (gitlink)")
    assert sha[:12] in line


def test_path_problems_come_with_the_other_problems(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    """One run reports a bad key and a path that is not a submodule (no fix-and-retry)."""
    base_product(repo)
    repo.manifest("ghost", "path: repos/ghost\n")
    repo.link("repos/bad")
    repo.manifest("bad", "path: repos/bad\nbogus: 1\n")
    repo.commit()
    lines = errors_of(capsys, repo)
    assert [line.split(":")[0] for line in lines] == ["manifests/bad.yaml", "manifests/ghost.yaml"]
    assert "unknown key 'bogus'" in lines[0]
    assert "path 'repos/ghost' is not a submodule (gitlink)" in lines[1]


def test_manifest_doc_example_is_the_real_output(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/manifest.md shows the errors of one commit: superbuild prints exactly those."""
    manifests = {
        "glance": "path: repos/glance\nreqiures: [keystone]\n",
        "keystone": "path: repos/keystone\nrequires: [a\nb: c\n",
        "horizon": "path: repos/horizon\nrequires: [python-novaclent]\n",
        "python-novaclient": "path: repos/python-novaclient\n",
        "nova": "path: repos/nova\n",
        "openstack/nova": "path: repos/nova2\n",
        "nova-compute": "path: repos/nova\n",
        "ghost": "path: repos/ghost\n",
        "a": "path: repos/a\nrequires: [b]\n",
        "b": "path: repos/b\nrequires: [c]\n",
        "c": "path: repos/c\nrequires: [a]\n",
    }
    for name, text in manifests.items():
        repo.write(f"manifests/{name}.yaml", text)
        if "ghost" not in text:
            repo.link(text.split("\n")[0].removeprefix("path: "))
    commit = repo.commit()
    doc = (Path(__file__).resolve().parents[1] / "docs" / "manifest.md").read_text()
    example = doc.split("## Validation", 1)[1].split("```", 2)[1].strip().splitlines()
    expected = [line.replace("1a2b3c4d5e6f", commit[:12]) for line in example]
    code, _, err = cli(capsys, "changed", "-C", str(repo.path))
    assert code == 2
    assert err.splitlines() == expected


def test_inside_a_submodule_names_the_superproject(
    repo: Repo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lib = Repo(tmp_path / "lib")
    lib.write("README", "a library\n")
    lib.commit()
    base_product(repo)
    repo.git(
        "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib.path), "repos/lib"
    )
    repo.manifest("lib", "path: repos/lib\n")
    repo.commit()
    inside = repo.path / "repos" / "lib"
    for where in (inside, inside / "sub-folder"):
        where.mkdir(exist_ok=True)
        code, _, err = cli(capsys, "changed", "-C", str(where))
        assert code == 2
        [line] = err.splitlines()
        assert line.startswith("superbuild: error: commit ")
        assert line.endswith(
            f"has no manifests/ folder: you are inside submodule repos/lib of {repo.path}: "
            f"run superbuild there (or with -C {repo.path})"
        )


def test_cycle_is_printed(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.package("a", requires=("b",))
    repo.package("b", requires=("c",))
    repo.package("c", requires=("a",))
    repo.package("d", requires=("a",))
    repo.commit()
    [line] = errors_of(capsys, repo)
    assert line.startswith("dependency cycle: a -> b -> c -> a (in manifests/a.yaml")
    for verb in (("graph",), ("plan", "--all")):
        assert errors_of(capsys, repo, *verb) == [line]


def test_bad_settings_file(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    base_product(repo)
    repo.write("superbuild.yaml", "defaults:\n  pipline: rpm\n")
    repo.commit()
    [line] = errors_of(capsys, repo)
    assert line.startswith(
        "superbuild.yaml: defaults: unknown key 'pipline' (did you mean 'pipeline'?)"
    )


def test_no_manifests_folder(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.link("repos/a")
    repo.commit()
    [line] = errors_of(capsys, repo)
    assert "has no manifests/ folder" in line


@pytest.mark.parametrize("option", ["--base", "--head"])
def test_unknown_revision(repo: Repo, capsys: pytest.CaptureFixture[str], option: str) -> None:
    base_product(repo)
    repo.commit()
    [line] = errors_of(capsys, repo, "changed", option, "no-such-branch")
    assert line.startswith(f"unknown {option} revision 'no-such-branch'")
    assert "git fetch" in line


def test_unknown_package_in_selection(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    base_product(repo)
    repo.commit()
    lines = errors_of(capsys, repo, "plan", "--packages-select", "clent", "--packages-skip", "nope")
    assert lines[0].startswith(
        "--packages-select: unknown package 'clent' (did you mean 'client'?)"
    )
    assert lines[1].startswith("--packages-skip: unknown package 'nope'")


def test_not_a_git_repository(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "changed", "-C", str(tmp_path))
    assert code == 2
    assert "is not in a git repository" in err


def test_unborn_head(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    [line] = errors_of(capsys, repo)
    assert line.startswith("unknown --head revision 'HEAD'")


def test_usage_error_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "changed", "--format", "yaml")
    assert code == 2
    assert "invalid choice: 'yaml'" in err


def test_real_process_no_traceback_and_nothing_written(repo: Repo) -> None:
    base_product(repo)
    repo.write("manifests/bad.yaml", "path: [\n")
    repo.commit()
    result = run_superbuild("changed", "--format", "json", cwd=repo.path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert "manifests/bad.yaml" in result.stderr
    # an invalid product is never cached
    assert not list((repo.path / ".git" / "superbuild").glob("manifests-*"))


def test_missing_git(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    base_product(repo)
    repo.commit()
    result = run_superbuild("changed", cwd=repo.path, env={"PATH": "/nonexistent"})
    assert result.returncode == 2
    assert "git not found" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("argv", "verb"),
    [
        (["changed", "--format", "json", "--base", "HEAD~2"], "changed"),
        (["-C", "changed", "build", "--all", "-j", "3"], "build"),
        (["hook", "run", "origin", "url"], "hook"),
        (["plan", "--packages-up-to", "a", "b"], "plan"),
        (["--version"], None),
        (["nonsense"], None),
    ],
)
def test_a_verb_alone_parses_as_the_whole_parser(argv: list[str], verb: str | None) -> None:
    """The CLI defines only the options of the verb it runs: the result must not differ."""
    from superbuild.cli import _verb_of, build_parser

    assert _verb_of(argv) == verb
    if verb is not None:
        assert build_parser(verb).parse_args(argv) == build_parser().parse_args(argv)
