"""The shape of the source tree: no import circle among the service's modules, and layers that
point one way (the domain packages never import the HTTP layer).

The graph is read from the source with `ast`, so it counts every import a module makes:
top-level, inside functions, and under `if TYPE_CHECKING:` (a circle through a type-only import
is still two modules that cannot be understood one without the other). Importing
`ywmessaging.a.b` also runs `ywmessaging/a/__init__.py`; that edge counts too, except from a
module inside that package (its own package is already being imported).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from ywmessaging.config import REPO_ROOT

SRC = REPO_ROOT / "src"
PACKAGE = "ywmessaging"
# Below the HTTP layer: they never import the handlers (api/), the route table or the app.
LOWER = ("auth", "billing", "church", "integrations", "messaging", "tenants", "ops", "db",
         "registry",
         "observability", "values", "errors", "config", "crypto", "sqlq", "contract", "keys",
         "time_limits", "simulators")
UPPER = ("api", "routes", "app", "commands", "__main__")


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (packages by their own name)."""
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imported(name: str, path: Path, node: ast.Import | ast.ImportFrom,
              known: dict[str, Path]) -> Iterator[str]:
    """The package's modules an import statement names."""
    if isinstance(node, ast.Import):
        yield from (a.name for a in node.names if a.name in known)
        return
    if node.level:
        base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        base = base[:len(base) - node.level + 1]
        target = ".".join([*base, *([node.module] if node.module else [])])
    else:
        target = node.module or ""
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        if sub in known:
            yield sub
        elif target in known:
            yield target


def import_graph() -> dict[str, set[str]]:
    """Module → the package's modules it imports (anywhere in its body)."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _imported(name, path, node, known):
                    edges.add(target)
                    parts = target.split(".")
                    for i in range(1, len(parts)):   # the packages the import runs first
                        parent = ".".join(parts[:i])
                        if not (name == parent or name.startswith(parent + ".")):
                            edges.add(parent)
        edges.discard(name)
        graph[name] = edges
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _under(module: str, tops: tuple[str, ...]) -> bool:
    rest = module.removeprefix(PACKAGE + ".")
    return rest.split(".")[0] in tops and module != PACKAGE


def test_no_import_circle() -> None:
    assert circles(import_graph()) == []


def test_the_circle_check_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert circles(graph) == [["a", "b", "c"]]


def test_lower_layers_never_import_the_http_layer() -> None:
    graph = import_graph()
    wrong = sorted(f"{module} imports {target}"
                   for module, targets in graph.items() if _under(module, LOWER)
                   for target in targets if _under(target, UPPER))
    assert wrong == []


def test_the_graph_sees_every_kind_of_import() -> None:
    """Function-level and TYPE_CHECKING imports are edges (a check that misses them would
    pass whatever the tree looks like)."""
    graph = import_graph()
    assert "ywmessaging.tenants.runtime" in graph["ywmessaging.tenants.keys"]      # TYPE_CHECKING
    assert "ywmessaging.auth.smtp" in graph["ywmessaging.config"]                  # in a function
    assert "ywmessaging.api" in graph["ywmessaging.routes"]                        # package first
    assert "ywmessaging.api.broadcasts" in graph["ywmessaging.routes"]
