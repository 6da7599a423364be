"""``superbuild graph``: the dependency graph of a commit."""

from __future__ import annotations

import argparse

from superbuild.changes import load_head, resolve_range
from superbuild.commands import print_json, superproject
from superbuild.manifest import Product


def graph_json(product: Product) -> dict[str, object]:
    graph = product.graph
    return {
        "commit": product.commit,
        "packages": [
            {
                "name": name,
                "path": pkg.path,
                "manifest": pkg.manifest,
                "pipeline": pkg.pipeline,
                "requires": list(graph.requires[name]),
                "required_by": list(graph.required_by[name]),
            }
            for name, pkg in product.packages.items()
        ],
        "waves": graph.waves(),
    }


def _dot_id(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def graph_dot(product: Product) -> str:
    """Graphviz: an edge ``a -> b`` means a is needed by (built before) b."""
    graph = product.graph
    lines = ["digraph superbuild {", "  rankdir=LR;", "  node [shape=box];"]
    lines += [f"  {_dot_id(n)};" for n in graph.names]
    lines += [
        f"  {_dot_id(req)} -> {_dot_id(n)};" for n in graph.names for req in graph.requires[n]
    ]
    lines.append("}")
    return "\n".join(lines)


def graph_mermaid(product: Product) -> str:
    """Mermaid flowchart, edges from a requirement to what needs it."""
    graph = product.graph
    ids = {n: f"p{i}" for i, n in enumerate(graph.names)}
    lines = ["flowchart LR"]
    for n in graph.names:
        label = n.replace('"', "#quot;")
        lines.append(f'  {ids[n]}["{label}"]')
    lines += [f"  {ids[req]} --> {ids[n]}" for n in graph.names for req in graph.requires[n]]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    repo = superproject(args)
    product, _links = load_head(repo, resolve_range(repo, None, args.head))
    if args.format == "json":
        print_json(graph_json(product))
    elif args.format == "dot":
        print(graph_dot(product))
    elif args.format == "mermaid":
        print(graph_mermaid(product))
    else:
        from superbuild.ui import show_graph

        show_graph(product)
    return 0
