"""Targets: one product built for several platforms in one run (superbuild.yaml ``targets:``).

Real git, real rpmbuild, createrepo_c and Debian's dnf; mock (which cannot run here) is
faked with pytest-subprocess by a callback that runs the real rpmbuild with mock's
``--define`` arguments, so what reaches the output is real RPMs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from superbuild import build as sbuild
from superbuild import planning
from superbuild.manifest import load_product
from superbuild.state import BuildState, build_inputs
from superbuild.testing.sample import SampleSuperproject, make_sample_superproject, run_git
from tests.helpers import cli
from tests.rpmtools import dnf
from tests.test_build import superbuild
from tests.test_dask import cluster  # noqa: F401 - the module-scoped Dask cluster fixture

PRODUCT = {"base": [], "client": ["base"], "tool": []}

TARGETS = """\
targets:
  el9:
    builder: rpmbuild
    rpm_macros: {dist: .el9}
  fc42:
    builder: rpmbuild
    rpm_macros: {dist: .fc42}
"""


def make_product(
    tmp_path: Path, settings: str = TARGETS, extra: dict[str, str] | None = None
) -> SampleSuperproject:
    """The sample product PRODUCT with ``settings`` as superbuild.yaml; ``extra``: more
    manifest lines per package."""
    folder = tmp_path / "manifests"
    folder.mkdir(parents=True)
    for name, requires in PRODUCT.items():
        req = f"requires: [{', '.join(requires)}]\n" if requires else ""
        more = (extra or {}).get(name, "")
        (folder / f"{name}.yaml").write_text(f"path: repos/{name}\n{req}{more}")
    settings_file = tmp_path / "superbuild.yaml"
    settings_file.write_text(settings)
    return make_sample_superproject(tmp_path / "sp", folder, settings=settings_file)


def rpm_qp(rpm: Path, fmt: str) -> str:
    return subprocess.run(
        ["rpm", "-qp", "--qf", fmt, os.fspath(rpm)], capture_output=True, text=True, check=True
    ).stdout


def installed(root: Path) -> dict[str, str]:
    out = subprocess.run(
        ["rpm", "--root", os.fspath(root), "-qa", "--qf", "%{NAME} %{RELEASE}\n"],
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


# --------------------------------------------------------------------------- settings


def test_each_target_gets_its_defaults_under_the_manifest(tmp_path: Path) -> None:
    sample = make_product(
        tmp_path,
        "defaults: {rpm_macros: {vendor: sb, dist: .none}}\n" + TARGETS,
        extra={"tool": "targets: [el9]\nrpm_macros: {dist: .mine}\n"},
    )
    product = load_product(sample.path, sample.head())
    assert product.target_names == ("el9", "fc42")
    assert product.targets_of("base") == ("el9", "fc42")
    assert product.targets_of("tool") == ("el9",)
    el9, fc42 = (product.package_for("base", t) for t in ("el9", "fc42"))
    assert dict(el9.rpm_macros) == {"dist": ".el9", "vendor": "sb"}
    assert dict(fc42.rpm_macros) == {"dist": ".fc42", "vendor": "sb"}
    assert el9.builder == "rpmbuild"
    # The manifest's own keys win over its targets' defaults.
    assert dict(product.package_for("tool", "el9").rpm_macros)["dist"] == ".mine"


@pytest.mark.parametrize(
    ("settings", "manifest", "expected"),
    [
        pytest.param(
            TARGETS,
            "targets: [el8]\n",
            "superbuild: error: manifests/tool.yaml: targets: unknown target 'el8' "
            "(superbuild.yaml targets: el9, fc42): name one of those, or define it in "
            "superbuild.yaml",
            id="unknown-target",
        ),
        pytest.param(
            "",
            "targets: [el9]\n",
            "superbuild: error: manifests/tool.yaml: targets: unknown target 'el9' "
            "(superbuild.yaml targets: none): name one of those, or define it in "
            "superbuild.yaml",
            id="no-targets-defined",
        ),
        pytest.param(
            "targets:\n  ../up: {}\n",
            "",
            "superbuild: error: superbuild.yaml: targets: '../up' is not a valid target "
            "name (letters, digits and . _ -, starting with a letter or digit)",
            id="path-in-name",
        ),
        pytest.param(
            "targets:\n  .hidden: {}\n",
            "",
            "superbuild: error: superbuild.yaml: targets: '.hidden' is not a valid target "
            "name (letters, digits and . _ -, starting with a letter or digit)",
            id="hidden-name",
        ),
        pytest.param(
            "targets:\n  el9: {spam: 1}\n",
            "",
            "superbuild: error: superbuild.yaml: targets.el9: unknown key 'spam'",
            id="unknown-key",
        ),
    ],
)
def test_bad_targets_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], settings: str, manifest: str, expected: str
) -> None:
    sample = make_product(tmp_path, settings or "jobs: 1\n", extra={"tool": manifest})
    code, _, err = cli(capsys, "-C", str(sample.path), "plan", "--all")
    assert code == 2
    assert err.strip().startswith(expected), err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_a_dependent_of_a_package_missing_from_a_target_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = make_product(tmp_path, extra={"base": "targets: [el9]\n"})
    code, _, err = cli(capsys, "-C", str(sample.path), "plan", "--all")
    assert code == 2
    assert err.strip() == (
        "superbuild: error: manifests/client.yaml: requires 'base', which is not built for "
        "target 'fc42' (its manifest's targets:): restrict client with targets: too, or "
        "build base for fc42"
    )


def test_unknown_target_option_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = make_product(tmp_path)
    code, _, err = cli(capsys, "-C", str(sample.path), "build", "--all", "--target", "el8")
    assert (code, err.strip()) == (
        2,
        "superbuild: error: --target el8: unknown target; superbuild.yaml targets: el9, fc42",
    )
    plain = make_product(tmp_path / "plain", "jobs: 1\n")
    code, _, err = cli(capsys, "-C", str(plain.path), "plan", "--all", "--target", "el9")
    assert code == 2 and "superbuild.yaml defines no targets:" in err


def test_plan_json_carries_the_targets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = make_product(tmp_path, extra={"tool": "targets: [fc42]\n"})
    code, out, err = cli(capsys, "-C", str(sample.path), "plan", "--all", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["targets"] == ["el9", "fc42"]
    assert {p["package"]: p["targets"] for p in data["packages"]} == {
        "base": ["el9", "fc42"],
        "client": ["el9", "fc42"],
        "tool": ["fc42"],
    }
    assert [j["job"] for j in data["jobs"]] == [
        "base@el9",
        "base@fc42",
        "tool@fc42",
        "client@el9",
        "client@fc42",
    ]
    code, out, _ = cli(
        capsys, "-C", str(sample.path), "plan", "--all", "--target", "el9", "--format", "json"
    )
    data = json.loads(out)
    assert [j["job"] for j in data["jobs"]] == ["base@el9", "client@el9"]
    assert data["targets"] == ["el9"]
    code, out, _ = cli(capsys, "-C", str(sample.path), "plan", "--all")
    assert "targets: 5 jobs: el9 (2), fc42 (3)" in " ".join(out.split())
    assert "tool: fc42 only" in out


@pytest.mark.rpm
def test_plan_verbose_previews_each_target_with_its_macros(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = make_product(tmp_path)
    argv = ("-C", str(sample.path), "plan", "--all", "--packages-select", "base")
    code, out, err = cli(capsys, *argv, "--verbose", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    nevrs = {j["job"]: j["preview"]["nevr"] for j in data["jobs"]}
    assert set(nevrs) == {"base@el9", "base@fc42"}
    assert nevrs["base@el9"].endswith(".el9") and nevrs["base@fc42"].endswith(".fc42")
    assert data["packages"][0]["preview"]["nevr"] == nevrs["base@el9"]


def test_without_targets_the_plan_and_keys_are_those_of_before(tmp_path: Path) -> None:
    sample = make_product(tmp_path, "jobs: 1\n")
    found = planning.plan(sample.path, planning.PlanRequest(mode="all"))
    assert isinstance(found, planning.Plan)
    assert found.job_ids == ["base", "tool", "client"]
    assert found.target_names == [None]
    inputs = build_inputs(found.product, found.links)
    assert set(inputs) == {"base", "tool", "client"}
    assert inputs["client"].deps == {"base": inputs["base"].key}
    assert inputs["base"].target is None
    # The key formula of earlier versions: states recorded before targets stay current.
    base = inputs["base"]
    raw = "\0".join(["superbuild-build-key-1", "base", base.commit, base.digest])
    assert base.key == hashlib.sha256(raw.encode()).hexdigest()
    client = inputs["client"]
    raw = "\0".join(
        ["superbuild-build-key-1", "client", client.commit, client.digest, f"base={base.key}"]
    )
    assert client.key == hashlib.sha256(raw.encode()).hexdigest()


def test_build_keys_cover_the_target_and_its_settings(tmp_path: Path) -> None:
    sample = make_product(tmp_path)
    product = load_product(sample.path, sample.head())
    links = sample.gitlinks()
    keys = {job: i.key for job, i in build_inputs(product, links).items()}
    assert set(keys) == {f"{p}@{t}" for p in PRODUCT for t in ("el9", "fc42")}
    assert keys["base@el9"] != keys["base@fc42"]
    inputs = build_inputs(product, links)
    assert inputs["client@el9"].deps == {"base@el9": keys["base@el9"]}
    (sample.path / "superbuild.yaml").write_text(TARGETS.replace(".fc42", ".fc43"))
    edited = load_product(sample.path, sample.commit("fc43"))
    again = {job: i.key for job, i in build_inputs(edited, links).items()}
    assert again["base@el9"] == keys["base@el9"]  # el9 did not change
    assert again["base@fc42"] != keys["base@fc42"]
    assert again["client@fc42"] != keys["client@fc42"]  # through its dependency


def test_command_packages_see_their_target_and_its_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = (
        'commands: [\'printf "%s %s" "$SUPERBUILD_TARGET" "$FLAVOUR" > "$SUPERBUILD_OUTPUT/t"\']\n'
    )
    sample = make_product(
        tmp_path,
        "defaults: {pipeline: command, source: none}\n"
        "targets:\n  alpha: {env: {FLAVOUR: sweet}}\n  beta: {env: {FLAVOUR: sour}}\n",
        extra=dict.fromkeys(PRODUCT, steps),
    )
    code, _, err = cli(capsys, "-C", str(sample.path), "build", "--all", "-j", "3")
    assert code == 0, err
    output = sample.path / ".superbuild" / "output"
    for target, flavour in (("alpha", "sweet"), ("beta", "sour")):
        for name in PRODUCT:
            assert (output / target / "files" / name / "t").read_text() == f"{target} {flavour}"
    assert not (output / "files").exists()


# --------------------------------------------------------------------------- state


SCHEMA_V2_ROWS = """\
INSERT INTO runs (id, started_at, finished_at, head, result, pid, host)
    VALUES ('old-run', 100.0, 160.0, 'h1', 'success', 4242, 'h');
INSERT INTO builds (run_id, package, commit_id, status, started_at, finished_at, duration_s,
                    artifacts, build_key, digest)
    VALUES ('old-run', 'base', 'c1', 'succeeded', 100.0, 160.0, 60.0, '["/out/base.rpm"]',
            'k1', 'd1');
"""


def test_an_old_database_migrates_and_takes_builds_per_target(tmp_path: Path) -> None:
    from superbuild.state import db as sdb

    repo = tmp_path / "sp"
    (repo / ".superbuild").mkdir(parents=True)
    path = repo / ".superbuild" / "state.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        for migration in sdb.MIGRATIONS[:2]:
            for statement in migration:
                db.execute(statement)
        db.executescript(SCHEMA_V2_ROWS + "PRAGMA user_version = 2;")
    with BuildState.open(repo) as state:
        assert state.db.execute("PRAGMA user_version").fetchone()[0] == sdb.SCHEMA_VERSION
        [old] = state.builds("old-run")
        assert (old.package, old.target, old.job_id, old.artifacts) == (
            "base",
            None,
            "base",
            ("/out/base.rpm",),
        )
        planned = build_inputs_like("c2")
        state.start_run(
            "new-run",
            head="h2",
            base=None,
            packages=[("base", planned), ("base@el9", planned), ("base@fc42", planned)],
        )
        state.update_build("new-run", "base@el9", status="succeeded", duration_s=5.0)
        state.finish_run("new-run", "failure")
        history = state.history()
        assert set(history) == {"base", "base@el9", "base@fc42"}
        assert history["base@el9"].last_success is not None
        assert history["base@el9"].last_success.target == "el9"
        assert history["base"].last_success is not None
        assert history["base"].last_success.run_id == "old-run"
        assert history["base@fc42"].last_success is None
        assert state.weights(["base", "base@el9", "base@fc42"]) == {
            "base": 60.0,
            "base@el9": 5.0,
            "base@fc42": 32.5,
        }
        found = state.successful(["k2", "k1", "nope"])
        assert {k: (r.package, r.target) for k, r in found.items()} == {
            "k1": ("base", None),
            "k2": ("base", "el9"),
        }


def build_inputs_like(commit: str) -> Any:
    from superbuild.state import BuildInputs

    return BuildInputs(commit, "d2", {}, "k2")


# --------------------------------------------------------------------------- real builds


@pytest.mark.rpm
def test_two_targets_build_with_their_dist_into_their_own_repositories(tmp_path: Path) -> None:
    sample = make_product(tmp_path, extra={"tool": "targets: [el9]\n"})
    report_path, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    result = superbuild(
        sample, "build", "--all", "-j", "2", "--report", str(report_path), "--junit", str(junit)
    )
    assert result.returncode == 0, result.stderr
    assert "building 5 jobs for 2 targets (el9, fc42), 2 at a time" in result.stderr
    output = sample.path / ".superbuild" / "output"
    assert sorted(p.name for p in output.iterdir() if not p.name.startswith(".")) == [
        "el9",
        "fc42",
    ]
    for target, names in (("el9", {"base", "client", "tool"}), ("fc42", {"base", "client"})):
        rpms = sorted((output / target / "rpms" / "noarch").glob("*.rpm"))
        srpms = sorted((output / target / "srpms").glob("*.src.rpm"))
        assert {rpm_qp(r, "%{NAME}") for r in rpms} == names
        assert {rpm_qp(r, "%{NAME}") for r in srpms} == names
        for rpm in [*rpms, *srpms]:
            release = rpm_qp(rpm, "%{RELEASE}")
            assert release.endswith(f".{target}"), rpm
            assert f".{target}." in rpm.name
        for repo in ("rpms", "srpms"):
            assert (output / target / repo / "repodata" / "repomd.xml").is_file()
    assert not (output / "rpms").exists()

    # A real client installs each target's product from that target's repository only.
    for target in ("el9", "fc42"):
        root = tmp_path / f"root-{target}"
        done = dnf(root, {target: output / target / "rpms"}, "install", "client")
        assert done.returncode == 0, done.stderr
        got = installed(root)
        assert set(got) == {"base", "client"}
        assert all(release.endswith(f".{target}") for release in got.values())
    sources = dnf(tmp_path / "root-src", {"src": output / "el9" / "srpms"}, "list", "--available")
    assert sources.returncode == 0, sources.stderr
    assert "tool.src" in sources.stdout

    report = json.loads(report_path.read_text())
    jobs = [(p["package"], p["target"], p["status"]) for p in report["packages"]]
    assert sorted(jobs) == sorted(
        [(n, "el9", "succeeded") for n in ("base", "client", "tool")]
        + [(n, "fc42", "succeeded") for n in ("base", "client")]
    )
    for entry in report["packages"]:
        assert all(f"/output/{entry['target']}/" in a for a in entry["artifacts"])
    suites = ET.parse(junit).getroot().findall("testsuite")
    assert {s.get("name"): s.get("tests") for s in suites} == {
        "superbuild.el9": "3",
        "superbuild.fc42": "2",
    }

    with BuildState.read(sample.path) as state:
        assert state is not None
        [run] = state.runs()
        rows = {(b.package, b.target): b for b in state.builds(run.id)}
        assert set(rows) == {(p, t) for p, t, _ in jobs}
        assert all(b.status == "succeeded" for b in rows.values())
        assert all(f"/output/{b.target}/" in a for b in rows.values() for a in b.artifacts)

    status = superbuild(sample, "status", "--json")
    assert status.returncode == 0, status.stderr
    by_package = {r["package"]: r for r in json.loads(status.stdout)}
    assert [t["target"] for t in by_package["base"]["targets"]] == ["el9", "fc42"]
    assert by_package["base"]["needs_rebuild"] is False
    assert by_package["tool"]["targets"][0]["last_build"]["status"] == "succeeded"

    # Only fc42's settings change: --since-last-success rebuilds fc42's jobs only.
    (sample.path / "superbuild.yaml").write_text(TARGETS.replace("{dist: .fc42}", "{dist: .f42}"))
    sample.commit("fc42: another dist")
    again = superbuild(sample, "build", "--since-last-success", "--report", str(report_path))
    assert again.returncode == 0, again.stderr
    rebuilt = json.loads(report_path.read_text())["packages"]
    assert sorted((p["package"], p["target"]) for p in rebuilt) == [
        ("base", "fc42"),
        ("client", "fc42"),
    ]
    assert {rpm_qp(r, "%{RELEASE}").rsplit(".", 1)[-1] for r in rebuilt_rpms(rebuilt)} == {"f42"}
    status = json.loads(superbuild(sample, "status", "--json").stdout)
    assert not any(r["needs_rebuild"] for r in status if r["package"])


def rebuilt_rpms(packages: list[dict[str, Any]]) -> list[Path]:
    return [Path(a) for p in packages for a in p["artifacts"] if a.endswith(".rpm")]


@pytest.mark.rpm
def test_target_option_and_retry_failed_work_per_target(tmp_path: Path) -> None:
    # client fails for fc42 only: its %build looks for a macro only el9 defines.
    sample = make_product(
        tmp_path,
        TARGETS.replace("{dist: .el9}", "{dist: .el9, ok: 'yes'}"),
    )
    spec = sample.work_tree("client") / "client.spec"
    spec.write_text(spec.read_text().replace("%build\n", "%build\ntest '%{?ok}' = yes\n"))
    tree = sample.work_tree("client")
    run_git(tree, "commit", "-qam", "needs %ok", env=sample.env)
    run_git(tree, "push", "-q", "origin", "HEAD:refs/heads/main", env=sample.env)
    sample.git("add", "repos/client")
    sample.commit("record client")

    only = superbuild(sample, "build", "--all", "--target", "el9", "--report", "r.json")
    assert only.returncode == 0, only.stderr
    report = json.loads((sample.path / "r.json").read_text())
    assert {(p["package"], p["target"]) for p in report["packages"]} == {
        ("base", "el9"),
        ("client", "el9"),
        ("tool", "el9"),
    }
    assert not (sample.path / ".superbuild" / "output" / "fc42").exists()

    both = superbuild(sample, "build", "--since-last-success", "--report", "r.json")
    assert both.returncode == 1
    assert "client@fc42 failed" in both.stderr
    report = json.loads((sample.path / "r.json").read_text())
    assert {(p["package"], p["target"], p["status"]) for p in report["packages"]} == {
        ("base", "fc42", "succeeded"),
        ("client", "fc42", "failed"),
        ("tool", "fc42", "succeeded"),
    }

    (sample.path / "superbuild.yaml").write_text(
        TARGETS.replace("{dist: .fc42}", "{dist: .fc42, ok: 'yes'}")
    )
    sample.commit("fc42 defines %ok too")
    retry = superbuild(sample, "build", "--retry-failed", "--report", "r.json")
    assert retry.returncode == 0, retry.stderr
    assert "did not finish: client@fc42" in retry.stderr
    report = json.loads((sample.path / "r.json").read_text())
    assert [(p["package"], p["target"]) for p in report["packages"]] == [("client", "fc42")]

    # A refresh a killed run left pending in one target's repository is completed by the
    # next build, even one with nothing to do; the other target's is left alone.
    output = sample.path / ".superbuild" / "output"
    (output / "fc42" / ".superbuild-pending").write_text("4242\n")
    repomd = output / "el9" / "rpms" / "repodata" / "repomd.xml"
    before = repomd.stat().st_mtime_ns
    idle = superbuild(sample, "build", "--retry-failed")
    assert idle.returncode == 0, idle.stderr
    assert "nothing to retry" in idle.stderr
    assert f"left pending in {output / 'fc42'}" in idle.stderr
    assert not (output / "fc42" / ".superbuild-pending").exists()
    assert repomd.stat().st_mtime_ns == before


# --------------------------------------------------------------------------- mock (faked)


MOCK_TARGETS = """\
targets:
  el9:
    builder: mock
    mock_config: rocky-9-x86_64
    rpm_macros: {dist: .el9}
  fc42:
    builder: mock
    mock_config: fedora-42-x86_64
    rpm_macros: {dist: .fc42}
"""


def _defines(argv: list[str]) -> list[str]:
    found = []
    for i, arg in enumerate(argv):
        if arg == "--define":
            found += ["--define", argv[i + 1]]
    return found


def _fake_mock(seen: list[dict[str, Any]]) -> Any:
    """mock: the real rpmbuild (``-bs``, then ``--rebuild``) with mock's defines; each
    ``--rebuild`` call records the RPMs its ``--addrepo`` repositories offer then."""

    def callback(process: Any) -> None:
        argv = [os.fspath(a) for a in process.args]
        result_dir = Path(argv[argv.index("--resultdir") + 1])
        top = result_dir / "top"
        defines = _defines(argv)
        if "--buildsrpm" in argv:
            spec, sources = argv[argv.index("--spec") + 1], argv[argv.index("--sources") + 1]
            cmd = ["rpmbuild", "-bs", "--define", f"_topdir {top}"]
            cmd += ["--define", f"_sourcedir {sources}", *defines, spec]
        else:
            srpm = argv[argv.index("--rebuild") + 1]
            cmd = ["rpmbuild", "--rebuild", "--nodeps", "--define", f"_topdir {top}"]
            cmd += [*defines, srpm]
            repos = [
                Path(argv[i + 1].removeprefix("file://"))
                for i, a in enumerate(argv)
                if a == "--addrepo"
            ]
            seen.append(
                {
                    "config": argv[argv.index("-r") + 1],
                    "uniqueext": argv[argv.index("--uniqueext") + 1],
                    "srpm": Path(srpm).name,
                    "repos": repos,
                    "offered": sorted(p.name for r in repos for p in r.rglob("*.rpm")),
                    "metadata": [(r / "repodata" / "repomd.xml").is_file() for r in repos],
                }
            )
        subprocess.run(cmd, check=True, capture_output=True)
        for rpm in top.rglob("*.rpm"):
            rpm.rename(result_dir / rpm.name)
        (result_dir / "build.log").write_text("built\n")

    return callback


@pytest.fixture
def honest_fake_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest-subprocess's ``wait(timeout)`` sets the return code when the timeout ends
    even if the callback still runs; a real child is not done then: say so, as Popen does
    (superbuild waits in short steps while a child whose output is not a pipe runs)."""
    from pytest_subprocess.fake_popen import FakePopen

    original = FakePopen._finalize_thread

    def finalize(self: Any, timeout: float | None) -> None:
        thread = getattr(self, "_FakePopen__thread", None)
        if thread is not None and timeout is not None:
            thread.join(timeout)
            if thread.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout)
        original(self, timeout)

    monkeypatch.setattr(FakePopen, "_finalize_thread", finalize)


@pytest.mark.rpm
@pytest.mark.usefixtures("honest_fake_wait")
def test_mock_targets_build_dependents_against_the_same_target(tmp_path: Path, fp: Any) -> None:
    fp.allow_unregistered(True)
    seen: list[dict[str, Any]] = []
    fp.register(["mock", fp.any()], callback=_fake_mock(seen), occurrences=20)
    sample = make_product(tmp_path, MOCK_TARGETS)
    found = planning.plan(sample.path, planning.PlanRequest(mode="all"))
    assert isinstance(found, planning.Plan)
    options = sbuild.BuildOptions(jobs=2)
    # Weights (expected durations, from the state) are per job: the critical path is
    # taken across the targets.
    run = sbuild.prepare(sample.path, found, options, weights={"base@fc42": 9.0})
    assert run.jobs["client@fc42"].dependencies == frozenset({"base@fc42"})
    assert (run.jobs["base@fc42"].weight, run.jobs["base@el9"].weight) == (9.0, 1.0)
    result = sbuild.execute(run, options)
    assert result.result == "success", {j: o.reason for j, o in result.outcomes.items()}

    output = sample.path / ".superbuild" / "output"
    rebuilds: dict[str, list[dict[str, Any]]] = {}
    for entry in seen:
        rebuilds.setdefault(entry["srpm"].split("-")[0], []).append(entry)
    for client in rebuilds["client"]:
        target = "el9" if client["config"] == "rocky-9-x86_64" else "fc42"
        assert client["srpm"].endswith(f".{target}.src.rpm")
        assert client["uniqueext"] == f"superbuild-client@{target}"
        # The dependent reads its own target's repository, with the dependency in it.
        assert client["repos"] == [output / target / "rpms"]
        assert client["metadata"] == [True]
        [base] = [r for r in client["offered"] if r.startswith("base-")]
        assert base.endswith(f".{target}.noarch.rpm")
    assert sorted(c["config"] for c in rebuilds["client"]) == ["fedora-42-x86_64", "rocky-9-x86_64"]
    report = result.report().to_json()
    assert {(p["package"], p["target"]) for p in report["packages"]} == {
        (p, t) for p in PRODUCT for t in ("el9", "fc42")
    }


# --------------------------------------------------------------------------- Dask


DASK_TARGETS = """\
targets:
  el9: {builder: mock, mock_config: rocky-9-x86_64, version: "1.9"}
  fc42: {builder: mock, mock_config: fedora-42-x86_64, version: "4.2"}
"""


@pytest.mark.dask
@pytest.mark.rpm
def test_dask_workers_get_the_rpms_of_the_same_target(
    cluster: Any,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The targets differ by version here: the fake mock of tests/test_dask.py ignores
    # --define, and the versions tell the two targets' RPMs apart by name.
    sample = make_product(tmp_path, DASK_TARGETS)
    monkeypatch.chdir(sample.path)
    found = planning.plan(sample.path, planning.PlanRequest(mode="all"))
    assert isinstance(found, planning.Plan)
    output = tmp_path / "out"
    options = sbuild.BuildOptions(
        jobs=2,
        output=output,
        executor="dask",
        executor_options={"address": cluster.scheduler_address},
    )
    result = sbuild.execute(sbuild.prepare(sample.path, found, options), options)
    assert result.result == "success", {j: o.reason for j, o in result.outcomes.items()}
    for target, version, other in (("el9", "1.9", "4.2"), ("fc42", "4.2", "1.9")):
        log = result.run.contexts[f"client@{target}"].log_dir / "mock-build.log"
        text = log.read_text()
        config = "rocky-9-x86_64" if target == "el9" else "fedora-42-x86_64"
        assert text.splitlines()[0].startswith(f"fake mock -r {config} --rebuild ")
        assert "/deps-repo" in text  # shipped to the worker, not read from the coordinator
        assert f"base-{version}-" in text
        assert f"base-{other}-" not in text
        assert {p.name.split("-")[1] for p in (output / target / "rpms").rglob("*.rpm")} == {
            version
        }


# --------------------------------------------------------------------------- releases


@pytest.mark.rpm
def test_a_release_of_two_targets_has_each_targets_repositories(tmp_path: Path) -> None:
    """``release create`` takes every (package, target) build of the commit; each target's
    repositories hold that target's RPMs (dist tag), which dnf installs; ``diff`` after a
    bump names the change in both targets."""
    sample = make_product(tmp_path)
    done = superbuild(sample, "build", "--all", "-j", "2")
    assert done.returncode == 0, done.stderr
    missing = superbuild(sample, "release", "create", "R0", "--target", "el8")
    assert missing.returncode == 2
    assert "unknown target 'el8'" in missing.stderr, missing.stderr
    made = superbuild(sample, "release", "create", "R1")
    assert made.returncode == 0, made.stderr
    release = sample.path / ".superbuild" / "releases" / "R1"
    data = json.loads((release / "release.json").read_text())
    assert data["targets"] == ["el9", "fc42"]
    built = {(p["name"], p["target"]) for p in data["packages"]}
    assert built == {(n, t) for n in PRODUCT for t in ("el9", "fc42")}
    for target in ("el9", "fc42"):
        folder = release / target / "main"
        names = sorted(p.name for p in folder.rglob("*.rpm"))
        assert names and all(f".{target}." in n for n in names), names
        root = tmp_path / f"root-{target}"
        got = dnf(root, {"r": folder}, "install", "client")
        assert got.returncode == 0, got.stderr
        assert installed(root)["base"].endswith(f".{target}")

    sample.bump("base")
    assert superbuild(sample, "build", "-j", "2").returncode == 0
    assert superbuild(sample, "release", "create", "R2").returncode == 0
    diff = superbuild(sample, "release", "diff", "R1", "R2", "--format", "json")
    assert diff.returncode == 0, diff.stderr
    changed = json.loads(diff.stdout)
    assert sorted(changed["targets"]) == ["el9", "fc42"]
    for target in ("el9", "fc42"):
        # base's commit moved: a new build (its Release carries the commit) = an upgrade;
        # client depends on it and was rebuilt too.
        upgraded = {c["package"] for c in changed["targets"][target]["upgraded"]}
        assert "base" in upgraded, changed["targets"][target]
        assert "tool" not in upgraded
