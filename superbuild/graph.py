"""The dependency graph of a product.

The queries on the hot path of every push (affected set, waves, order) are a few lines
of plain Python over adjacency dicts: importing networkx alone costs more than the whole
``superbuild changed`` budget.  networkx serves the cold paths: cycle finding for
validation, critical paths and exports.  ``tests/test_graph.py`` checks that both agree.
"""

from __future__ import annotations

from collections import deque
from functools import cached_property

TYPE_CHECKING = False  # typing is not imported: graph queries are on changed's lean path

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Mapping

    import networkx as nx


class DependencyGraph:
    """Packages and their ``requires`` (edges to unknown names are ignored)."""

    def __init__(self, requires: Mapping[str, Iterable[str]]) -> None:
        self.requires: dict[str, tuple[str, ...]] = {
            name: tuple(sorted(r for r in reqs if r in requires))
            for name, reqs in sorted(requires.items())
        }

    @cached_property
    def required_by(self) -> dict[str, tuple[str, ...]]:
        rev: dict[str, list[str]] = {n: [] for n in self.requires}
        for name, reqs in self.requires.items():
            for req in reqs:
                rev[req].append(name)
        return {n: tuple(sorted(v)) for n, v in rev.items()}

    def __contains__(self, name: object) -> bool:
        return name in self.requires

    def __len__(self) -> int:
        return len(self.requires)

    @property
    def names(self) -> list[str]:
        return list(self.requires)

    # ------------------------------------------------------------------ closures
    def _closure(self, start: Iterable[str], edges: Mapping[str, tuple[str, ...]]) -> set[str]:
        seen = {n for n in start if n in edges}
        todo = list(seen)
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    def with_dependents(self, names: Iterable[str]) -> set[str]:
        """``names`` plus every package that depends on one of them, transitively."""
        return self._closure(names, self.required_by)

    def with_dependencies(self, names: Iterable[str]) -> set[str]:
        """``names`` plus everything they require, transitively."""
        return self._closure(names, self.requires)

    # ------------------------------------------------------------------ order
    def waves(self, subset: Collection[str] | None = None) -> list[list[str]]:
        """Topological generations of the graph induced by ``subset``, each sorted by name.

        Requirements outside ``subset`` count as already built.  Raises ValueError on a
        cycle (manifests are validated, so this only happens for hand-made graphs).
        """
        nodes = set(self.requires if subset is None else subset)
        indegree = {n: 0 for n in nodes}
        for n in nodes:
            for req in self.requires[n]:
                if req in nodes:
                    indegree[n] += 1
        wave = sorted(n for n, d in indegree.items() if d == 0)
        result = []
        done = 0
        while wave:
            result.append(wave)
            done += len(wave)
            nxt = []
            for n in wave:
                for dep in self.required_by[n]:
                    if dep in indegree:
                        indegree[dep] -= 1
                        if indegree[dep] == 0:
                            nxt.append(dep)
            wave = sorted(nxt)
        if done != len(nodes):
            raise ValueError("dependency cycle")
        return result

    def order(self, subset: Collection[str] | None = None) -> list[str]:
        """A deterministic topological order: wave by wave, by name within a wave."""
        return [n for wave in self.waves(subset) for n in wave]

    def chain_to(
        self, target: str, sources: Collection[str], within: Collection[str] | None = None
    ) -> list[str] | None:
        """Shortest path ``[target, ..., source]`` along ``requires`` to one of ``sources``."""
        allowed = None if within is None else set(within)
        parent: dict[str, str | None] = {target: None}
        queue = deque([target])
        while queue:
            node = queue.popleft()
            if node in sources:
                path = [node]
                while (prev := parent[path[-1]]) is not None:
                    path.append(prev)
                return path[::-1]
            for req in self.requires.get(node, ()):
                if req not in parent and (allowed is None or req in allowed):
                    parent[req] = node
                    queue.append(req)
        return None

    def critical_paths(
        self, subset: Collection[str], weight: Callable[[str], float]
    ) -> dict[str, float]:
        """For each package: its weight plus the longest chain of dependents after it."""
        nodes = set(subset)
        length: dict[str, float] = {}
        for n in reversed(self.order(nodes)):
            tail = max((length[d] for d in self.required_by[n] if d in nodes), default=0.0)
            length[n] = weight(n) + tail
        return length

    # ------------------------------------------------------------------ networkx
    def to_networkx(self) -> nx.DiGraph[str]:
        """Edges point from a package to what it requires."""
        import networkx as nx

        graph: nx.DiGraph[str] = nx.DiGraph()
        graph.add_nodes_from(self.requires)
        graph.add_edges_from((n, r) for n, reqs in self.requires.items() for r in reqs)
        return graph

    def find_cycle(self) -> list[str] | None:
        """One cycle as ``[a, b, c, a]`` (a requires b ...), starting at its smallest name."""
        import networkx as nx

        try:
            edges = nx.find_cycle(self.to_networkx())
        except nx.NetworkXNoCycle:
            return None
        members = [u for u, _v in edges]
        start = members.index(min(members))
        members = members[start:] + members[:start]
        return [*members, members[0]]
