"""``make demo``: build the sample product with superbuild, narrated.

Creates the sample superproject (real git repositories as submodules, from this
repository's ``manifests/``) in a temporary directory, then runs superbuild on it as a
release engineer would, printing each command before its output.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from superbuild.testing.sample import SampleSuperproject, make_sample_superproject

#: The targets the demo adds to the sample's superbuild.yaml (rpmbuild here; a real farm
#: would say builder: mock and mock_config: rocky-9-x86_64 / fedora-42-x86_64).
DEMO_TARGETS = """
targets:
  el9: {builder: rpmbuild, rpm_macros: {dist: .el9}}
  fc42: {builder: rpmbuild, rpm_macros: {dist: .fc42}}
"""


class Demo:
    def __init__(self, sample: SampleSuperproject) -> None:
        self.sample = sample

    def say(self, text: str) -> None:
        print(f"\n\033[1m# {text}\033[0m" if sys.stdout.isatty() else f"\n# {text}", flush=True)

    def superbuild(self, *args: str, ok: tuple[int, ...] = (0,)) -> int:
        print(f"$ superbuild {' '.join(args)}", flush=True)
        result = subprocess.run(  # noqa: S603 - argv list
            [sys.executable, "-m", "superbuild", *args],
            cwd=self.sample.path,
            env=self.sample.env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if result.returncode not in ok:
            raise SystemExit(f"demo: superbuild {' '.join(args)} exited {result.returncode}")
        return result.returncode


def check_tools() -> None:
    missing = [t for t in ("git", "rpmbuild", "rpmspec", "createrepo_c") if not shutil.which(t)]
    if missing:
        raise SystemExit(
            f"demo: {', '.join(missing)} not found: run `make demo` (it installs them with "
            "apt-get or dnf as root) or install rpm, rpm-build and createrepo_c"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument(
        "--dir", type=Path, help="where to create the sample (default: a new temp dir)"
    )
    args = parser.parse_args(argv)
    check_tools()
    root = args.dir or Path(tempfile.mkdtemp(prefix="superbuild-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"# creating the sample product in {root}", flush=True)
    sample = make_sample_superproject(root)
    demo = Demo(sample)
    os.environ.update(sample.env)

    demo.say("The product: packages and their build-time dependencies")
    demo.superbuild("graph")

    demo.say("First build of the whole product: real RPMs, 4 at a time, in dependency order")
    demo.superbuild("build", "--all", "--builder", "rpmbuild", "-j", "4")

    demo.say("Release 1.0: every package as this commit records it, in yum repositories")
    demo.superbuild("release", "create", "1.0")

    demo.say("A developer fixes Glance and records the new commit in the superproject")
    new = sample.bump("glance", "Fix image upload progress")
    print(f"  glance is now at {new[:7]}")
    demo.superbuild("changed")
    demo.superbuild("changed", "--why", "altai-installer")

    demo.say("Only the affected packages rebuild: glance, then the installer that needs it")
    demo.superbuild("build", "--builder", "rpmbuild", "--report", "report.json")

    demo.say("Release 1.1: unchanged packages are hard links to 1.0's files; what changed, and why")
    demo.superbuild("release", "create", "1.1")
    demo.superbuild("release", "diff", "1.0", "1.1", "--log")

    demo.say("For maintainers: each submodule's recorded commit, checkout and last build")
    demo.superbuild("status")

    demo.say(
        "Two platforms: targets el9 and fc42 in superbuild.yaml, one job per package and target"
    )
    settings = sample.path / "superbuild.yaml"
    settings.write_text(settings.read_text() + DEMO_TARGETS)
    sample.commit("Build for el9 and fc42")
    demo.superbuild("plan", "--all")
    demo.superbuild("build", "--all", "--builder", "rpmbuild", "-j", "4")
    demo.superbuild("release", "create", "2.0")
    sample.bump("focus", "Show quota usage on the dashboard")
    demo.superbuild("build", "--builder", "rpmbuild", "-j", "4")
    demo.superbuild("release", "create", "2.1")
    demo.superbuild("release", "diff", "2.0", "2.1")

    demo.say("The client base library changes: everything above it is affected")
    sample.bump("python-openstackclient-base", "Retry on 503 from Keystone")
    demo.superbuild("plan")

    output = sample.path / ".superbuild" / "output"
    demo.say(f"The yum repository superbuild produced: {output}")
    for path in sorted(output.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            print(f"  {path.relative_to(output)}")
    newest = max(output.glob("rpms/noarch/glance-*.rpm"), key=lambda p: p.stat().st_mtime)
    print(
        f"\n$ rpm -qp --qf '%{{NAME}} %{{VERSION}}-%{{RELEASE}} built from %{{VCS}}' {newest.name}"
    )
    subprocess.run(  # noqa: S603 - argv list
        ["rpm", "-qp", "--qf", "%{NAME} %{VERSION}-%{RELEASE} built from %{VCS}\n", str(newest)],
        check=False,
        stdin=subprocess.DEVNULL,
    )
    print(f"\n# done: the sample superproject is in {sample.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
