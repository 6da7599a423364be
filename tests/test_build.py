"""``superbuild build`` end to end with real rpmbuild and createrepo_c."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from superbuild.testing.sample import SampleSuperproject, make_sample_superproject, run_git
from tests import rpmtools
from tests.helpers import alive, descendants

pytestmark = pytest.mark.rpm

PRODUCT = {
    "base": [],
    "client": ["base"],
    "service": ["client"],
    "tool": [],
}


def write_manifests(folder: Path, product: dict[str, list[str]]) -> Path:
    for name, requires in product.items():
        (folder / f"{name}.yaml").parent.mkdir(parents=True, exist_ok=True)
        req = f"requires: [{', '.join(requires)}]\n" if requires else ""
        (folder / f"{name}.yaml").write_text(f"path: repos/{name}\n{req}")
    return folder


@pytest.fixture
def sample(tmp_path: Path) -> SampleSuperproject:
    manifests = write_manifests(tmp_path / "manifests", PRODUCT)
    return make_sample_superproject(tmp_path / "sp", manifests, settings=None)


def superbuild(
    sample: SampleSuperproject,
    *args: str,
    stdin: int | None = subprocess.DEVNULL,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "superbuild", *args],
        cwd=sample.path,
        env=sample.env,
        capture_output=True,
        text=True,
        check=False,
        **({"input": input} if input is not None else {"stdin": stdin}),
    )


def edit_package(
    sample: SampleSuperproject, name: str, path: str, text: str, *, record: bool = True
) -> str:
    """Commit a file in a submodule (and record the new commit in the superproject)."""
    tree = sample.work_tree(name)
    (tree / path).write_text(text)
    run_git(tree, "add", "-A", env=sample.env)
    run_git(tree, "commit", "-q", "-m", f"edit {path}", env=sample.env)
    run_git(tree, "push", "-q", "origin", "HEAD:refs/heads/main", env=sample.env)
    sha = run_git(tree, "rev-parse", "HEAD", env=sample.env)
    if record:
        sample.git("add", "--", sample.packages[name].path)
        sample.git("commit", "-q", "-m", f"record {name}")
    return sha


def rpm_query(rpm: Path, fmt: str) -> str:
    return subprocess.run(
        ["rpm", "-qp", "--qf", fmt, str(rpm)], capture_output=True, text=True, check=True
    ).stdout


def rpm_file(rpm: Path, member: str) -> str:
    cpio = subprocess.run(["rpm2cpio", str(rpm)], capture_output=True, check=True).stdout
    out = subprocess.run(
        ["cpio", "-i", "--quiet", "--to-stdout", f".{member}"],
        input=cpio,
        capture_output=True,
        check=True,
    ).stdout
    return out.decode()


def test_build_all_exact_recorded_commits(sample: SampleSuperproject, tmp_path: Path) -> None:
    recorded = sample.gitlinks()
    # The base library's checkout is ahead of the recorded commit and dirty: ignored.
    edit_package(sample, "base", "README", "AHEAD OF THE SUPERPROJECT\n", record=False)
    (sample.work_tree("base") / "README").write_text("DIRTY WORK TREE\n")
    report_path = tmp_path / "report.json"
    junit = tmp_path / "junit.xml"
    result = superbuild(
        sample,
        "build",
        "--all",
        "-j",
        "2",
        "--builder",
        "rpmbuild",
        "--report",
        str(report_path),
        "--junit",
        str(junit),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(report_path.read_text())
    assert report["result"] == "success"
    assert report["head"] == sample.head()
    assert [p["package"] for p in report["packages"]] == ["base", "tool", "client", "service"]
    output = sample.path / ".superbuild" / "output"
    for p in report["packages"]:
        assert p["status"] == "succeeded"
        assert p["commit"] == recorded[f"repos/{p['package']}"]
        assert list(p["stages"]) == ["source", "srpm", "rpm", "collect"]
        assert all(seconds > 0 for seconds in p["stages"].values())
        rpms = [Path(a) for a in p["artifacts"]]
        assert {r.name.endswith(".src.rpm") for r in rpms} == {True, False}
        binary = next(r for r in rpms if not r.name.endswith(".src.rpm"))
        assert binary.parent == output / "rpms" / "noarch"
        name, version, release, vcs = rpm_query(
            binary, "%{NAME} %{VERSION} %{RELEASE} %{VCS}"
        ).split()
        assert name == p["package"] and version == "1.0.0"
        assert release == f"1.1.g{p['commit'][:7]}"
        assert p["commit"] in vcs
    base_rpm = next(output.glob("rpms/noarch/base-*.rpm"))
    readme = rpm_file(base_rpm, "/usr/share/base/README")
    assert "AHEAD" not in readme and "DIRTY" not in readme
    assert (output / "rpms" / "repodata" / "repomd.xml").is_file()
    assert (output / "srpms" / "repodata" / "repomd.xml").is_file()
    # nothing half-written, nothing left in scratch
    assert not [f for f in output.rglob("*") if f.name.startswith(".") and f.suffix != ".lock"]
    assert not list((sample.path / ".superbuild" / "work").rglob("*.rpm"))
    assert (sample.path / ".superbuild" / "logs" / "latest").is_symlink()
    cases = ET.parse(junit).getroot().findall(".//testcase")
    assert [c.get("name") for c in cases] == ["base", "tool", "client", "service"]
    assert (
        sample.git("status", "--porcelain", "--ignore-submodules=all") == ""
    )  # .superbuild ignored


def test_rebuild_only_affected_and_release_sorts_newer(sample: SampleSuperproject) -> None:
    assert superbuild(sample, "build", "--all", "--builder", "rpmbuild").returncode == 0
    old = next((sample.path / ".superbuild/output/rpms/noarch").glob("client-*.rpm"))
    sample.bump("client", "Fix the client")
    result = superbuild(sample, "build", "--builder", "rpmbuild", "--report", "r.json")
    assert result.returncode == 0, result.stderr
    report = json.loads((sample.path / "r.json").read_text())
    assert [p["package"] for p in report["packages"]] == ["client", "service"]
    new = next(Path(a) for a in report["packages"][0]["artifacts"] if not a.endswith(".src.rpm"))
    old_evr = rpm_query(old, "%{VERSION}-%{RELEASE}")
    new_evr = rpm_query(new, "%{VERSION}-%{RELEASE}")
    cmp = subprocess.run(
        ["rpm", "--eval", f"%{{lua: print(rpm.vercmp('{new_evr}', '{old_evr}'))}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert cmp == "1", (new_evr, old_evr)


FAILING_BUILD = "exit 3"
READS_STDIN = "cat > stdin-seen.txt\ntest ! -s stdin-seen.txt"


def break_spec(sample: SampleSuperproject, name: str, build_section: str) -> None:
    spec = sample.work_tree(name) / f"{name}.spec"
    text = spec.read_text().replace("%build\n", f"%build\n{build_section}\n", 1)
    edit_package(sample, name, f"{name}.spec", text)


def test_failure_skips_dependents_and_independent_succeeds(
    sample: SampleSuperproject, tmp_path: Path
) -> None:
    break_spec(sample, "client", FAILING_BUILD)
    result = superbuild(
        sample,
        "build",
        "--all",
        "-j",
        "2",
        "--builder",
        "rpmbuild",
        "--report",
        str(tmp_path / "r.json"),
        "--junit",
        str(tmp_path / "j.xml"),
    )
    assert result.returncode == 1
    report = json.loads((tmp_path / "r.json").read_text())
    status = {p["package"]: (p["status"], p["reason"]) for p in report["packages"]}
    assert report["result"] == "failure"
    assert status["base"][0] == "succeeded" and status["tool"][0] == "succeeded"
    assert status["client"][0] == "failed"
    assert "client" in status["client"][1] and "rpm" in status["client"][1]
    assert status["service"] == ("skipped", "dependency client failed")
    stages = {p["package"]: list(p["stages"]) for p in report["packages"]}
    assert stages["base"] == ["source", "srpm", "rpm", "collect"] and stages["service"] == []
    failed = next(p for p in report["packages"] if p["package"] == "client")
    assert failed["log"].endswith("rpm.log")
    assert "client failed" in result.stderr and "exit 3" in result.stderr  # the log tail
    junit = ET.parse(tmp_path / "j.xml").getroot()
    failure = junit.find(".//testcase[@name='client']/failure")
    assert failure is not None and "exit 3" in (failure.text or "")
    assert junit.find(".//testcase[@name='service']/skipped") is not None


def test_fail_fast_skips_what_has_not_started(sample: SampleSuperproject, tmp_path: Path) -> None:
    break_spec(sample, "base", FAILING_BUILD)
    result = superbuild(
        sample,
        "build",
        "--all",
        "-j",
        "1",
        "--fail-fast",
        "--builder",
        "rpmbuild",
        "--report",
        str(tmp_path / "r.json"),
    )
    assert result.returncode == 1
    report = json.loads((tmp_path / "r.json").read_text())
    status = {p["package"]: p["status"] for p in report["packages"]}
    assert status["base"] == "failed"
    assert status["tool"] in ("skipped", "cancelled")  # never built after the failure
    assert status["client"] == "skipped" and status["service"] == "skipped"


def repository_packages(repo: Path) -> set[str]:
    """Names of the packages the repository's metadata lists (what a yum client sees)."""
    import gzip

    repomd = ET.parse(repo / "repodata" / "repomd.xml").getroot()
    ns = {"r": "http://linux.duke.edu/metadata/repo", "c": "http://linux.duke.edu/metadata/common"}
    primary = next(
        d.find("r:location", ns) for d in repomd.findall("r:data", ns) if d.get("type") == "primary"
    )
    assert primary is not None
    xml = gzip.decompress((repo / primary.attrib["href"]).read_bytes())
    return {name.text or "" for name in ET.fromstring(xml).findall("c:package/c:name", ns)}


def test_fail_fast_still_refreshes_the_repository_metadata(
    sample: SampleSuperproject, tmp_path: Path
) -> None:
    """After --fail-fast, what did succeed is in the output repository's metadata.

    (The cancellation of the failed run used to be process-wide and refused the final
    createrepo_c: "repository metadata not refreshed: interrupted".)
    """
    break_spec(sample, "tool", FAILING_BUILD)  # built last at -j1: the others succeed first
    output = tmp_path / "out"
    result = superbuild(
        sample,
        "build",
        "--all",
        "-j",
        "1",
        "--fail-fast",
        "--builder",
        "rpmbuild",
        "--output",
        str(output),
        "--report",
        str(tmp_path / "r.json"),
    )
    assert result.returncode == 1, result.stderr
    assert "metadata not refreshed" not in result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert "metadata_error" not in report
    status = {p["package"]: p["status"] for p in report["packages"]}
    assert status == {
        "base": "succeeded",
        "client": "succeeded",
        "service": "succeeded",
        "tool": "failed",
    }
    assert repository_packages(output / "rpms") == {"base", "client", "service"}


def test_spec_reading_stdin_neither_hangs_nor_eats_callers_stdin(
    sample: SampleSuperproject,
) -> None:
    break_spec(sample, "tool", READS_STDIN)
    # superbuild's own stdin holds data; the %build `cat` must get /dev/null, not this.
    result = superbuild(
        sample,
        "build",
        "--packages-select",
        "tool",
        "--builder",
        "rpmbuild",
        input="DATA FOR THE CALLER\n" * 1000,
    )
    assert result.returncode == 0, result.stderr


def test_dry_run_builds_nothing(sample: SampleSuperproject) -> None:
    result = superbuild(sample, "build", "--all", "--dry-run")
    assert result.returncode == 0
    assert "wave 1: base, tool" in result.stdout
    assert not (sample.path / ".superbuild" / "output").exists()


def test_missing_submodule_commits_fail_before_anything_is_built(
    sample: SampleSuperproject, tmp_path: Path
) -> None:
    """All missing commits in one line with the one command that fixes them, exit 2."""
    shutil.rmtree(sample.work_tree("tool"))
    shutil.rmtree(sample.work_tree("service"))
    output = tmp_path / "out"
    build = ("build", "--all", "--builder", "rpmbuild", "--output", str(output))
    result = superbuild(sample, *build, "--report", str(tmp_path / "r.json"))
    assert result.returncode == 2, result.stderr
    [line] = [x for x in result.stderr.splitlines() if x.startswith("superbuild: error:")]
    assert "2 packages cannot be built" in line
    assert "repos/service (package service): not initialized" in line
    assert line.endswith("run git submodule update --init repos/service repos/tool")
    assert "Traceback" not in result.stderr
    assert not output.exists() or not list(output.rglob("*.rpm"))  # nothing was built
    assert not (tmp_path / "r.json").exists()


def test_unusable_report_and_output_paths_fail_before_the_build(
    sample: SampleSuperproject, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("x")
    result = superbuild(
        sample,
        *("build", "--all", "--builder", "rpmbuild", "--output", str(tmp_path / "file")),
        *("--report", str(tmp_path / "no" / "such" / "r.json"), "--junit", str(tmp_path)),
    )
    assert result.returncode == 2, result.stderr
    errors = [x for x in result.stderr.splitlines() if x.startswith("superbuild: error:")]
    assert errors == [
        f"superbuild: error: --output {tmp_path / 'file'}: exists and is not a folder",
        f"superbuild: error: --report {tmp_path / 'no/such/r.json'}: its folder "
        f"{tmp_path / 'no/such'} does not exist",
        f"superbuild: error: --junit {tmp_path}: is a folder: name a file",
    ]
    assert not (tmp_path / "no").exists()
    assert "Traceback" not in result.stderr


def test_missing_build_tools_fail_before_the_build(
    sample: SampleSuperproject, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("git", "createrepo_c", "sh", "rpm"):  # everything but rpmbuild
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    env = {**sample.env, "PATH": str(bin_dir)}
    result = subprocess.run(
        [sys.executable, "-m", "superbuild", "build", "--all", "--builder", "rpmbuild"],
        cwd=sample.path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "superbuild: error: missing tools for this build: rpmbuild (Debian: rpm; Fedora: rpm-build)"
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_interrupt_kills_builds_and_exits_130(
    sample: SampleSuperproject, tmp_path: Path, sig: int
) -> None:
    break_spec(sample, "tool", "sleep 60")
    break_spec(sample, "base", "sleep 60")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "superbuild",
            "build",
            "--all",
            "-j",
            "2",
            "--builder",
            "rpmbuild",
            "--report",
            str(tmp_path / "r.json"),
        ],
        cwd=sample.path,
        env=sample.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        sleepers: set[int] = set()
        while time.monotonic() < deadline:
            kids = descendants(proc.pid)
            names = subprocess.run(
                ["ps", "-o", "pid=,args=", "-p", ",".join(map(str, kids)) or "0"],
                check=False,
                capture_output=True,
                text=True,
            ).stdout
            sleepers = {int(line.split()[0]) for line in names.splitlines() if "sleep 60" in line}
            if len(sleepers) == 2:
                break
            time.sleep(0.2)
        assert len(sleepers) == 2, "both builds should be sleeping in %build"
        family = descendants(proc.pid)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert [p for p in family if alive(p)] == []
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["result"] == "interrupted"
    status = {p["package"]: p["status"] for p in report["packages"]}
    assert status["base"] == "cancelled" and status["tool"] == "cancelled"
    assert status["client"] == "cancelled" and status["service"] == "cancelled"
    output = sample.path / ".superbuild" / "output"
    assert not [
        f
        for f in output.rglob("*")
        if f.is_file() and f.name.startswith(".") and f.suffix != ".lock"
    ]


def dnf(root: Path, output: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Debian's dnf on the output repository, in an installroot of its own."""
    return rpmtools.dnf(root, {"superbuild": output / "rpms"}, *args)


def installed(root: Path) -> dict[str, str]:
    out = subprocess.run(
        ["rpm", "--root", str(root), "-qa", "--qf", "%{NAME} %{VERSION}-%{RELEASE}\n"],
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def test_a_real_client_installs_the_product_and_upgrades_every_rebuilt_package(
    sample: SampleSuperproject, tmp_path: Path
) -> None:
    output, root = tmp_path / "out", tmp_path / "root"
    build = ("build", "--builder", "rpmbuild", "-j", "2", "--output", str(output))
    result = superbuild(sample, *build, "--all")
    assert result.returncode == 0, result.stderr
    done = dnf(root, output, "install", "service", "tool")
    assert done.returncode == 0, done.stderr
    before = installed(root)
    assert set(before) == {"base", "client", "service", "tool"}  # Requires pulled in

    # base changes: client and service are rebuilt at their unchanged commits.
    edit_package(sample, "base", "payload.txt", "base, second edition\n")
    result = superbuild(sample, *build, "--report", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    rebuilt = {p["package"]: p["rebuild"] for p in report["packages"]}
    assert rebuilt == {"base": 0, "client": 1, "service": 1}

    done = dnf(root, output, "upgrade", "--refresh")
    assert done.returncode == 0, done.stderr
    after = installed(root)
    assert {n for n in after if after[n] != before[n]} == {"base", "client", "service"}
    assert after["tool"] == before["tool"]
    assert after["client"] == before["client"] + ".1"
