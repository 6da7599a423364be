"""Helpers for the pipeline and output-repository tests: real git repos, RPM inspection."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from superbuild.package import Package
from superbuild.pipelines.api import BuildContext
from superbuild.pipelines.rpm.options import RpmOptions

GIT_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_AUTHOR_NAME": "Superbuild Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Superbuild Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "LC_ALL": "C",
}


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` for a test; its stdout, stripped."""
    out = subprocess.run(
        ["git", "-C", os.fspath(repo), "-c", "protocol.file.allow=always", *args],
        env=GIT_ENV,
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    return out.stdout.decode().strip()


def init_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    return path


def write_files(repo: Path, files: Mapping[str, str | bytes]) -> None:
    for name, content in files.items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)


def commit_files(repo: Path, files: Mapping[str, str | bytes], message: str = "change") -> str:
    """Write ``files``, commit them, return the new commit id."""
    write_files(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-gpg-sign", "-m", message)
    return git(repo, "rev-parse", "HEAD")


HELLO_SPEC = """\
Name:           hello
Version:        1.0
Release:        {release}
Summary:        superbuild test package
License:        MIT
BuildArch:      noarch
BuildRequires:  superbuild-test-dependency-that-is-not-installed
Source0:        %{{name}}-%{{version}}.tar.gz
Source1:        hello.conf

%description
A package built by the superbuild tests.

%prep
%setup -q

%build
{build}

%install
mkdir -p %{{buildroot}}/usr/share/hello
install -m 0644 payload.txt %{{buildroot}}/usr/share/hello/payload.txt
install -m 0644 %{{SOURCE1}} %{{buildroot}}/usr/share/hello/hello.conf

%files
/usr/share/hello/payload.txt
/usr/share/hello/hello.conf
"""


def hello_spec(build: str = "true", release: str = "1%{?dist}") -> str:
    return HELLO_SPEC.format(build=build, release=release)


def make_package(name: str = "hello", **fields: Any) -> Package:
    defaults: dict[str, Any] = {"path": f"repos/{name}", "manifest": f"manifests/{name}.yaml"}
    return Package(name=name, **{**defaults, **fields})


def make_context(
    tmp_path: Path,
    package: Package,
    commit: str,
    source_repo: Path,
    *,
    run: str = "run1",
    **fields: Any,
) -> BuildContext:
    """A context whose output, work and log dirs live under ``tmp_path``.

    ``fields`` may hold :class:`RpmOptions` fields (``builder=``, ``sign_key=``, ...) for
    an rpm package; the rest are :class:`BuildContext` fields.
    """
    rpm_fields = {k: fields.pop(k) for k in list(fields) if k in RpmOptions.__dataclass_fields__}
    if package.pipeline == "rpm" and "options" not in fields:
        fields["options"] = RpmOptions(**rpm_fields)
    return BuildContext(
        package=package,
        commit=commit,
        source_repo=source_repo,
        output=tmp_path / "output",
        work_dir=tmp_path / "work" / run / package.name,
        log_dir=tmp_path / "logs" / run / package.name,
        **fields,
    )


def rpm_query(path: Path, fmt: str) -> str:
    out = subprocess.run(
        ["rpm", "-qp", "--nosignature", "--nodigest", "--qf", fmt, os.fspath(path)],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    return out.stdout.decode()


def vercmp(a: str, b: str) -> int:
    """rpm's own comparison of two versions or releases: 1, 0 or -1."""
    out = subprocess.run(
        ["rpm", "--eval", f'%{{lua: print(rpm.vercmp("{a}", "{b}"))}}'],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    return int(out.stdout.decode().strip())


def _align4(n: int) -> int:
    return (n + 3) & ~3


def rpm_payload(path: Path) -> dict[str, bytes]:
    """Regular files in an RPM's payload (``rpm2cpio``, newc format): path -> content."""
    data = subprocess.run(
        ["rpm2cpio", os.fspath(path)], check=True, capture_output=True, stdin=subprocess.DEVNULL
    ).stdout
    files: dict[str, bytes] = {}
    pos = 0
    while True:
        header = data[pos : pos + 110]
        assert header[:6] in (b"070701", b"070702"), f"not a newc cpio header: {header[:6]!r}"
        fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name = data[pos + 110 : pos + 110 + namesize - 1].decode()
        pos = _align4(pos + 110 + namesize)
        content = data[pos : pos + size]
        pos = _align4(pos + size)
        if name == "TRAILER!!!":
            return files
        if mode & 0o170000 == 0o100000:
            files["/" + name.removeprefix("./").lstrip("/")] = content


def build_plain_rpm(top: Path, name: str = "plain", version: str = "1.0") -> list[Path]:
    """A minimal noarch binary RPM and its SRPM built with ``rpmbuild -ba`` (no sources)."""
    spec = top / f"{name}.spec"
    top.mkdir(parents=True, exist_ok=True)
    spec.write_text(
        f"Name: {name}\nVersion: {version}\nRelease: 1\nSummary: t\nLicense: MIT\n"
        "BuildArch: noarch\n%description\nt\n%install\nmkdir -p %{buildroot}/usr/share/t\n"
        f"echo {name} > %{{buildroot}}/usr/share/t/{name}\n%files\n/usr/share/t/{name}\n"
    )
    subprocess.run(
        ["rpmbuild", "-ba", "--define", f"_topdir {top}", os.fspath(spec)],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    return sorted(top.glob("RPMS/*/*.rpm")) + sorted(top.glob("SRPMS/*.rpm"))


def dnf(root: Path, repos: Mapping[str, Path], *args: str) -> subprocess.CompletedProcess[str]:
    """Debian's dnf with only ``repos`` (name -> folder), in an installroot of its own
    (its cache next to it), no GPG check: the real client of the repositories we make."""
    return subprocess.run(
        [
            *("dnf", "-y", "-q", f"--installroot={root}", "--releasever=1", "--nogpgcheck"),
            *("--setopt=reposdir=/dev/null", f"--setopt=cachedir={root.parent / 'dnf-cache'}"),
            *(f"--repofrompath={name},{path.as_uri()}" for name, path in repos.items()),
            *(f"--repo={name}" for name in repos),
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
