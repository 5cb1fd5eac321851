#!/usr/bin/env python3
"""Draw the layers of ecohub from the import graph (a Mermaid diagram for docs/architecture.md).

`python scripts/layers.py` prints the diagram; `--write` puts it between the markers in docs/architecture.md.
The layers are those of the import-linter contract in pyproject.toml, so the picture and the contract that CI
checks cannot disagree; tests/test_architecture.py fails when the committed picture is stale.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- layers:begin (scripts/layers.py --write) -->", "<!-- layers:end -->"
TITLES = ["edges", "edges", "composition", "composition", "composition", "composition", "contexts",
          "shared kernel", "shared kernel", "pure"]


def layers() -> list[list[str]]:
    """The layer contract's layers, top first, each as its package names (without `ecohub.`)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    contract = next(c for c in config if c.get("type") == "layers")
    return [[m.strip().removeprefix("ecohub.") for m in re.split(r"[|:]", layer)] for layer in contract["layers"]]


def package_edges() -> set[tuple[str, str]]:
    """(importer, imported) between top-level packages of ecohub, type-checking imports included."""
    graph = grimp.build_graph("ecohub", include_external_packages=False)
    edges = set()
    for module in graph.modules:
        src = module.split(".")[1] if "." in module else ""
        for imported in graph.find_modules_directly_imported_by(module):
            dst = imported.split(".")[1] if "." in imported else ""
            if src and dst and src != dst:
                edges.add((src, dst))
    return edges


def render() -> str:
    """The Mermaid diagram: the layer groups, which group imports which, and the imports between contexts."""
    groups: dict[str, list[str]] = {}
    for title, layer in zip(TITLES, layers(), strict=True):
        groups.setdefault(title, []).extend(layer)
    group_of = {p: title for title, ps in groups.items() for p in ps}
    ids = {title: title.replace(" ", "_") for title in groups}
    lines = ["```mermaid", "flowchart TB"]
    for title, packages in groups.items():
        lines.append(f'  subgraph {ids[title]}["{title}: {", ".join(packages)}"]')
        if title == "contexts":
            lines += [f"    {p}" for p in packages]
        lines.append("  end")
    between: set[tuple[str, str]] = set()
    for src, dst in sorted(package_edges()):
        if src not in group_of or dst not in group_of:
            continue
        if group_of[src] == group_of[dst] == "contexts":
            lines.append(f"  {src} --> {dst}")
        elif group_of[src] != group_of[dst]:
            between.add((ids[group_of[src]], ids[group_of[dst]]))
    lines += [f"  {a} ==> {b}" for a, b in sorted(between)]
    lines.append("```")
    return "\n".join(lines)


def main() -> int:
    """Print the diagram, or write it into docs/architecture.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="update docs/architecture.md in place")
    args = parser.parse_args()
    diagram = render()
    if not args.write:
        print(diagram)
        return 0
    text = DOC.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    DOC.write_text(text[:start] + "\n" + diagram + "\n" + text[end:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
