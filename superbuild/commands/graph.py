"""The whole dependency graph of a commit: every package, wave by wave, with its path,
requirements and description.

dot (Graphviz) and mermaid draw an edge from each package to the packages that need it
(build order runs along the arrows): superbuild graph --format dot | dot -Tsvg > g.svg
"""

from __future__ import annotations

import argparse
import sys

from superbuild.changes import borrowed_notes, load_head, resolve_range
from superbuild.commands import add_head, add_manifests_from, print_json, superproject
from superbuild.manifest import Product


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_head(p, "the commit to read")
    add_manifests_from(p)
    p.add_argument(
        "--format",
        choices=["text", "json", "dot", "mermaid"],
        default="text",
        help="text (a table, wave by wave), json (packages in build order), "
        "dot (Graphviz), mermaid (a flowchart)",
    )


def graph_json(product: Product) -> dict[str, object]:
    """Packages in build order: wave by wave, ties by name (as the waves)."""
    graph = product.graph
    waves = graph.waves()
    return {
        "commit": product.commit,
        "manifests": product.manifests,
        "packages": [
            {
                "name": name,
                "path": product.packages[name].path,
                "manifest": product.packages[name].manifest,
                "pipeline": product.packages[name].pipeline,
                "description": product.packages[name].description,
                "requires": list(graph.requires[name]),
                "required_by": list(graph.required_by[name]),
            }
            for wave in waves
            for name in wave
        ],
        "waves": waves,
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
    rng = resolve_range(repo, None, args.head, args.manifests_from, offer=True)
    product, _links = load_head(repo, rng)
    for note in borrowed_notes(product):
        print(note, file=sys.stderr)
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
