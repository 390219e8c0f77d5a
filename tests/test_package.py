import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_engine_is_lazy():
    code = "import sys, engine; print(sorted(m for m in ('torch', 'timm', 'numpy', 'PIL') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert (out.returncode, out.stdout.strip()) == (0, "[]")


def test_every_exported_name_resolves():
    import engine

    for name in engine.__all__:
        assert getattr(engine, name) is not None, name
    assert engine.cross_entropy.__module__ == "engine.losses"


def test_unknown_name_is_an_attribute_error():
    import engine
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        engine.nope  # noqa: B018


def test_engine_has_no_import_cycles():
    """Every import between engine's modules, at the top or inside a function, points one way."""
    import ast

    root = REPO / "engine"
    modules = {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
               for p in root.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("engine"):
                target = node.module
            else:
                continue
            candidates = [target] + [f"{target}.{a.name}" for a in node.names]
            edges |= {c for c in candidates if c in modules and c != name}
        graph[name] = edges
    # the package __init__ files only re-export (lazily): they are not part of the layering
    graph = {n: {e for e in es if modules[e].name != "__init__.py"} for n, es in graph.items()
             if modules[n].name != "__init__.py"}
    state, cycle = {}, []

    def visit(n, path):
        state[n] = "open"
        for m in sorted(graph.get(n, ())):
            if state.get(m) == "open":
                cycle.append(path + [m])
            elif m not in state:
                visit(m, path + [m])
        state[n] = "done"

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    assert not cycle, f"import cycles: {cycle}"
    assert graph["engine.learning.learner"] and "engine.learning.fine_tune" not in graph["engine.learning.learner"]
