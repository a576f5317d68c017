"""No import cycles among deploysim's modules.

A small AST walk over ``src/deploysim``: every import that runs when a module is imported (at
module level, in class bodies, under ``if``/``try``) is an edge to the module it names; imports
inside functions (run on call, when every module is loaded) and under ``if TYPE_CHECKING:``
(never run) are not. A cycle of such edges makes the import order matter (a name read from a
half-initialised module), so the test names every one it finds.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import deploysim

SRC = Path(deploysim.__file__).resolve().parent
PACKAGE = "deploysim"


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    out: dict[str, Path] = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(SRC).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_time_nodes(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements among ``body`` that run when the module is imported."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _import_time_nodes(node.orelse)
        else:
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    stmts = [c for c in children if isinstance(c, ast.stmt)]
                    stmts += [s for c in children if not isinstance(c, ast.stmt) for s in c.body]
                    yield from _import_time_nodes(stmts)


def _edges(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that importing ``name`` imports (directly)."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in _import_time_nodes(ast.parse(path.read_text(encoding="utf-8")).body):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import sub` of a submodule needs pkg.sub; of a name defined in pkg's
            # __init__, pkg itself (the parent package runs first in any case, as for every
            # dotted import: that is how packages work, not a cycle).
            subs = [f"{base}.{a.name}" for a in node.names]
            targets = [t if t in modules else base for t in subs]
        out.update(t for t in targets if t in modules and t != name)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
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


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports at import time."""
    modules = _modules()
    return {name: _edges(name, path, modules) for name, path in modules.items()}


def test_the_walk_sees_module_level_imports_only() -> None:
    graph = import_graph()
    assert "deploysim.errors" in graph["deploysim.models.base"]
    # anthropic imports the SDK only under TYPE_CHECKING and in functions: no edge to it.
    assert "deploysim.models._http" in graph["deploysim.models.anthropic"]
    assert not any(
        m.startswith("deploysim.models.openai") for m in graph["deploysim.models.anthropic"]
    )
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    cycles = _cycles(import_graph())
    assert not cycles, "module-level import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)
