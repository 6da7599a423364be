"""The output repository: atomic collection and createrepo_c metadata."""

from __future__ import annotations

import gzip
import os
import re
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from superbuild import outrepo, proc
from tests.rpmtools import build_plain_rpm
from tests.test_crash import repo_problems


@pytest.mark.parametrize(
    ("name", "dest"),
    [
        pytest.param("a-1.0-1.x86_64.rpm", "rpms/x86_64/a-1.0-1.x86_64.rpm", id="x86_64"),
        pytest.param("a-b-1.0-1.1.gabc.noarch.rpm", "rpms/noarch/a-b-1.0-1.1.gabc.noarch.rpm"),
        pytest.param("a-1.0-1.fc40.src.rpm", "srpms/a-1.0-1.fc40.src.rpm", id="srpm"),
        pytest.param("a-1.0-1.nosrc.rpm", "srpms/a-1.0-1.nosrc.rpm", id="nosrc"),
    ],
)
def test_rpm_destination(name: str, dest: str) -> None:
    assert outrepo.rpm_destination(Path(name)) == dest


@pytest.mark.parametrize("name", ["a.rpm", "a-1.0-1.x86_64.deb", "noarch.rpm", "a-1.rpm"])
def test_rpm_destination_refuses_odd_names(name: str) -> None:
    with pytest.raises(outrepo.OutputRepoError, match="not an RPM file name"):
        outrepo.rpm_destination(Path(name))


def _fake_rpms(tmp_path: Path, names: list[str], content: bytes = b"rpm") -> list[Path]:
    d = tmp_path / "built"
    d.mkdir(exist_ok=True)
    for name in names:
        (d / name).write_bytes(content)
    return [d / n for n in names]


def test_collect_places_atomically_and_never_replaces_published_bytes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    names = ["a-1-1.x86_64.rpm", "a-debuginfo-1-1.x86_64.rpm", "a-1-1.src.rpm", "b-1-1.noarch.rpm"]
    assert outrepo.collect(out, _fake_rpms(tmp_path, names)) == [
        "rpms/noarch/b-1-1.noarch.rpm",
        "rpms/x86_64/a-1-1.x86_64.rpm",
        "rpms/x86_64/a-debuginfo-1-1.x86_64.rpm",
        "srpms/a-1-1.src.rpm",
    ]
    target = out / "rpms" / "x86_64" / "a-1-1.x86_64.rpm"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    published = target.read_bytes()
    # The same name with other bytes: a client that has the file would never see them.
    with pytest.raises(outrepo.OutputRepoError) as info:
        outrepo.collect(out, _fake_rpms(tmp_path, ["c-1-1.noarch.rpm", "a-1-1.x86_64.rpm"], b"x"))
    assert str(info.value).startswith(
        "rpms/x86_64/a-1-1.x86_64.rpm is already in the output repository"
    )
    assert "nothing was replaced" in str(info.value)
    assert target.read_bytes() == published
    assert not (out / "rpms" / "noarch" / "c-1-1.noarch.rpm").exists()  # all or nothing
    # The same bytes again: nothing to do.
    inode = target.stat().st_ino
    assert outrepo.collect(out, [target]) == ["rpms/x86_64/a-1-1.x86_64.rpm"]
    assert target.stat().st_ino == inode
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_collect_checks_every_name_before_copying(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(outrepo.OutputRepoError):
        outrepo.collect(out, _fake_rpms(tmp_path, ["a-1-1.x86_64.rpm", "README"]))
    assert not (out / "rpms").exists()


def test_concurrent_collects(tmp_path: Path) -> None:
    out = tmp_path / "out"
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            src = tmp_path / f"w{i}"
            src.mkdir()
            files = []
            for j in range(20):
                f = src / f"p{i}-{j}-1.{'noarch' if j % 2 else 'x86_64'}.rpm"
                f.write_bytes(os.urandom(64 * 1024))
                files.append(f)
            outrepo.collect(out, files)
            outrepo.collect_files(out, f"pkg{i % 3}", src)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(list((out / "rpms").rglob("*.rpm"))) == 160
    for i in range(3):
        assert len(list((out / "files" / f"pkg{i}").iterdir())) == 20
    assert sorted(p.name for p in (out / "files").iterdir()) == ["pkg0", "pkg1", "pkg2"]


def test_collect_files_swaps_the_whole_tree(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = tmp_path / "first"
    (first / "docs").mkdir(parents=True)
    (first / "docs" / "index.html").write_text("1")
    (first / ".hidden").write_text("h")
    (first / "link").symlink_to("docs/index.html")
    assert outrepo.collect_files(out, "web", first) == [
        "files/web/.hidden",
        "files/web/docs/index.html",
        "files/web/link",
    ]
    dest = out / "files" / "web"
    assert (dest / "link").is_symlink()
    second = tmp_path / "second"
    second.mkdir()
    (second / "new.txt").write_text("2")
    assert outrepo.collect_files(out, "web", second) == ["files/web/new.txt"]
    assert sorted(p.name for p in dest.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in (out / "files").iterdir()) == ["web"]


def test_refresh_without_repositories_does_nothing(tmp_path: Path) -> None:
    assert outrepo.refresh_metadata(tmp_path / "out") == []


def test_refresh_failure_names_the_repository(tmp_path: Path, fp: Any) -> None:
    out = tmp_path / "out"
    (out / "rpms").mkdir(parents=True)
    fp.pass_command([sys.executable, "-m", "superbuild.reaper", fp.any()])
    fp.register(["createrepo_c", fp.any()], returncode=2, stderr="Critical: disk on fire")
    with pytest.raises(proc.ProcessError) as info:
        outrepo.refresh_metadata(out)
    assert str(info.value) == (f"createrepo_c on {out / 'rpms'} exited 2: Critical: disk on fire")


def _primary_names(repo: Path) -> list[str]:
    repomd = (repo / "repodata" / "repomd.xml").read_text()
    href = re.search(r'href="(repodata/[^"]*primary\.xml\.gz)"', repomd)
    assert href is not None, repomd
    xml = gzip.decompress((repo / href.group(1)).read_bytes()).decode()
    return sorted(re.findall(r"<name>([^<]+)</name>", xml))


@pytest.mark.rpm
def test_refresh_metadata_with_real_rpms(tmp_path: Path) -> None:
    out = tmp_path / "out"
    outrepo.collect(out, build_plain_rpm(tmp_path / "one", "one"))
    assert outrepo.refresh_metadata(out) == [out / "rpms", out / "srpms"]
    assert _primary_names(out / "rpms") == ["one"]
    assert _primary_names(out / "srpms") == ["one"]

    # A second wave: --update adds the new package, concurrent refreshes wait for each other.
    outrepo.collect(out, build_plain_rpm(tmp_path / "two", "two"))
    errors: list[BaseException] = []

    def refresh() -> None:
        try:
            outrepo.refresh_metadata(out)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=refresh) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _primary_names(out / "rpms") == ["one", "two"]
    assert _primary_names(out / "srpms") == ["one", "two"]


def test_the_output_lock_is_reentrant_in_its_thread(tmp_path: Path) -> None:
    """Recovery refreshes the metadata under the lock it holds: no self-deadlock."""
    done = threading.Event()

    def nested() -> None:
        with outrepo.locked(tmp_path), outrepo.locked(tmp_path):
            done.set()

    worker = threading.Thread(target=nested, daemon=True)
    worker.start()
    worker.join(30)
    assert done.is_set(), "the second locked() waited for the first"


@pytest.mark.rpm
def test_recover_completes_a_journaled_refresh_without_deadlock(tmp_path: Path) -> None:
    """recover() holds the lock and refreshes: the flock is not taken twice (it hung)."""
    out = tmp_path / "out"
    rpm = build_plain_rpm(tmp_path / "b")
    outrepo.collect(out, rpm)  # journaled, never refreshed: a run killed here
    assert outrepo.pending(out)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; "
            "from superbuild import outrepo; print(outrepo.recover(Path(sys.argv[1])))",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "True"
    assert not outrepo.pending(out)
    assert _primary_names(out / "rpms") == ["plain"]


@pytest.mark.rpm
def test_a_file_a_killed_run_added_is_replaced_by_its_rebuild(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = build_plain_rpm(tmp_path / "b1")
    outrepo.collect(out, first)  # the run is killed before its refresh
    assert outrepo.recover(out)
    again = build_plain_rpm(tmp_path / "b2")  # same NVR, other build time
    binary = next(p for p in again if not p.name.endswith(".src.rpm"))
    published = out / outrepo.rpm_destination(binary)
    if published.read_bytes() == binary.read_bytes():
        pytest.skip("rpmbuild made identical bytes")
    outrepo.collect(out, again)
    assert published.read_bytes() == binary.read_bytes()
    outrepo.refresh_metadata(out)
    assert repo_problems(out) == []  # the metadata has the new checksum, not the old one
    # confirmed now: another rebuild under the same name is refused again
    third = build_plain_rpm(tmp_path / "b3")
    if any((out / outrepo.rpm_destination(p)).read_bytes() != p.read_bytes() for p in third):
        with pytest.raises(outrepo.OutputRepoError, match="already in the output repository"):
            outrepo.collect(out, third)


def test_recover_sweeps_debris_of_killed_runs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    debris = [
        out / "rpms" / ".repodata" / "primary.xml.gz",
        out / "srpms" / ".repodata" / "x",
        out / "rpms" / "noarch" / ".a-1-1.noarch.rpm.k2j3.tmp",
        out / "files" / "web" / ".index.html.x1.tmp",
        out / "files" / ".p123.abcd.old" / "index.html",
        out / "files" / ".web.zz.tmp" / "new" / "f",
    ]
    kept = [out / "files" / "web" / "index.html", out / "files" / "web" / ".htaccess"]
    for path in [*debris, *kept]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    assert not outrepo.recover(out)
    assert [p for p in debris if p.exists()] == []
    assert (
        not (out / "rpms" / ".repodata").exists() and not (out / "files" / ".web.zz.tmp").exists()
    )
    assert all(p.exists() for p in kept)
