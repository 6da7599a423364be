#!/usr/bin/env python3
"""Build the vendored real spec files (tests/data/specs/) through superbuild's CLI.

For each spec (``fedora/*.spec``, ``rdo/*.spec``, or those chosen with ``--only`` /
``--limit``) this makes, in a temporary directory:

* an "upstream" git repository that looks like the project at a commit: the files the
  upstream tarball would hold (a README, a Makefile or a Python project, without any
  top folder: that is what ``git archive`` and the spec's ``%setup``/``%autosetup -n DIR``
  or ``-c`` have to agree on), the *reduced* spec at the root, and what a packager keeps
  in git next to the spec: every Patch (a stand-in in ``git format-patch`` form that adds
  a file, so ``%autosetup -p1`` and ``-S git_am`` apply it) and the Sources without a URL
  (Sources with a URL, e.g. OpenStack's ``.asc`` signatures, live in a lookaside cache
  and are left out, as they would be);
* the reduced spec: preamble, ``%package``/``%description``, ``%prep`` cut to its unpack
  steps (``%setup``, ``%autosetup``, ``%forgesetup``, ``%forgeautosetup`` and the
  conditionals around them), every ``%files`` section emptied (no file list, no ``-f``),
  ``%changelog`` kept, and ``%build``, ``%install``, ``%check``, ``%generate_buildrequires``
  and scriptlets dropped, so that a Debian host without the BuildRequires builds it
  (``rpmbuild --nodeps``) into packages with no files;
* one superproject holding every repository as a submodule
  (``git -c protocol.file.allow=always submodule add``) with ``manifests/<name>.yaml``
  (``path:``, ``builder: rpmbuild``);

then runs ``python -m superbuild build --all --builder rpmbuild -j N --report R.json``
in it, with ``HOME`` a temporary folder whose ``.rpmmacros`` holds the text of
``tests/data/specs/fedora.macros`` (the real ``~/.rpmmacros`` is never read).  RDO
specs get ``rdo.macros`` too (their manifests set ``env: {HOME: ...}``) and a manifest
``version:`` because their Version is the placeholder ``XXX``.

It prints one line per spec (built, or the stage that failed with the first telling
line of that stage's log), then counts per failure class; ``--json FILE`` writes all of
it.  The exit status is 0 once the survey ran (whatever it found), 2 when it could not
run (a tool missing, no such spec).  Only the CLI is used (no import of superbuild); every subprocess gets an argv (no
shell) and stdin from /dev/null; commit dates and authors are fixed.

Usage (from a checkout, with superbuild importable)::

    PYTHONPATH=. python scripts/try_real_specs.py --json /tmp/real-specs.json
    PYTHONPATH=. python scripts/try_real_specs.py --only python-novaclient cockatrice -v
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "specs"
GROUPS = ("fedora", "rdo")
#: The file that marks a --workdir as the harness's (so a rerun may empty it).
MARKER = ".try-real-specs"
#: Version given to RDO specs (their spec says ``Version: XXX``; DLRN fills it in).
RDO_VERSION = "1.0.0"

FIXED_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Upstream Developer",
    "GIT_AUTHOR_EMAIL": "dev@example.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+00:00",
    "GIT_COMMITTER_NAME": "Upstream Developer",
    "GIT_COMMITTER_EMAIL": "dev@example.invalid",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+00:00",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}

_SECTION_RE = re.compile(
    r"^%(package|description|prep|build|install|check|clean|files|changelog|pre|post|preun|"
    r"postun|pretrans|posttrans|preuntrans|postuntrans|triggerin|triggerun|triggerpostun|"
    r"triggerprein|filetriggerin|filetriggerun|filetriggerpostun|transfiletriggerin|"
    r"transfiletriggerun|transfiletriggerpostun|verifyscript|generate_buildrequires|conf|"
    r"sourcelist|patchlist)\b"
)
_KEEP_SECTIONS = {"package", "description", "changelog", "sourcelist", "patchlist"}
_CONDITIONAL_RE = re.compile(
    r"^\s*%(if|ifarch|ifnarch|ifos|ifnos|elif|elifarch|elifos|else|endif)\b"
)
_UNPACK_RE = re.compile(r"^\s*%\{?(setup|autosetup|forgesetup|forgeautosetup)\b")
_DEFINE_RE = re.compile(r"^\s*%(global|define|undefine)\b")
_TAG_RE = re.compile(r"^(Source|Patch)(\d*)\s*:\s*(\S.*?)\s*$", re.IGNORECASE)
ARCHIVE_SUFFIXES = (
    ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tbz", ".tar.zst",
    ".tzst", ".tar.lz", ".tar", ".zip", ".7z", ".gem", ".crate",
)  # fmt: skip


def reduce_spec(text: str) -> str:
    """Preamble + %package/%description + %prep's unpack steps + empty %files + %changelog."""
    out: list[str] = []
    section: str | None = None
    keep_logical = True  # whether the current logical line (with its continuations) is kept
    continued = False
    for line in text.splitlines():
        if section is not None and section not in _KEEP_SECTIONS and _CONDITIONAL_RE.match(line):
            # rpm reads %if/%endif lines even inside a shell continuation, and they may
            # span sections: keep them all (and the continuation state as it was).
            out.append(line)
            continue
        if continued:
            if keep_logical:
                out.append(line)
            continued = line.endswith("\\")
            continue
        continued = line.endswith("\\")
        found = _SECTION_RE.match(line)
        if found:
            section = found.group(1)
            if section in _KEEP_SECTIONS or section == "prep":
                keep_logical = True
            elif section == "files":
                # No file list: -f FILE would name a file %install makes.
                keep_logical = True
                out.append(re.sub(r"\s+-f\s*\S+", "", line))
                continue
            else:
                keep_logical = False
            if keep_logical:
                out.append(line)
            continue
        if section is None or section in _KEEP_SECTIONS:
            keep_logical = True
        elif section == "prep":
            keep_logical = bool(_UNPACK_RE.match(line) or _DEFINE_RE.match(line))
        else:
            keep_logical = False
        if keep_logical:
            out.append(line)
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------- processes


def run(
    argv: list[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(  # noqa: S603 - an argv (never a shell), built here
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} (in {cwd}): exit {result.returncode}: "
            f"{(result.stderr or result.stdout).strip()[-2000:]}"
        )
    return result


def run_session(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in its own process group; on timeout the whole group is killed."""
    with subprocess.Popen(  # noqa: S603 - an argv (never a shell), built here
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    ) as child:
        try:
            out, err = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            out, err = child.communicate()
            err += f"\ntry_real_specs: killed after {timeout:g} s\n"
        return subprocess.CompletedProcess(argv, child.returncode, out, err)


def git_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(FIXED_GIT_ENV)
    env["HOME"] = str(home)
    return env


def rpm_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["HOME"] = str(home)
    env["LC_ALL"] = "C.UTF-8"
    return env


# ---------------------------------------------------------------------- repositories


def make_home(path: Path, macro_files: list[Path]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    parts = [
        f"# written by scripts/try_real_specs.py from {', '.join(f.name for f in macro_files)}\n"
    ]
    parts += [f.read_text(encoding="utf-8") for f in macro_files]
    (path / ".rpmmacros").write_text("\n".join(parts), encoding="utf-8")
    return path


def dummy_patch(name: str, index: str) -> str:
    """A patch that applies to any tree (it adds a file), in ``git format-patch`` form."""
    target = f"harness/patches/{index or '0'}/{Path(name).stem}.txt"
    return (
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        "From: Upstream Developer <dev@example.invalid>\n"
        "Date: Thu, 1 Jan 2026 00:00:00 +0000\n"
        f"Subject: [PATCH] harness stand-in for {name}\n\n"
        "---\n"
        f"diff --git a/{target} b/{target}\n"
        "new file mode 100644\n"
        "--- /dev/null\n"
        f"+++ b/{target}\n"
        "@@ -0,0 +1 @@\n"
        f"+stand-in for {name}\n"
        "-- \n2.0\n\n"
    )


def upstream_files(name: str, spec_text: str) -> dict[str, str]:
    """What the upstream tarball of the project would hold (no top folder)."""
    files = {
        "README.md": f"# {name}\n\nStand-in for the upstream sources (scripts/try_real_specs.py).\n",
        "LICENSE": "Stand-in license text.\n",
    }
    lowered = spec_text.lower()
    if "openstack" in lowered or re.search(r"\bpbr\b", lowered):
        module = re.sub(r"[^a-z0-9]+", "_", name.removeprefix("python-").removeprefix("openstack-"))
        files.update(
            {
                "setup.py": "import setuptools\n\nsetuptools.setup(setup_requires=['pbr>=2.0.0'], pbr=True)\n",
                "setup.cfg": f"[metadata]\nname = {name.removeprefix('python-')}\n"
                "summary = stand-in\nauthor = OpenStack\n\n[files]\n"
                f"packages =\n    {module}\n",
                "requirements.txt": "pbr>=2.0.0\n",
                "test-requirements.txt": "stestr>=1.0.0\n",
                "doc/requirements.txt": "sphinx>=2.0.0\n",
                "tox.ini": "[tox]\nminversion = 3.18.0\nenvlist = py3\n\n[testenv]\n"
                "deps = -c{env:TOX_CONSTRAINTS_FILE:https://example.invalid/upper-constraints.txt}\n",
                f"{module}/__init__.py": "",
            }
        )
    elif name.startswith("python-") or "%pyproject" in spec_text or "%py3_" in spec_text:
        module = re.sub(r"[^a-z0-9]+", "_", name.removeprefix("python-"))
        files.update(
            {
                "pyproject.toml": "[build-system]\nrequires = ['setuptools']\n"
                "build-backend = 'setuptools.build_meta'\n\n"
                f"[project]\nname = '{name.removeprefix('python-')}'\nversion = '0'\n",
                f"{module}/__init__.py": "",
            }
        )
    else:
        files.update(
            {
                "Makefile": "all:\n\t@echo nothing to build\n",
                "src/main.c": "int main(void) { return 0; }\n",
            }
        )
    return files


def local_sources(parsed: str) -> tuple[str | None, dict[str, str], list[str]]:
    """From ``rpmspec -P`` output: Source0's file name, the files a packager keeps in git
    (name -> stand-in content) and the other Sources (from a lookaside cache).

    Patches are kept in git whatever their URL (Fedora's dist-git does, spectool fetches
    them once); other Sources with a URL live in a lookaside cache, not in git, so they
    are not made (superbuild has to say so).  ``%sourcelist``/``%patchlist`` count too.
    """
    source0: str | None = None
    local: dict[str, str] = {}
    lookaside: list[str] = []
    listing: str | None = None
    count = 0
    for line in parsed.splitlines():
        section = _SECTION_RE.match(line)
        if section:
            listing = section.group(1) if section.group(1) in ("sourcelist", "patchlist") else None
            continue
        if listing:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            kind, index, value = listing[:-4], f"L{count}", line.strip()
            count += 1
        else:
            found = _TAG_RE.match(line)
            if not found:
                continue
            kind, index, value = found.group(1).lower(), found.group(2), found.group(3)
        file_name = value.rsplit("#/", 1)[1] if "#/" in value else value.rsplit("/", 1)[-1]
        if kind == "source" and index in ("", "0") and source0 is None:
            source0 = file_name
            continue
        if kind == "patch" or file_name.endswith((".patch", ".diff")):
            local[file_name] = dummy_patch(file_name, index)
        elif "://" not in value:
            local[file_name] = f"stand-in for {file_name}\n"
        else:
            lookaside.append(file_name)
    return source0, local, lookaside


def prep_folder(parsed: str) -> tuple[str | None, bool]:
    """The folder the expanded %prep enters after unpacking, and whether it creates it (-c)."""
    prep = parsed.split("\n%prep", 1)[-1] if "\n%prep" in parsed else ""
    created = False
    for raw in prep.splitlines():
        line = raw.strip()
        made = re.match(r"^(?:/\S+/)?mkdir -p '?([^'/\s][^'\s]*)'?$", line)
        if made:
            created = True
        found = re.match(r"^cd '([^'/][^']*)'$", line)
        if found:
            return found.group(1), created
    return None, created


def predicted_problems(entry: dict[str, Any], version: str) -> list[str]:
    """What superbuild (main) will get wrong for this spec, all at once (not only the first)."""
    problems = []
    name = entry["rpm_says"]["name"]
    made = f"{name}-{version}"
    folder = entry.get("prep_folder")
    if entry.get("prep_creates"):
        problems.append(
            f"-c: %prep makes {folder}/ and wants the archive without a top folder; superbuild's has {made}/"
        )
    elif folder and folder != made:
        problems.append(f"top folder: %prep enters {folder}/, superbuild's archive has {made}/")
    source0 = entry.get("source0") or ""
    if source0 and not source0.endswith((".tar.gz", ".tgz")):
        problems.append(f"Source0 suffix: {source0} (superbuild makes .tar.gz only)")
    if entry.get("lookaside"):
        problems.append("not in git: " + ", ".join(entry["lookaside"]))
    return problems


def archive_tops(srpm: Path, name: str, work: Path) -> set[str] | None:
    """The top-level entries of the archive ``name`` inside ``srpm`` (None: not there)."""
    import tarfile
    import zipfile

    out = work / "unpacked"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    payload = subprocess.run(  # noqa: S603 - an argv (never a shell), built here
        ["rpm2cpio", os.fspath(srpm)], capture_output=True, check=True, stdin=subprocess.DEVNULL
    ).stdout
    subprocess.run(["cpio", "-idm", "--quiet"], cwd=out, input=payload, check=True)
    archive = out / name
    if not archive.is_file():
        return None
    if name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
    elif name.endswith((".tar.zst", ".tzst")):
        raw = subprocess.run(  # noqa: S603 - an argv (never a shell), built here
            ["zstd", "-dc", os.fspath(archive)],
            capture_output=True,
            check=True,
            stdin=subprocess.DEVNULL,
        ).stdout
        plain = out / "plain.tar"
        plain.write_bytes(raw)
        with tarfile.open(plain) as tf:
            names = tf.getnames()
    else:
        with tarfile.open(archive, "r:*") as tf:
            names = tf.getnames()
    return {n.split("/", 1)[0] for n in names if n and n not in (".", "./")}


def layout_problem(entry: dict[str, Any], srpm: Path, work: Path) -> str | None:
    """What is wrong with the archive superbuild put in ``srpm``, as %prep will unpack it."""
    source0 = (entry.get("source0") or "").replace("XXX", RDO_VERSION)
    folder = (entry.get("prep_folder") or "").replace("XXX", RDO_VERSION).split("/", 1)[0]
    if not source0 or not folder:
        return None
    tops = archive_tops(srpm, source0, work)
    if tops is None:
        return f"archive: {source0} is not in the SRPM"
    if entry.get("prep_creates"):
        if tops == {folder}:
            return f"-c: %prep makes {folder}/, the archive has {folder}/ too (one level too deep)"
        return None
    if tops != {folder}:
        return f"top folder: %prep enters {folder}/, superbuild's archive has {', '.join(sorted(tops))}"
    return None


def git_commit_all(repo: Path, env: dict[str, str], message: str) -> str:
    run(["git", "add", "-A"], cwd=repo, env=env)
    run(["git", "commit", "-q", "--no-verify", "-m", message], cwd=repo, env=env)
    return run(["git", "rev-parse", "HEAD"], cwd=repo, env=env).stdout.strip()


def spec_query(spec: Path, home: Path, topdir: Path) -> tuple[str, str, str]:
    """What rpm says before superbuild touches the spec: (NAME, VERSION, RELEASE) or ''."""
    result = run(
        ["rpmspec", "-q", "--srpm", "--define", f"_topdir {topdir}",
         "--qf", "%{NAME}\\n%{VERSION}\\n%{RELEASE}\\n", str(spec)],
        env=rpm_env(home), check=False, timeout=120,
    )  # fmt: skip
    lines = result.stdout.splitlines()
    if result.returncode != 0 or len(lines) < 3:
        return "", "", ""
    return lines[0], lines[1], lines[2]


# ---------------------------------------------------------------------- classification

#: What makes a log line telling, most telling first.
_TELLING = [
    re.compile(p)
    for p in (
        r"cd: (can't cd to|.*No such file)",
        r"Bad file: ",
        r"Unknown option",
        r"Versioning for this project",
        r"error: (the spec|spec |no |rpmspec|cannot|several)",
        r"^(error|fatal):",
        r"(?i)\berror\b|cannot|failed",
    )
]


def first_telling_line(log_text: str) -> str:
    """The most telling line of a stage log, without the long temporary paths."""
    lines = [ln.strip().removeprefix("# ") for ln in log_text.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("$ ", "+ ", "warning:"))]
    for pattern in _TELLING:
        for line in lines:
            if pattern.search(line) and "not in descending chronological order" not in line:
                short = re.sub(r"/\S*/rpm-tmp\.\w+: \d+: ", "", line)
                short = re.sub(r"/\S*/(SOURCES|SPECS|SRPMS|BUILD)/", r".../\1/", short)
                return short[:300]
    return (lines[-1] if lines else "")[:300]


def classify(stage: str, log_text: str, source0: str | None) -> str:
    text = log_text
    if (
        "Unknown option" in text
        or "no Release: line" in text
        or "no Version: line" in text
        or re.search(r"lua script failed: \[string \"autorelease\"\]", text)
    ):
        return "Release provenance"
    bad = re.search(r"Bad file: (\S+?):", text)
    if bad:
        missing = Path(bad.group(1)).name
        if source0 and missing == source0:
            return (
                "Bad file: Source0 suffix"
                if not missing.endswith((".tar.gz", ".tgz"))
                else "Bad file: Source0 name"
            )
        return "Bad file: Source not in git"
    if stage == "rpm" and re.search(r"(cd: |cd ')[^\n]*(No such file|can't cd)", text):
        return "%prep: top folder"
    if stage == "rpm" and re.search(
        r"(gzip: stdin: not in gzip format|not in bzip2 format|"
        r"File format not recognized|unzip|xz: )",
        text,
    ):
        return "%prep: archive format"
    if stage == "rpm" and "File not found" in text:
        return "%files: file list (harness)"
    if stage == "source" and "rpmspec cannot parse" in text:
        return "source: rpmspec parse"
    return "other"


def release_check(release: str, commit: str, expected_dist: bool) -> str | None:
    """None if the built Release carries ``.<n>.g<sha7>`` with the dist tag last."""
    short = commit[:7]
    if not re.search(rf"\.\d+\.g{short}", release):
        return f"no .<n>.g{short} in Release {release}"
    if expected_dist and not release.endswith(".fc42"):
        return f"dist tag not last in Release {release}"
    return None


# ---------------------------------------------------------------------- main


def choose(args: argparse.Namespace) -> list[tuple[str, Path]]:
    specs = [(group, p) for group in GROUPS for p in sorted((args.corpus / group).glob("*.spec"))]
    if args.group:
        specs = [(g, p) for g, p in specs if g in args.group]
    if args.only:
        wanted = {w.removesuffix(".spec") for w in args.only}
        specs = [(g, p) for g, p in specs if p.stem in wanted or f"{g}/{p.stem}" in wanted]
        unknown = wanted - {p.stem for _, p in specs} - {f"{g}/{p.stem}" for g, p in specs}
        if unknown:
            sys.exit(f"try_real_specs: no such spec in {args.corpus}: {', '.join(sorted(unknown))}")
    if args.limit:
        specs = specs[: args.limit]
    return specs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="spec stems (or GROUP/stem)")
    parser.add_argument("--group", nargs="+", choices=GROUPS, help="only these corpus groups")
    parser.add_argument("--limit", type=int, default=0, help="the first N specs (sorted)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="superbuild -j (default 2)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    parser.add_argument("--workdir", type=Path, help="build here (kept) instead of a temp dir")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--timeout", type=float, default=7200, help="seconds for the build")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    for tool in ("git", "rpm", "rpmbuild", "rpmspec", "createrepo_c"):
        if shutil.which(tool) is None:
            print(f"try_real_specs: {tool} not found on PATH", file=sys.stderr)
            return 2
    specs = choose(args)
    if not specs:
        print("try_real_specs: no spec chosen", file=sys.stderr)
        return 2

    if args.workdir:
        work = args.workdir.resolve()
        if work.exists() and any(work.iterdir()):
            if not (work / MARKER).is_file():
                print(f"try_real_specs: {work} is not empty and not ours: choose another --workdir",
                      file=sys.stderr)  # fmt: skip
                return 2
            shutil.rmtree(work)
        work.mkdir(parents=True, exist_ok=True)
        (work / MARKER).write_text("made by scripts/try_real_specs.py; removed by its next run\n")
    else:
        work = Path(tempfile.mkdtemp(prefix="try-real-specs-"))
    started = time.monotonic()
    try:
        results = build_all(args, specs, work)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"try_real_specs: {exc}", file=sys.stderr)
        return 2
    finally:
        if not args.workdir and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        elif args.verbose:
            print(f"# kept {work}")
    elapsed = time.monotonic() - started
    report(results, elapsed, args)
    return 0


def build_all(
    args: argparse.Namespace, specs: list[tuple[str, Path]], work: Path
) -> list[dict[str, Any]]:
    macros = args.corpus / "fedora.macros"
    homes = {
        "fedora": make_home(work / "home", [macros]),
        "rdo": make_home(work / "home-rdo", [macros, args.corpus / "rdo.macros"]),
    }
    genv = git_env(homes["fedora"])
    upstream = work / "upstream"
    super_dir = work / "super"
    upstream.mkdir()
    super_dir.mkdir()
    run(["git", "init", "-q", "-b", "main", str(super_dir)], env=genv)
    (super_dir / "manifests").mkdir()

    results: list[dict[str, Any]] = []
    for group, spec_path in specs:
        # Package (manifest) names must be unique: the RDO copies of Fedora's packages
        # (python-novaclient...) become rdo-<stem>.
        name = spec_path.stem if group == "fedora" else f"{group}-{spec_path.stem}"
        original = spec_path.read_text(encoding="utf-8", errors="surrogateescape")
        reduced = reduce_spec(original)
        home = homes[group]
        entry: dict[str, Any] = {
            "spec": f"{group}/{spec_path.name}",
            "package": name,
            "group": group,
        }
        repo = upstream / name
        repo.mkdir()
        for rel, content in upstream_files(spec_path.stem, original).items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text(content, encoding="utf-8")
        spec_file = repo / spec_path.name
        spec_file.write_text(reduced, encoding="utf-8", errors="surrogateescape")
        parsed = run(
            ["rpmspec", "-P", "--define", f"_topdir {work / 'rpmspec-top'}", str(spec_file)],
            env=rpm_env(home), check=False, timeout=120,
        )  # fmt: skip
        if parsed.returncode != 0:
            entry["harness_warning"] = "rpmspec -P: " + first_telling_line(parsed.stderr)
        source0, local, lookaside = local_sources(parsed.stdout)
        entry["source0"] = source0
        entry["lookaside"] = lookaside
        entry["prep_folder"], entry["prep_creates"] = prep_folder(parsed.stdout)
        if group == "rdo" and entry["prep_folder"]:
            # The manifest's version: replaces the spec's placeholder Version (XXX).
            entry["prep_folder"] = entry["prep_folder"].replace("XXX", RDO_VERSION)
        for file_name, content in local.items():
            if not (repo / file_name).exists():
                (repo / file_name).write_text(content, encoding="utf-8")
        entry["local_sources"] = sorted(local)
        qname, qversion, qrelease = spec_query(spec_file, home, work / "rpmspec-top")
        entry["rpm_says"] = {"name": qname, "version": qversion, "release": qrelease}
        entry["predicted"] = predicted_problems(entry, RDO_VERSION if group == "rdo" else qversion)
        run(["git", "init", "-q", "-b", "main", str(repo)], env=genv)
        entry["commit"] = git_commit_all(repo, genv, f"{name}: upstream stand-in")
        run(
            ["git", "-c", "protocol.file.allow=always", "submodule", "add", "-q",
             f"../upstream/{name}", f"repos/{name}"],
            cwd=super_dir, env=genv,
        )  # fmt: skip
        manifest = [f"path: repos/{name}", "builder: rpmbuild"]
        if group == "rdo":
            manifest.append(f'version: "{RDO_VERSION}"')
            if re.search(r"^Release:\s*XXX\s*$", original, re.M):
                manifest.append('release: "1%{?dist}"')  # the placeholder, as DLRN sets it
            manifest.append(f"env: {{HOME: {json.dumps(str(home))}}}")
            # What DLRN defines, given the way a packager would: rpm_macros (the
            # env: HOME above only reaches the build commands, not the spec reading).
            manifest.append('rpm_macros: {dlrn: "1"}')
        elif "sources_gpg" in original:
            # OpenStack specs want the upstream tarball's .asc unless told otherwise:
            # the lookaside signature is not in git, as in a DLRN build.
            manifest.append('rpm_macros: {sources_gpg: "0"}')
        (super_dir / "manifests" / f"{name}.yaml").write_text("\n".join(manifest) + "\n")
        results.append(entry)
    git_commit_all(super_dir, genv, "superproject of real specs")

    # Which superbuild the CLI runs (asked of a child Python, started where the build runs).
    where = run(
        [sys.executable, "-c", "import superbuild; print(superbuild.__file__)"],
        cwd=super_dir,
        env=rpm_env(homes["fedora"]),
        check=False,
    ).stdout.strip()
    tree = Path(where).parent.parent if where else None
    described = (
        run(["git", "-C", str(tree), "describe", "--always", "--dirty"], check=False).stdout.strip()
        if tree and (tree / ".git").exists()
        else ""
    )
    args.superbuild = f"{where} ({described})" if described else where
    if args.verbose:
        print(f"# superbuild: {args.superbuild}", flush=True)

    report_file = work / "R.json"
    cmd = [sys.executable, "-m", "superbuild", "build", "--all", "--builder", "rpmbuild",
           "-j", str(args.jobs), "--report", str(report_file)]  # fmt: skip
    env = rpm_env(homes["fedora"])
    env.update({k: v for k, v in FIXED_GIT_ENV.items() if not k.endswith("_DATE")})
    if args.verbose:
        print(f"$ (cd {super_dir} && {' '.join(cmd)})", flush=True)
    started = time.monotonic()
    done = run_session(cmd, cwd=super_dir, env=env, timeout=args.timeout)
    build_seconds = time.monotonic() - started
    if not report_file.is_file():
        raise RuntimeError(
            f"superbuild wrote no report (exit {done.returncode}): {done.stderr[-3000:]}"
        )
    rep = json.loads(report_file.read_text())
    by_name = {p["package"]: p for p in rep["packages"]}
    for entry in results:
        pkg = by_name.get(entry["package"])
        entry["build_seconds_total"] = round(build_seconds, 1)
        if pkg is None:
            entry.update(status="missing", cls="not in superbuild's report", line="")
            continue
        entry["status"] = pkg["status"]
        if pkg["status"] == "succeeded":
            srpms = [a for a in pkg["artifacts"] if a.endswith(".src.rpm")]
            rpms = [a for a in pkg["artifacts"] if not a.endswith(".src.rpm")]
            entry["artifacts"] = [Path(a).name for a in pkg["artifacts"]]
            problems = []
            for artifact in srpms + rpms:
                release = Path(artifact).name.rsplit("-", 1)[-1].rsplit(".", 2)[0]
                problem = release_check(
                    release, pkg["commit"], ".fc42" in entry["rpm_says"]["release"]
                )
                if problem:
                    problems.append(f"{Path(artifact).name}: {problem}")
            layout = []
            for srpm in srpms:
                found = layout_problem(entry, Path(srpm), Path(tempfile.mkdtemp()))
                if found:
                    layout.append(found)
            if problems:
                entry["predicted"].append(f"Release provenance: {problems[0]}")
                entry.update(cls="built, Release provenance wrong", line=problems[0])
            elif layout:
                # %prep entered a folder, so rpmbuild went on: but the sources are one
                # level too deep (a real %build would not find them).
                entry.update(cls="built, archive layout wrong", line=layout[0])
            else:
                entry.update(cls="built", line=", ".join(Path(a).name for a in srpms))
            continue
        log = Path(pkg["log"]) if pkg.get("log") else None
        text = (
            log.read_text(errors="replace") if log and log.is_file() else (pkg.get("reason") or "")
        )
        stage = log.stem if log and log.is_file() else "?"
        entry["stage"] = stage
        entry["reason"] = pkg.get("reason")
        entry["cls"] = classify(stage, text + "\n" + (pkg.get("reason") or ""), entry["source0"])
        entry["line"] = first_telling_line(text) or (pkg.get("reason") or "")
        if entry["cls"] == "Release provenance":
            entry["predicted"].append(f"Release provenance: {entry['line']}")
        srpm = re.search(r"^Installing (\S+\.src\.rpm)$", text, re.MULTILINE)
        if srpm:  # the srpm stage worked: is the Release it made right?
            release = Path(srpm.group(1)).name.rsplit("-", 1)[-1].removesuffix(".src.rpm")
            problem = release_check(release, pkg["commit"], ".fc42" in entry["rpm_says"]["release"])
            if problem:
                entry["predicted"].append(f"Release provenance: {problem}")
    return results


def report(results: list[dict[str, Any]], elapsed: float, args: argparse.Namespace) -> None:
    width = max(len(r["spec"]) for r in results)
    for r in results:
        where = r["cls"] if r.get("status") == "succeeded" else f"{r.get('stage', '?')}: {r['cls']}"
        print(f"{r['spec']:<{width}}  {where:<40}  {r['line']}")
        if args.verbose:
            for problem in r.get("predicted", []):
                print(f"{'':<{width}}  predicted: {problem}")
        if args.verbose and r.get("harness_warning"):
            print(f"{'':<{width}}  (harness) {r['harness_warning']}")
    counts = Counter(r["cls"] for r in results)
    built = counts.get("built", 0)
    print(f"\n{built} of {len(results)} built with correct provenance ({elapsed:.0f} s)")
    for cls, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {n:4d}  {cls}")
    predicted = Counter(p.split(":", 1)[0] for r in results for p in r.get("predicted", []))
    if predicted:
        print("specs affected (from rpmspec -P and the Release built, whatever fails first):")
        for what, n in sorted(predicted.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"  {n:4d}  {what}")
    if args.json:
        summary = {
            "superbuild": getattr(args, "superbuild", ""),
            "predicted": dict(sorted(predicted.items())),
            "specs": len(results),
            "built": built,
            "classes": dict(sorted(counts.items())),
            "seconds": round(elapsed, 1),
            "results": results,
        }
        args.json.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    sys.exit(main())
