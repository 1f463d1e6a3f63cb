"""No module under worldmodels/ imports in a circle, at the module or the package level.

Importing `worldmodels.a.b` runs `worldmodels/a/__init__.py` first, so a circle between two
packages (a module of `viz` importing `data` while a module of `data` imports `viz`) can break
an import depending on which side is imported first. The graph is built from the source's
module-level `import` statements (the AST, nothing is imported); imports inside functions run
later and cannot make an import-time circle.
"""

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # worldmodels/


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(tree: ast.Module, name: str, is_package: bool) -> set[str]:
    """Dotted names of worldmodels modules imported by the module's top-level statements
    (including those nested in if / try blocks, but not in functions or classes)."""
    found = set()
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If | ast.Try):
            todo += (
                node.body
                + node.orelse
                + getattr(node, "handlers", [])
                + getattr(node, "finalbody", [])
            )
        elif isinstance(node, ast.ExceptHandler):
            todo += node.body
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {n for n in found if n == "worldmodels" or n.startswith("worldmodels.")}


def import_graph(root: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    """Module -> the worldmodels modules it imports at import time (names that are not
    modules, like `from worldmodels.x import function`, resolve to their module). Edges to
    the module's own enclosing packages are left out: Python imports those first anyway."""
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        imported = top_level_imports(tree, name, path.name == "__init__.py")
        targets = set()
        for dotted in imported:
            while dotted not in files and "." in dotted:
                dotted = dotted.rsplit(".", 1)[0]
            # A module's own packages are always imported before it (benign "circle").
            if dotted in files and dotted != name and not name.startswith(dotted + "."):
                targets.add(dotted)
        graph[name] = targets
    return graph


def package_graph(graph: dict[str, set[str]], package: str) -> dict[str, set[str]]:
    """Edges between the direct children of `package`: child a -> child b when a module
    under a imports a module under b (a != b)."""
    depth = package.count(".") + 1

    def child(module: str) -> str | None:
        parts = module.split(".")
        inside = module.startswith(package + ".") and len(parts) > depth
        return ".".join(parts[: depth + 1]) if inside else None

    edges: dict[str, set[str]] = {}
    for source, targets in graph.items():
        a = child(source)
        if a is None:
            continue
        edges.setdefault(a, set())
        for target in targets:
            b = child(target)
            if b is not None and b != a:
                edges[a].add(b)
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of a directed graph as a list of nodes (first = last), or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def packages(root: Path = PACKAGE_DIR) -> list[str]:
    return sorted(module_name(p, root) for p in root.rglob("__init__.py"))


def test_the_graph_sees_known_edges():
    graph = import_graph()
    assert "worldmodels.occ3d" in graph["worldmodels.metrics.occupancy"]
    assert "worldmodels.viz.driving" in graph["worldmodels.viz"]


def test_no_module_imports_in_a_circle():
    assert find_cycle(import_graph()) is None


@pytest.mark.parametrize("package", packages())
def test_no_package_imports_in_a_circle(package):
    cycle = find_cycle(package_graph(import_graph(), package))
    assert cycle is None, f"packages import each other in a circle: {' -> '.join(cycle)}"


def test_the_check_finds_a_planted_circle(tmp_path):
    root = tmp_path / "worldmodels"
    for folder in ("data", "viz"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "data" / "figures.py").write_text("from worldmodels.viz.maps import draw\n")
    (root / "viz" / "maps.py").write_text("from worldmodels.data.classes import NAMES\n")
    (root / "data" / "classes.py").write_text("NAMES = ()\n")
    graph = import_graph(root)
    assert find_cycle(graph) is None  # no module circle ...
    cycle = find_cycle(package_graph(graph, "worldmodels"))  # ... but a package one
    assert cycle == ["worldmodels.data", "worldmodels.viz", "worldmodels.data"]
