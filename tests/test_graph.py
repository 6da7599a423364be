"""The plain-Python graph queries agree with networkx; orders are deterministic."""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from superbuild.graph import DependencyGraph


@st.composite
def dags(draw: st.DrawFn) -> dict[str, list[str]]:
    n = draw(st.integers(min_value=0, max_value=25))
    names = [f"p{i:02d}" for i in range(n)]
    requires: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        # only earlier names: acyclic by construction; names are shuffled below
        requires[name] = draw(st.lists(st.sampled_from(names[:i]), unique=True)) if i else []
    perm = draw(st.permutations(names))
    rename = dict(zip(names, perm, strict=True))
    return {rename[k]: [rename[r] for r in v] for k, v in requires.items()}


@settings(max_examples=200, deadline=None)
@given(dags(), st.data())
def test_waves_match_networkx_generations(
    requires: dict[str, list[str]], data: st.DataObject
) -> None:
    graph = DependencyGraph(requires)
    subset = data.draw(st.sets(st.sampled_from(sorted(requires)))) if requires else set()
    nxg = graph.to_networkx().subgraph(subset).reverse()  # edges requirement -> dependent
    expected = [sorted(gen) for gen in nx.topological_generations(nxg)]
    assert graph.waves(subset) == expected
    order = graph.order(subset)
    position = {n: i for i, n in enumerate(order)}
    for n in subset:
        for req in requires[n]:
            if req in subset:
                assert position[req] < position[n]


@settings(max_examples=200, deadline=None)
@given(dags(), st.data())
def test_closures_match_networkx(requires: dict[str, list[str]], data: st.DataObject) -> None:
    if not requires:
        return
    graph = DependencyGraph(requires)
    start = data.draw(st.sets(st.sampled_from(sorted(requires)), min_size=1))
    nxg = graph.to_networkx()
    dependents = set(start).union(*(nx.ancestors(nxg, s) for s in start))
    dependencies = set(start).union(*(nx.descendants(nxg, s) for s in start))
    assert graph.with_dependents(start) == dependents
    assert graph.with_dependencies(start) == dependencies


@settings(max_examples=100, deadline=None)
@given(dags())
def test_critical_path_is_longest_weighted_chain(requires: dict[str, list[str]]) -> None:
    graph = DependencyGraph(requires)
    weight = {n: 1.0 + (sum(map(ord, n)) % 5) for n in requires}
    lengths = graph.critical_paths(requires, weight.__getitem__)
    nxg = graph.to_networkx()
    for n in requires:
        # longest path from n through its dependents, counting node weights
        best = {d: weight[d] for d in nx.ancestors(nxg, n) | {n}}
        for d in reversed(list(nx.topological_sort(nxg.reverse().subgraph(best)))):
            tails = [best[x] for x in nxg.predecessors(d) if x in best]
            best[d] = weight[d] + max(tails, default=0.0)
        assert lengths[n] == pytest.approx(best[n])


def test_cycle_is_reported_from_smallest_name() -> None:
    graph = DependencyGraph({"b": ["c"], "c": ["a"], "a": ["b"], "d": []})
    assert graph.find_cycle() == ["a", "b", "c", "a"]
    assert DependencyGraph({"a": ["b"], "b": []}).find_cycle() is None
    with pytest.raises(ValueError, match="cycle"):
        graph.waves()


def test_chain_to_prefers_shortest_path() -> None:
    graph = DependencyGraph({"app": ["lib", "util"], "lib": ["util"], "util": [], "x": []})
    assert graph.chain_to("app", {"util"}) == ["app", "util"]
    assert graph.chain_to("x", {"util"}) is None
