"""The classroom server's image (``Dockerfile`` at the repository root).

What the file says is checked everywhere, statically and by running its start command with a
stand-in ``python``: the command, the login, the cache on a volume, CPU-only PyTorch, nothing
downloaded by Playwright. The image itself is built and started only where a docker daemon answers
(skipped with the reason otherwise; the build needs internet access for its packages).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

from demo.__main__ import build_parser
from tests.support.server import ROOT, free_port

DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` for each instruction, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def _one(name: str) -> str:
    found = [args for instruction, args in _instructions() if instruction == name]
    assert len(found) == 1, (name, found)
    return found[0]


def _env() -> dict[str, str]:
    env = {}
    for args in (a for i, a in _instructions() if i == "ENV"):
        env.update(dict(pair.split("=", 1) for pair in shlex.split(args)))
    return env


def _start_script() -> str:
    command = json.loads(_one("CMD"))  # the exec form: no shell in front of it but the one it names
    assert command[:2] == ["sh", "-c"] and len(command) == 3, command
    return command[2]


def test_the_dockerfile_starts_the_demo_for_the_network_with_a_login():
    script = _start_script()
    demo = re.search(r"exec (python -m demo [^;]*)$", script)
    assert demo and "--host 0.0.0.0" in demo[1], script
    args = build_parser().parse_args(shlex.split(demo[1])[3:])  # the options the demo really takes
    assert args.host == "0.0.0.0" and args.port is None  # the port: GRADIO_SERVER_PORT below
    assert "PETBREEDS_AUTH" in script  # the login comes from the environment (the demo's --auth reads it)
    env = _env()
    assert env["GRADIO_SERVER_PORT"] == "7860" and _one("EXPOSE") == "7860"
    assert env["GRADIO_ANALYTICS_ENABLED"] == "False" and env["HF_HUB_OFFLINE"] == "1"  # nothing fetched at run time


def test_the_cache_is_on_a_volume_and_torch_is_the_cpu_build():
    env = _env()
    assert env["PETBREEDS_HOME"] == "/data" and "/data" in _one("VOLUME").split()
    installs = [args for i, args in _instructions() if i == "RUN" and "pip install" in args]
    assert "--index-url https://download.pytorch.org/whl/cpu" in installs[0] and "torch" in installs[0]
    assert "playwright install" not in DOCKERFILE.read_text()  # never a downloaded browser
    assert _one("USER") != "root"
    for args in (a for i, a in _instructions() if i == "COPY"):
        for source in shlex.split(args)[:-1]:
            assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignored)


@pytest.fixture
def stand_in_python(tmp_path):
    """A ``python`` that prints its arguments instead of starting the demo."""
    fake = tmp_path / "bin" / "python"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho "python $*"\n')
    fake.chmod(0o755)
    return fake.parent


def test_the_start_command_refuses_to_run_without_a_login(stand_in_python):
    script, path = _start_script(), f"{stand_in_python}:/usr/bin:/bin"
    done = subprocess.run(["sh", "-c", script], env={"PATH": path}, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: set PETBREEDS_AUTH=user:password"), done.stderr
    done = subprocess.run(["sh", "-c", script], env={"PATH": path, "PETBREEDS_AUTH": "teacher:s3cret"},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout.strip() == "python -m demo --host 0.0.0.0", done


# --- the image itself, where docker runs ----------------------------------------------------------------

def _docker_problem() -> str | None:
    if shutil.which("docker") is None:
        return "docker is not installed here"
    done = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return f"docker is installed but its daemon does not answer: {done.stderr.strip().splitlines()[-1:]}"
    return None


def test_the_image_builds_and_serves_the_login_page():
    problem = _docker_problem()
    if problem:
        pytest.skip(f"the image is not built: {problem}")
    tag = f"petbreeds-test-{uuid.uuid4().hex[:8]}"
    built = subprocess.run(["docker", "build", "-t", tag, str(ROOT)], capture_output=True, text=True, timeout=3600)
    assert built.returncode == 0, built.stderr[-3000:]
    name, port = tag, free_port()
    try:
        refused = subprocess.run(["docker", "run", "--rm", tag], capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2 and "PETBREEDS_AUTH" in refused.stderr
        subprocess.run(["docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:7860", "-e",
                        "PETBREEDS_AUTH=teacher:s3cret", tag], check=True, capture_output=True, timeout=120)
        deadline, status = time.monotonic() + 180, None
        while time.monotonic() < deadline and status is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    status = response.status
            except OSError:
                time.sleep(1)
        assert status == 200  # Gradio's login page
        config = urllib.request.Request(f"http://127.0.0.1:{port}/config")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(config, timeout=10)
        assert err.value.code == 401  # nothing but the login without the password
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=120)
