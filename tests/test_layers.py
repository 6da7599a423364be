"""The layering of the package: no import cycle, and the engine knows nothing of pipelines."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def import_graph() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts/import_graph.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_import_cycle() -> None:
    ig = import_graph()
    assert ig.cycles(ig.graph()) == []


def test_the_cycle_finder_finds_cycles() -> None:
    ig = import_graph()
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert ig.cycles(edges) == [["a", "b", "c"]]


def test_the_engine_knows_nothing_of_pipelines_or_rpm() -> None:
    edges = import_graph().graph()
    engine = [
        m
        for m in edges
        if m.startswith("superbuild.executors")
        or m
        in (
            "superbuild.jobs",
            "superbuild.scheduler",
            "superbuild.worker",
            "superbuild.proc",
        )
    ]
    for module in engine:
        wrong = sorted(m for m in edges[module] if m.startswith("superbuild.pipelines"))
        assert not wrong, f"{module} imports {wrong}"


def test_the_registry_loads_no_pipeline() -> None:
    code = (
        "import sys, superbuild.pipelines.registry as r; "
        "print(sorted(m for m in sys.modules if m.startswith('superbuild.pipelines.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    ).stdout
    assert out.strip() == "['superbuild.pipelines.registry']"
