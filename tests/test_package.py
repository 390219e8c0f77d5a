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
