"""``superbuild init``: manifests proposed from the real specs of a real superproject.

The components are real git repositories, submodules of a real superproject, holding
vendored real specs (tests/data/specs/, RDO and Fedora; SOURCES.md says where each comes
from) read by rpm itself: subpackages, ``Provides:`` of virtual names, versioned and
epoch'd requires (``python3-glanceclient >= 1:2.8.0``), ISA-qualified names.  Two small
specs written for these tests (tests/data/specs/altai/) make a run-time-only cycle.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

from superbuild.git import gitlinks
from superbuild.manifest import load_product
from superbuild.testing.sample import git_env, run_git
from tests.helpers import cli, cli_json

pytestmark = pytest.mark.rpm

SPECS = Path(__file__).resolve().parent / "data" / "specs"

#: submodule path -> {file in the component: vendored spec}
PRODUCT: dict[str, dict[str, str]] = {
    # one spec at the root, a second one in a subfolder (not built by this manifest)
    "repos/openstack/glance": {
        "openstack-glance.spec": "rdo/openstack-glance.spec",
        "contrib/python-stevedore.spec": "rdo/python-stevedore.spec",
    },
    "repos/openstack/python-glanceclient": {
        "python-glanceclient.spec": "fedora/python-glanceclient.spec"
    },
    # two specs at the root: the one whose Name is the folder's is chosen
    "repos/openstack/python-oslo-log": {
        "python-oslo-log.spec": "rdo/python-oslo-log.spec",
        "python-oslo-i18n.spec": "fedora/python-oslo-i18n.spec",
    },
    "repos/openstack/python-oslo-config": {
        "python-oslo-config.spec": "rdo/python-oslo-config.spec"
    },
    "repos/openstack/python-oslotest": {"python-oslotest.spec": "rdo/python-oslotest.spec"},
    # two specs at the root and neither is named after the folder: init asks
    "repos/openstack/oslo-misc": {
        "python-oslo-utils.spec": "fedora/python-oslo-utils.spec",
        "python-stevedore.spec": "fedora/python-stevedore.spec",
    },
    "repos/libs/libplist": {"libplist.spec": "fedora/libplist.spec"},
    "repos/libs/libimobiledevice-glue": {
        "libimobiledevice-glue.spec": "fedora/libimobiledevice-glue.spec"
    },
    "repos/libs/libtatsu": {"libtatsu.spec": "fedora/libtatsu.spec"},
    "repos/libs/libusbmuxd": {"libusbmuxd.spec": "fedora/libusbmuxd.spec"},
    "repos/libs/libimobiledevice": {"libimobiledevice.spec": "fedora/libimobiledevice.spec"},
    "repos/altai/altai-agent": {"altai-agent.spec": "altai/altai-agent.spec"},
    "repos/altai/altai-console": {"altai-console.spec": "altai/altai-console.spec"},
    # no spec at all
    "repos/altai/altai-docs": {},
}

#: package -> {requirement: comment}: every edge init must propose, and no other.
EXPECTED: dict[str, dict[str, str]] = {
    "glance": {
        "python-glanceclient": "run-time: openstack-glance Requires: python3-glanceclient >= 1:2.8.0"
    },
    "python-glanceclient": {},
    "python-oslo-log": {
        "python-oslo-config": "run-time: python3-oslo-log-tests Requires: "
        "python3-oslo-config >= 2:5.2.0",
        "python-oslotest": "run-time: python3-oslo-log-tests Requires: python3-oslotest",
    },
    "python-oslo-config": {},
    "python-oslotest": {},
    "oslo-misc": {},
    "libplist": {},
    "libimobiledevice-glue": {"libplist": "build-time: BuildRequires: libplist-devel"},
    "libtatsu": {"libplist": "build-time: BuildRequires: libplist-devel"},
    "libusbmuxd": {
        "libimobiledevice-glue": "build-time: BuildRequires: libimobiledevice-glue-devel",
        "libplist": "build-time: BuildRequires: libplist-devel >= 2.2.0",
    },
    "libimobiledevice": {
        "libimobiledevice-glue": "build-time: BuildRequires: libimobiledevice-glue-devel",
        "libplist": "build-time: BuildRequires: libplist-devel",
        "libtatsu": "build-time: BuildRequires: libtatsu-devel",
        "libusbmuxd": "build-time: BuildRequires: libusbmuxd-devel",
    },
    "altai-agent": {},  # its run-time edge to altai-console closes a cycle: left out
    "altai-console": {
        "altai-agent": "build-time: BuildRequires: python3dist(altai-agent) >= 1.0",
        "python-glanceclient": "run-time: altai-console Requires: "
        "(python3-glanceclient or python3-novaclient)",
    },
    "altai-docs": {},
}


def make_component(dest: Path, files: Mapping[str, str], env: Mapping[str, str]) -> None:
    run_git(None, "init", "-q", "-b", "main", os.fspath(dest), env=env)
    (dest / "README").write_text(f"{dest.name}\n")
    for rel, source in files.items():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SPECS / source, target)
    run_git(dest, "add", "-A", env=env)
    run_git(dest, "commit", "-q", "-m", f"{dest.name}: initial import", env=env)


def make_superproject(root: Path, product: Mapping[str, Mapping[str, str]]) -> Path:
    """Component repositories under ``root/upstream``, submodules of ``root/superproject``."""
    env = git_env()
    top = root / "superproject"
    run_git(None, "init", "-q", "-b", "main", os.fspath(top), env=env)
    for path, files in product.items():
        upstream = root / "upstream" / path
        make_component(upstream, files, env)
        run_git(
            top,
            *("-c", "protocol.file.allow=always", "submodule", "add", "-q"),
            *(upstream.resolve().as_uri(), path),
            env=env,
        )
    run_git(top, "commit", "-q", "-m", "the product, before superbuild", env=env)
    return top


@pytest.fixture
def rpm_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """rpm reads the Fedora-like macros (and DLRN's %dlrn) the real specs expect."""
    home = tmp_path / "rpm-home"
    home.mkdir()
    text = (SPECS / "fedora.macros").read_text() + (SPECS / "rdo.macros").read_text()
    (home / ".rpmmacros").write_text(text)
    (home / ".gitconfig").write_text(
        '[user]\n\tname = Test\n\temail = test@example.com\n[protocol "file"]\n\tallow = always\n'
    )
    monkeypatch.setenv("HOME", os.fspath(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.fspath(home / ".gitconfig"))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The product, made once per module (its upstreams stay where they are)."""
    return make_superproject(tmp_path_factory.mktemp("product"), PRODUCT)


@pytest.fixture
def product(pristine: Path, tmp_path: Path, rpm_home: None) -> Path:
    """A copy of the product of its own (submodules point into its own .git/modules)."""
    copy = tmp_path / "superproject"
    shutil.copytree(pristine, copy, symlinks=True)
    return copy


def test_the_proposal_has_exactly_the_edges_of_the_specs(
    product: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = cli_json(capsys, "-C", str(product), "init", "--format", "json")
    found = {c["package"]: {e["package"]: e for e in c["requires"]} for c in data["components"]}
    assert set(found) == set(EXPECTED)
    for package, edges in EXPECTED.items():
        assert set(found[package]) == set(edges), package
        for requirement, comment in edges.items():
            kind, _, because = comment.partition(": ")
            edge = found[package][requirement]
            assert edge["kinds"] == [kind.removesuffix("-time")], (package, requirement)
            assert edge["because"] == [because], (package, requirement)
    by_name = {c["package"]: c for c in data["components"]}
    # the runtime-only cycle: the edge to drop, and the cycle it closes
    assert by_name["altai-agent"]["dropped"] == [
        {
            "package": "altai-console",
            "kinds": ["run"],
            "because": ["altai-agent Requires: altai-console >= 1.0"],
            "cycle": ["altai-agent", "altai-console", "altai-agent"],
        }
    ]
    # spec choice: the root one despite a second spec in a subfolder; the one named
    # after the folder; none, and init asks; no spec at all
    assert by_name["glance"]["spec"] == "openstack-glance.spec"
    assert by_name["glance"]["other_specs"] == ["contrib/python-stevedore.spec"]
    assert by_name["python-oslo-log"]["spec"] == "python-oslo-log.spec"
    assert by_name["oslo-misc"]["spec"] is None
    assert by_name["oslo-misc"]["spec_candidates"] == [
        "python-oslo-utils.spec",
        "python-stevedore.spec",
    ]
    assert by_name["altai-docs"]["spec"] is None
    # the subpackages' provides, virtual names and ISA-qualified names included
    assert "python3dist(altai-agent)" in by_name["altai-agent"]["provides"]
    assert "libplist-devel(x86-64)" in by_name["libplist"]["provides"] or any(
        p.startswith("libplist-devel(") for p in by_name["libplist"]["provides"]
    )
    assert by_name["libusbmuxd"]["version"] == "2.1.1"
    assert by_name["glance"]["rpm_name"] == "openstack-glance"
    assert data["waves"][0][0] == "altai-agent"
    notes = "\n".join(data["notes"])
    assert "oslo-misc: 2 spec files in repos/openstack/oslo-misc" in notes
    assert "choose one with spec:" in notes
    assert "altai-docs: no *.spec file in repos/altai/altai-docs" in notes
    assert "altai-agent: run-time requirement altai-console left out" in notes


def test_init_prints_the_manifests_and_writes_nothing(
    product: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "-C", str(product), "init")
    assert code == 0, err
    assert not (product / "manifests").exists()
    sections = {
        chunk.split("\n", 1)[0]: chunk.split("\n", 1)[1] for chunk in out.split("# ---- ")[1:]
    }
    glance = sections["manifests/openstack/glance.yaml"]
    commit = run_git(product, "rev-parse", "HEAD:repos/openstack/glance")
    assert glance == (
        f"# glance: openstack-glance XXX, from openstack-glance.spec at {commit[:12]} "
        "(proposed by superbuild init)\n"
        "# also in the repository, not built by this manifest: contrib/python-stevedore.spec\n"
        "path: repos/openstack/glance\n"
        "description: OpenStack Image Service\n"
        "spec: openstack-glance.spec\n"
        "requires:\n"
        "  - python-glanceclient  # run-time: openstack-glance Requires: "
        "python3-glanceclient >= 1:2.8.0\n"
        "\n"
    )
    agent = sections["manifests/altai/altai-agent.yaml"]
    assert (
        "  # - altai-console  # run-time, left out: it would close the cycle "
        "altai-agent -> altai-console -> altai-agent" in agent
    )
    assert "requires: []" in agent
    misc = sections["manifests/openstack/oslo-misc.yaml"]
    assert "# spec: python-oslo-utils.spec\n# spec: python-stevedore.spec\n" in misc
    docs = sections["manifests/altai/altai-docs.yaml"]
    assert "pipeline: command\n" in docs
    assert "14 components, 13 requires edges, 4 waves" in err
    assert "superbuild: warning: oslo-misc: 2 spec files" in err


def test_written_manifests_are_a_valid_product(
    product: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "-C", str(product), "init", "--write")
    assert code == 0, err
    assert "wrote manifests/libs/libplist.yaml" in out
    assert "  git add manifests && git commit -m 'superbuild manifests'\n" in out
    assert "  superbuild plan --all\n" in out
    env = git_env()
    run_git(product, "add", "manifests", env=env)
    run_git(product, "commit", "-q", "-m", "superbuild manifests", env=env)
    head = run_git(product, "rev-parse", "HEAD")
    # superbuild's own validation, the paths checked against HEAD's gitlinks
    loaded = load_product(product, head, links=gitlinks(product, head))
    assert {n: set(p.requires) for n, p in loaded.packages.items()} == {
        n: set(e) for n, e in EXPECTED.items()
    }
    assert loaded.packages["altai-docs"].pipeline == "command"
    assert loaded.packages["glance"].spec == "openstack-glance.spec"
    assert loaded.packages["glance"].description == "OpenStack Image Service"
    graph = cli_json(capsys, "-C", str(product), "graph", "--format", "json")
    proposal = cli_json(capsys, "-C", str(product), "init", "--format", "json")
    assert graph["waves"] == proposal["waves"]
    plan = cli_json(capsys, "-C", str(product), "plan", "--all", "--format", "json")
    order = [p["package"] for p in plan["packages"]]
    assert order.index("libplist") < order.index("libusbmuxd") < order.index("libimobiledevice")
    # a second run refuses to replace what is there, and writes nothing
    (product / "manifests/libs/libplist.yaml").write_text("path: repos/libs/libplist\n")
    code, out, err = cli(capsys, "-C", str(product), "init", "--write")
    assert code == 2
    assert "superbuild: error: manifests/altai/altai-agent.yaml exists: not replaced" in err
    assert (product / "manifests/libs/libplist.yaml").read_text() == "path: repos/libs/libplist\n"
    code, out, err = cli(capsys, "-C", str(product), "init", "--write", "--force")
    assert code == 0, err
    assert "libplist" in (product / "manifests/libs/libplist.yaml").read_text().splitlines()[0]


def test_a_deinitialised_submodule_is_read_from_git_modules(
    product: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_git(product, "submodule", "deinit", "-q", "-f", "repos/libs/libtatsu", env=git_env())
    assert not (product / "repos/libs/libtatsu/libtatsu.spec").exists()
    data = cli_json(capsys, "-C", str(product), "init", "--format", "json")
    tatsu = next(c for c in data["components"] if c["package"] == "libtatsu")
    assert tatsu["rpm_name"] == "libtatsu"
    assert [e["package"] for e in tatsu["requires"]] == ["libplist"]


def test_a_build_time_cycle_is_an_error(
    tmp_path: Path, rpm_home: None, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    for name, other in (("alpha", "beta"), ("beta", "alpha")):
        (specs / f"{name}.spec").write_text(
            f"Name: {name}\nVersion: 1\nRelease: 1\nSummary: {name}\nLicense: MIT\n"
            f"BuildRequires: {other}-devel\n%description\n{name}\n"
            f"%package devel\nSummary: {name} headers\n%description devel\nheaders\n"
        )
    top = make_superproject(
        tmp_path,
        {
            "repos/alpha": {"alpha.spec": os.fspath(specs / "alpha.spec")},
            "repos/beta": {"beta.spec": os.fspath(specs / "beta.spec")},
        },
    )
    code, out, err = cli(capsys, "-C", str(top), "init")
    assert code == 2
    assert out == ""
    assert err == (
        "superbuild: error: build-time dependency cycle in the specs: alpha -> beta -> alpha "
        "(alpha: BuildRequires: beta-devel; beta: BuildRequires: alpha-devel): no build "
        "order exists; fix one of these BuildRequires (or write these manifests by hand)\n"
    )


def test_no_submodule_is_an_error(repo: object, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import Repo

    assert isinstance(repo, Repo)
    repo.write("README", "x\n")
    repo.commit("no submodules")
    code, _out, err = cli(capsys, "-C", str(repo.path), "init")
    assert code == 2
    assert "records no submodule (gitlink): nothing to describe" in err
    code, _out, err = cli(capsys, "-C", str(repo.path), "init", "--force")
    assert code == 2
    assert "--force only applies with --write" in err


def test_json_carries_the_manifest_texts(product: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = cli_json(capsys, "-C", str(product), "init", "--format", "json")
    assert data["written"] == []
    assert data["next"] == []
    text = data["manifests"]["manifests/libs/libusbmuxd.yaml"]
    assert "  - libplist  # build-time: BuildRequires: libplist-devel >= 2.2.0\n" in text
    assert json.loads(json.dumps(data)) == data


def test_components_init_cannot_read_are_named(
    tmp_path: Path, rpm_home: None, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "broken.spec").write_text("Name: broken\nVersion: 1\n%if\n")
    (specs / "huge.spec").write_text("# padding\n" * 110_000 + "Name: huge\n")
    (specs / "tool.spec").write_text(
        "Name: tool\nVersion: 1\nRelease: 1\nSummary: a tool\nLicense: MIT\n%description\nx\n"
    )
    top = make_superproject(
        tmp_path,
        {
            "repos/a/tool": {"tool.spec": os.fspath(specs / "tool.spec")},
            "repos/b/tool": {"tool.spec": os.fspath(specs / "tool.spec")},
            "repos/broken": {"broken.spec": os.fspath(specs / "broken.spec")},
            "repos/huge": {"huge.spec": os.fspath(specs / "huge.spec")},
            # a spec mirror: more spec files than init parses, none at the root
            "repos/many": {
                f"specs/s{i:02}.spec": os.fspath(specs / "tool.spec") for i in range(17)
            },
        },
    )
    # a gitlink whose commit is in no repository here (never cloned)
    ghost = "1" * 40
    run_git(top, "update-index", "--add", "--cacheinfo", f"160000,{ghost},repos/ghost")
    run_git(top, "commit", "-q", "-m", "a ghost", env=git_env())
    data = cli_json(capsys, "-C", str(top), "init", "--format", "json")
    by_path = {c["path"]: c for c in data["components"]}
    # clashing folder names: the dashed path
    assert by_path["repos/a/tool"]["package"] == "repos-a-tool"
    assert by_path["repos/b/tool"]["manifest"] == "manifests/b/repos-b-tool.yaml"
    assert by_path["repos/broken"]["problem"].startswith("rpm cannot read broken.spec: ")
    assert by_path["repos/broken"]["spec"] == "broken.spec"
    assert by_path["repos/huge"]["problem"] == "huge.spec is larger than 1 MiB: not read"
    assert by_path["repos/many"]["problem"] == (
        "17 spec files in repos/many and none alone at its root (more than 16: none read): "
        "choose one with spec:"
    )
    assert len(by_path["repos/many"]["spec_candidates"]) == 16
    assert by_path["repos/ghost"]["problem"] == (
        "repos/ghost is not checked out and has no repository under .git/modules: run git "
        "submodule update --init repos/ghost, then superbuild init again"
    )
    notes = "\n".join(data["notes"])
    assert "ghost: repos/ghost is not checked out" in notes
    assert "; its requires are not known" in notes
    # each manifest is still valid: the whole product loads once committed
    code, _out, err = cli(capsys, "-C", str(top), "init", "--write")
    assert code == 0, err
    run_git(top, "add", "manifests", env=git_env())
    run_git(top, "commit", "-q", "-m", "manifests", env=git_env())
    head = run_git(top, "rev-parse", "HEAD")
    loaded = load_product(top, head, links=gitlinks(top, head))
    assert sorted(loaded.packages) == [
        "broken",
        "ghost",
        "huge",
        "many",
        "repos-a-tool",
        "repos-b-tool",
    ]


def test_write_refuses_a_manifests_link_out_of_the_superproject(
    product: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (product / "manifests").symlink_to(outside)
    code, _out, err = cli(capsys, "-C", str(product), "init", "--write")
    assert code == 2
    assert "leads outside" in err and "not written" in err
    assert list(outside.iterdir()) == []
