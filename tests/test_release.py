"""``superbuild release``: real rpmbuild, createrepo_c, gpg and Debian's dnf as the client."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from superbuild.testing.sample import SampleSuperproject, make_sample_superproject, run_git
from tests import rpmtools
from tests.test_build import edit_package, installed, write_manifests
from tests.test_pipeline_rpm import gpg_home  # noqa: F401 - a fixture

pytestmark = pytest.mark.rpm

PRODUCT = {"base": [], "client": ["base"], "service": ["client"], "tool": []}
BUILD = ("build", "--builder", "rpmbuild", "-j", "2")


@pytest.fixture
def sample(tmp_path: Path) -> SampleSuperproject:
    manifests = write_manifests(tmp_path / "manifests", PRODUCT)
    # tool is a rebuilt third-party package: it goes to deps/misc, as in the reference.
    with (manifests / "tool.yaml").open("a") as fh:
        fh.write("repo: deps/misc\n")
    return make_sample_superproject(tmp_path / "sp", manifests, settings=None)


def sb(
    sample: SampleSuperproject, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "superbuild", *args],
        cwd=sample.path,
        env={**sample.env, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def ok(sample: SampleSuperproject, *args: str) -> str:
    result = sb(sample, *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def releases_dir(sample: SampleSuperproject) -> Path:
    return sample.path / ".superbuild" / "releases"


def dnf(root: Path, release: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Debian's dnf with the binary repositories of ``release`` (nothing else)."""
    repos = {
        f"r{i}": release / r["path"]
        for i, r in enumerate(json.loads((release / "release.json").read_text())["repositories"])
        if r["kind"] == "binary"
    }
    return rpmtools.dnf(root, repos, *args)


def rpms(release: Path) -> dict[str, os.stat_result]:
    """Every RPM of a release: path relative to it -> its stat."""
    return {
        p.relative_to(release).as_posix(): p.stat()
        for p in release.rglob("*.rpm")
        if "repodata" not in p.parts
    }


def test_two_releases_a_real_client_upgrades_exactly_what_the_diff_says(
    sample: SampleSuperproject, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    # Nothing built yet: the release names every package to build.
    refused = sb(sample, "release", "create", "R1")
    assert refused.returncode == 2
    assert "base client service tool" in refused.stderr
    assert "build them first: superbuild build --head HEAD" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    ok(sample, *BUILD, "--all")
    out = ok(sample, "release", "create", "R1")
    r1 = releases_dir(sample) / "R1"
    files1 = rpms(r1)
    # Layout: per target and repo:, binary and source RPMs apart, each a repository.
    layout = {p.rsplit("/", 1)[0] for p in files1}
    assert layout == {
        "default/main/noarch",
        "default/main-srpms",
        "default/deps/misc/noarch",
        "default/deps/misc-srpms",
    }
    for repo in ("main", "main-srpms", "deps/misc", "deps/misc-srpms"):
        assert (r1 / "default" / repo / "repodata" / "repomd.xml").is_file(), repo
    total1 = sum(s.st_size for s in files1.values())
    assert f"added {total1} bytes" in out  # the first release: every file is new

    data1 = json.loads((r1 / "release.json").read_text())
    assert data1["superproject_commit"] == sample.head()
    assert data1["targets"] == ["default"]
    by_name = {p["name"]: p for p in data1["packages"]}
    assert set(by_name) == set(PRODUCT)
    links = sample.gitlinks()
    for name, pkg in by_name.items():
        assert pkg["commit"] == links[f"repos/{name}"]
        assert pkg["repo"] == ("deps/misc" if name == "tool" else "main")
        for rpm in pkg["rpms"]:
            assert files1[rpm["path"]].st_size == rpm["size"]
            assert rpm["nevra"].startswith(f"{name}-")
            assert len(rpm["sha256"]) == 64
    listing = ok(sample, "release", "show", "R1")
    rows = [line.split("\t") for line in listing.splitlines() if not line.startswith("#")]
    assert sorted(r[1] for r in rows) == sorted(files1)
    for target, path, nevra, name, commit in rows:
        assert (target, commit) == ("default", by_name[name]["commit"])
        assert nevra in {rpm["nevra"] for rpm in by_name[name]["rpms"]}, path
    assert json.loads(ok(sample, "release", "show", "R1", "--format", "json")) == data1

    done = dnf(root, r1, "install", "service", "tool")
    assert done.returncode == 0, done.stderr
    before = installed(root)
    assert set(before) == set(PRODUCT)

    # base changes; until it is rebuilt, R2 is refused with the packages to build.
    edit_package(sample, "base", "payload.txt", "base, second edition\n")
    subject = run_git(sample.work_tree("base"), "log", "-1", "--format=%h %s", env=sample.env)
    refused = sb(sample, "release", "create", "R2")
    assert refused.returncode == 2 and "base client service" in refused.stderr, refused.stderr
    assert "tool" not in refused.stderr.split("build them first")[0].split(":")[-1]
    ok(sample, *BUILD)
    out = ok(sample, "release", "create", "R2")
    r2 = releases_dir(sample) / "R2"
    files2 = rpms(r2)

    # Unchanged files are the same inodes as in R1; bytes added are exactly the new ones.
    inodes1 = {s.st_ino for s in files1.values()}
    new = {p: s for p, s in files2.items() if s.st_ino not in inodes1}
    assert {p for p, s in files2.items() if s.st_ino in inodes1} == {
        p for p in files2 if "/tool-" in p
    }
    for path in (p for p in files2 if "/tool-" in p):
        assert files2[path].st_ino == files1[path].st_ino
    assert {p.rsplit("/", 1)[1].split("-")[0] for p in new} == {"base", "client", "service"}
    assert f"added {sum(s.st_size for s in new.values())} bytes" in out

    changes = json.loads(ok(sample, "release", "diff", "R1", "R2", "--format", "json"))
    kinds = changes["targets"]["default"]
    upgraded = {c["package"]: c for c in kinds["upgraded"]}
    assert set(upgraded) == {"base", "client", "service"}
    assert kinds["added"] == kinds["removed"] == kinds["downgraded"] == kinds["rebuilt"] == []
    assert changes["unchanged"] == 1

    done = dnf(root, r2, "upgrade", "--refresh")
    assert done.returncode == 0, done.stderr
    after = installed(root)
    assert {n for n in after if after[n] != before[n]} == set(upgraded)
    for name, change in upgraded.items():
        assert (before[name], after[name]) == (change["old"], change["new"])

    text = ok(sample, "release", "diff", "R1", "R2", "--log")
    assert re.search(r"upgraded\s+base \S+ -> \S+", text), text
    assert subject in text  # the component's commits between the two releases
    assert "1 unchanged" in text

    # Releases never change; list shows both, oldest first.
    again = sb(sample, "release", "create", "R1")
    assert again.returncode == 2 and "exists" in again.stderr
    assert [line.split("\t")[0] for line in ok(sample, "release", "list").splitlines()] == [
        "R1",
        "R2",
    ]

    # Deleting R1 frees the pool files only R1 used (base, client, service of the first
    # build); R2's and the latest builds' stay.
    pool = sample.path / ".superbuild" / "pool"
    pooled = {p.name for p in pool.rglob("*") if p.is_file()}
    out = ok(sample, "release", "delete", "R1")
    assert "removed 6 files" in out, out
    assert not (releases_dir(sample) / "R1").exists()
    left = {p.name for p in pool.rglob("*") if p.is_file()}
    r2_data = json.loads((r2 / "release.json").read_text())
    assert left == {rpm["sha256"] for p in r2_data["packages"] for rpm in p["rpms"]}
    assert left < pooled


def test_a_downgrade_is_refused_unless_allowed_and_then_recorded(
    sample: SampleSuperproject,
) -> None:
    ok(sample, *BUILD, "--packages-select", "tool")
    # The first release of a product with packages never built: only tool is ready.
    refused = sb(sample, "release", "create", "R1")
    assert refused.returncode == 2
    assert "base client service (build them first" in refused.stderr
    ok(sample, *BUILD, "--all")
    ok(sample, "release", "create", "R1")
    spec = sample.work_tree("tool") / "tool.spec"
    text = re.sub(r"^Version:\s*\S+", "Version:        0.0.1", spec.read_text(), flags=re.M)
    edit_package(sample, "tool", "tool.spec", text)
    ok(sample, *BUILD)
    old = json.loads((releases_dir(sample) / "R1" / "release.json").read_text())
    old_evr = next(p for p in old["packages"] if p["name"] == "tool")

    refused = sb(sample, "release", "create", "R2")
    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()
    assert f"tool (default) would go from {old_evr['version']}-{old_evr['release']}" in line
    assert "down to 0.0.1-" in line and "bump Epoch:" in line and "--allow-downgrade" in line
    assert not (releases_dir(sample) / "R2").exists()

    result = sb(sample, "release", "create", "R2", "--allow-downgrade")
    assert result.returncode == 0, result.stderr
    assert "goes down" in result.stderr
    data = json.loads((releases_dir(sample) / "R2" / "release.json").read_text())
    assert data["allow_downgrade"] is True and data["base"] == "R1"
    assert [d["package"] for d in data["downgrades"]] == ["tool"]
    changes = json.loads(ok(sample, "release", "diff", "R1", "R2", "--format", "json"))
    assert [c["package"] for c in changes["targets"]["default"]["downgraded"]] == ["tool"]
    # The check is against --base when given: R2 itself has the low version.
    ok(sample, "release", "create", "R3", "--base", "R2")


# --------------------------------------------------------------------------- crashes


def killing_createrepo(tmp_path: Path) -> dict[str, str]:
    """A PATH whose createrepo_c does its job, then SIGKILLs superbuild (its parent)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real = subprocess.run(
        ["sh", "-c", "command -v createrepo_c"], capture_output=True, text=True, check=True
    ).stdout.strip()
    wrapper = bin_dir / "createrepo_c"
    wrapper.write_text(f'#!/bin/sh\n"{real}" "$@"\nkill -KILL $PPID\nsleep 10\n')
    wrapper.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


@pytest.fixture
def built(sample: SampleSuperproject) -> SampleSuperproject:
    ok(sample, *BUILD, "--all")
    return sample


def test_a_killed_create_leaves_no_release(built: SampleSuperproject, tmp_path: Path) -> None:
    killed = sb(built, "release", "create", "R1", env=killing_createrepo(tmp_path))
    assert killed.returncode == -9
    folder = releases_dir(built)
    assert visible(folder) == []
    assert [p for p in folder.iterdir() if p.name.startswith(".tmp-")]  # its debris, hidden
    assert ok(built, "release", "list").startswith("no releases")
    assert sb(built, "release", "show", "R1").returncode == 2
    ok(built, "release", "create", "R1")  # the name is free; the debris goes
    assert visible(folder) == ["R1"]
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp-")]


def test_publish_is_atomic_under_sigkill(built: SampleSuperproject, tmp_path: Path) -> None:
    ok(built, "release", "create", "R1")
    edit_package(built, "tool", "payload.txt", "tool, second edition\n")
    ok(built, *BUILD)
    ok(built, "release", "create", "R2")
    (tmp_path / "a-file").write_text("")
    bad = sb(built, "release", "publish", "R1", str(tmp_path / "a-file" / "www"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "a-file" in bad.stderr, bad.stderr
    dest = tmp_path / "www"
    out = ok(built, "release", "publish", "R1", str(dest))
    assert "published release R1" in out
    assert str((dest / "current").readlink()) == "R1"
    trials = int(os.environ.get("SUPERBUILD_CRASH_TRIALS", "4"))
    import random
    import time

    for trial in range(trials):
        proc = subprocess.Popen(
            [sys.executable, "-m", "superbuild", "release", "publish", "R2", str(dest)],
            cwd=built.path,
            env=built.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(random.uniform(0.2, 0.8))
        proc.kill()
        proc.wait()
        # Whatever the moment: current is a whole release, and nothing half is visible.
        current = str((dest / "current").readlink())
        assert current in ("R1", "R2"), trial
        assert json.loads((dest / current / "release.json").read_text())["name"] == current
        assert set(visible(dest)) <= {"R1", "R2", "current"}
        for name in visible(dest):
            if name != "current":
                assert (dest / name / "release.json").is_file()
        if current == "R2":
            break
    ok(built, "release", "publish", "R2", str(dest))
    assert str((dest / "current").readlink()) == "R2"
    assert not [p for p in dest.iterdir() if p.name.startswith(".tmp-")]
    # A client reading current gets R2's repositories.
    done = dnf(tmp_path / "root", dest / "current", "install", "tool")
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------- signing


def test_repomd_is_signed_with_the_settings_key(
    tmp_path: Path,
    gpg_home: tuple[str, str],  # noqa: F811 - the fixture imported above
) -> None:
    home, user = gpg_home
    manifests = write_manifests(tmp_path / "manifests", {"solo": []})
    settings = tmp_path / "superbuild.yaml"
    settings.write_text(f"sign:\n  key: {json.dumps(user)}\n  gpg_home: {json.dumps(home)}\n")
    sample = make_sample_superproject(tmp_path / "sp", manifests, settings=settings)
    ok(sample, *BUILD, "--all")
    ok(sample, "release", "create", "R1")
    env = {**os.environ, "GNUPGHOME": home}
    for repo in ("main", "main-srpms"):
        repomd = releases_dir(sample) / "R1" / "default" / repo / "repodata" / "repomd.xml"
        check = subprocess.run(
            ["gpg", "--verify", f"{repomd}.asc", repomd],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stderr
        assert "Good signature" in check.stderr
    # A real client that checks the repository's signature (repo_gpgcheck) with the
    # public key: dnf installs from the signed repository, and refuses it once repomd.xml
    # no longer matches its signature.
    key = tmp_path / "pub.asc"
    exported = subprocess.run(
        ["gpg", "--armor", "--export", user], env=env, capture_output=True, check=True
    )
    key.write_bytes(exported.stdout)
    main = releases_dir(sample) / "R1" / "default" / "main"

    def install(root: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *("dnf", "-y", "-q", f"--installroot={root}", "--releasever=1"),
                *("--setopt=reposdir=/dev/null", f"--setopt=cachedir={root / 'cache'}"),
                f"--repofrompath=r,{main.as_uri()}",
                *("--repo=r", "--setopt=r.repo_gpgcheck=1", "--setopt=r.gpgcheck=0"),
                f"--setopt=r.gpgkey={key.as_uri()}",
                *("install", "solo"),
            ],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    good = install(tmp_path / "root-good")
    assert good.returncode == 0, good.stderr
    repomd = main / "repodata" / "repomd.xml"
    repomd.write_text(repomd.read_text().replace("<revision>", "<revision>1"))
    bad = install(tmp_path / "root-bad")
    assert bad.returncode != 0, bad.stdout
    assert "signature" in bad.stderr.lower() or "gpg" in bad.stderr.lower(), bad.stderr
