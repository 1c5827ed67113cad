"""The package layout: no import cycle between modules, at module level or inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "mitodet"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """mitodet modules imported anywhere in the file (``from a.b import c`` counts a.b.c if that is a module)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mitodet"):
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules
            out |= subs or {node.module}
    return out


def import_graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in ROOT.rglob("*.py")}
    modules = set(files)
    graph = {}
    for name, path in files.items():
        deps = _imports(path, modules) - {name}
        # a package __init__ re-exporting its own modules is not a dependency of those modules
        graph[name] = {d for d in deps if not name.startswith(d + ".") and d != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _package_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Module graph reduced to mitodet.<stage> packages (and top-level modules)."""
    top = lambda m: ".".join(m.split(".")[:2])  # noqa: E731
    out: dict[str, set[str]] = {}
    for a, deps in graph.items():
        out.setdefault(top(a), set()).update(top(d) for d in deps if top(d) != top(a))
    return out


def test_no_module_import_cycle():
    assert _cycles(import_graph()) == []


def test_no_cycle_between_stages():
    assert _cycles(_package_edges(import_graph())) == []


def test_the_ground_floor_imports_nothing_of_the_package_but_errors():
    g = import_graph()
    assert g["mitodet.schema"] <= {"mitodet.errors"} and g["mitodet.reflect"] == set()
    # only the CLI (and ``python -m mitodet``, its entry point) may import the CLI
    above = ("mitodet.cli", "mitodet.__main__")
    assert not any(d.startswith("mitodet.cli") for m, deps in g.items() if not m.startswith(above) for d in deps)


def test_the_checker_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


MAX_MODULE_LINES = 500


def test_no_module_is_over_500_lines():
    """Small modules (#18): a reader should know a module's room from its name and first lines."""
    sizes = {_module(p): len(p.read_text(encoding="utf-8").splitlines()) for p in ROOT.rglob("*.py")}
    assert {m: n for m, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_detection_runs_top_to_bottom_through_its_stages():
    """inputs -> provenance -> jobs -> plan -> writing -> run: each imports only those before it."""
    order = ["inputs", "provenance", "jobs", "plan", "writing", "run"]
    g = import_graph()
    for i, m in enumerate(order):
        later = {f"mitodet.infer.{n}" for n in order[i + 1 :]}
        assert not g[f"mitodet.infer.{m}"] & later, m


def test_a_long_function_says_why_in_its_docstring():
    """#18: no function over about 80 lines without a reason given in its docstring."""
    long = []
    for p in ROOT.rglob("*.py"):
        for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.end_lineno - n.lineno + 1 > 80:
                if "Long because" not in (ast.get_docstring(n) or ""):
                    long.append(f"{_module(p)}.{n.name}")
    assert long == []
