"""``make demo``: build the sample product with superbuild, narrated.

Creates the sample superproject (real git repositories as submodules, from this
repository's ``manifests/``) in a temporary directory, then runs superbuild on it as a
release engineer would, printing each command before its output.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from superbuild.testing.sample import SampleSuperproject, make_sample_superproject


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument(
        "--dir", type=Path, help="where to create the sample (default: a new temp dir)"
    )
    args = parser.parse_args(argv)
    root = args.dir or Path(tempfile.mkdtemp(prefix="superbuild-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"# creating the sample product in {root}", flush=True)
    sample = make_sample_superproject(root)
    demo = Demo(sample)
    os.environ.update(sample.env)

    demo.say("The product: packages and their build-time dependencies")
    demo.superbuild("graph")
    demo.say("The first commit adds every submodule: everything is affected")
    demo.superbuild("changed")

    demo.say("A developer changes the client base library and records it in the superproject")
    new = sample.bump("python-openstackclient-base", "Retry on 503 from Keystone")
    print(f"  python-openstackclient-base is now at {new[:7]}")
    demo.superbuild("changed")
    demo.superbuild("changed", "--why", "altai-installer")
    demo.superbuild("plan")

    demo.say("Only Glance changes next: a much smaller rebuild")
    sample.bump("glance", "Fix image upload progress")
    demo.superbuild("plan", "--format", "json")

    demo.say("Everything since the first commit, as CI would ask for a merge request")
    first = sample.git("rev-list", "--max-parents=0", "HEAD")
    demo.superbuild("changed", "--base", first, "--format", "json")
    print(f"\n# done: the sample superproject is in {sample.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
