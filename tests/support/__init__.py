"""Code the tests share with the benchmarks (``bench/``): not part of the package, never in the wheel.

    server   ``python -m demo`` in a child process (``DemoServer``), and Gradio's HTTP API called
             the way any script can call it (``RawClient``)
    non_pets real photographs that are not cats or dogs, offline (scikit-image's, matplotlib's), and
             scikit-image's cat: what the "not a pet" decision is measured and tested on

Imported as ``tests.support``: pytest puts the repository root on ``sys.path`` (``pythonpath`` in
pyproject.toml), and the bench scripts put it there themselves.
"""
