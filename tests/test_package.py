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
    import pytest

    import engine

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        engine.nope  # noqa: B018


def _engine_imports() -> dict[str, set[str]]:
    """Every import between engine's modules, at the top or inside a function: module -> modules it
    imports. The package ``__init__`` files only re-export (lazily), so they are left out."""
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
            elif isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in modules and a.name != name}
                continue
            else:
                continue
            candidates = [target] + [f"{target}.{a.name}" for a in node.names]
            edges |= {c for c in candidates if c in modules and c != name}
        graph[name] = edges
    return {n: {e for e in es if modules[e].name != "__init__.py"} for n, es in graph.items()
            if modules[n].name != "__init__.py"}


def test_engine_has_no_import_cycles():
    """Every import between engine's modules points one way."""
    graph = _engine_imports()
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


# The layers, lowest first. A module may import from its own part and from any layer listed before
# its own; parts of one layer sit beside each other and never import each other (learning and
# serving: a trained model is exported by the recipe or a command, not by the learner).
LAYERS = [
    {"core": ["engine._lazy", "engine.memory", "engine.progress", "engine.losses", "engine.numerics", "engine.metrics",
              "engine.models", "engine.cam"]},
    {"data": ["engine.data"]},
    {"learning": ["engine.learning"], "serving": ["engine.serving"]},
    {"recipe": ["engine.recipe"]},
    {"datasets": ["engine.datasets"], "train": ["engine.train"], "predict": ["engine.predict"],
     "testing": ["engine.testing"]},
]


def _place(module: str) -> tuple[int, str]:
    for level, parts in enumerate(LAYERS):
        for part, prefixes in parts.items():
            if any(module == p or module.startswith(p + ".") for p in prefixes):
                return level, part
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")


def _against_the_order(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, imports in sorted(graph.items()):
        level, part = _place(module)
        for target in sorted(imports):
            t_level, t_part = _place(target)
            if not (t_level < level or t_part == part):
                wrong.append(f"{module} ({part}) imports {target} ({t_part})")
    return wrong


def test_engine_imports_follow_the_layer_order():
    graph = _engine_imports()
    wrong = _against_the_order(graph)
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)
    # the graph holds what it must: the recipe uses both learning and serving
    assert {"engine.learning.fine_tune", "engine.serving.export"} <= graph["engine.recipe"]


def test_the_layer_test_catches_a_wrong_import():
    ok = {"engine.recipe": {"engine.serving.export", "engine.learning.learner"},
          "engine.learning.learner": {"engine.learning.callbacks", "engine.losses"}}
    assert _against_the_order(ok) == []
    # what Learner.export was (learning -> serving, beside it) and a climb from data up into learning
    assert _against_the_order({"engine.learning.learner": {"engine.serving.export"},
                               "engine.data.loaders": {"engine.learning.features", "engine.models"}}) == [
        "engine.data.loaders (data) imports engine.learning.features (learning)",
        "engine.learning.learner (learning) imports engine.serving.export (serving)"]
