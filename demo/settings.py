"""What the server operator chooses: which model to serve, what to train on, how big an upload may be.

Visitors never choose paths on the server. The training data in particular is fixed when the
server starts: ``--train-data``, else the 370-photo sample that ``engine.data.locate.pets_sample()``
finds (``PETS_SAMPLE``, or the cache, picked out of the full download when that is all there is).
Without any photos tab 4 is switched off and shows the one command that switches it on, and the
photo tabs offer the few example photos that ship in ``demo/examples/``.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SHIPPED_MODEL", "SHIPPED_EXAMPLES", "DemoSettings", "default_train_data", "parse_size", "parse_auth",
           "is_loopback", "example_photos", "TRAINING_DISABLED", "DEFAULT_PORT", "choose_port", "port_problem"]

SHIPPED_MODEL = Path(__file__).resolve().parent / "model"
SHIPPED_EXAMPLES = Path(__file__).resolve().parent / "examples"
TRAINING_DISABLED = ("Training is switched off on this server: it has no pet photos to train on. To switch it "
                     "on, stop the server, run\n\n    python -m engine.datasets sample\n\n(it downloads the "
                     "Oxford-IIIT Pet dataset and picks out the 370-photo sample) and start the demo again. "
                     "Or start it with `python -m demo --train-data path/to/labels.csv` (a labels CSV with "
                     "images/ beside it, or a folder of photos named like `beagle_12.jpg`).")

DEFAULT_PORT = 7860  # Gradio's, and the one a Hugging Face Space expects
_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def parse_size(value: str | int) -> int:
    """``"10mb"`` -> 10485760 bytes (units b, kb, mb, gb, any case); an int is already bytes."""
    if isinstance(value, int):
        n = value
    else:
        match = re.fullmatch(r"\s*(\d+)\s*([kmg]?b)?\s*", str(value).lower())
        if not match:
            raise ValueError(f"file size {value!r}: expected a number of bytes or e.g. '10mb' (units b, kb, mb, gb)")
        n = int(match[1]) * _UNITS[match[2] or "b"]
    if n <= 0:
        raise ValueError(f"file size {value!r}: must be more than 0 bytes")
    return n


def default_train_data(show=print) -> Path | None:
    """The sample's ``labels.csv`` that ``pets_sample()`` finds (picking the sample out of the full
    download if needed), else None: training switched off. A wrong ``PETS_SAMPLE`` is said, not hidden."""
    from engine.data.locate import pets_sample

    try:
        return (pets_sample(show=show) / "labels.csv").resolve()
    except (OSError, ValueError) as err:
        if os.environ.get("PETS_SAMPLE") or "No pet photos found" not in str(err):
            show(f"petbreeds: training is off and the examples are the shipped ones: {err}")
        return None


@dataclass(frozen=True)
class DemoSettings:
    """The operator's choices. ``train_data`` None switches training off."""

    model: Path = SHIPPED_MODEL
    train_data: Path | None = None
    max_file_size: int = 10 * 1024**2  # bytes
    auth: tuple[str, str] | None = None  # (user, password) for Gradio's login page
    trainings: int = 1  # trainings that run at once, server-wide
    training_queue: int = 1  # trainings that may wait for a place; everyone else is told to come back
    session_models: int = 8  # models trained in tab 4 kept at once (the least recently used goes first)
    session_ttl: float = 3600.0  # seconds a session's model is kept after its last use
    delete_cache_after: int | None = 3600  # seconds until uploads and results are deleted (None: keep)
    uploads_per_minute: int = 30  # per visitor (network address), and 2 MB each on average
    flag_dir: Path | None = None  # where "Wrong breed?" flags are written (None: flagging off)
    flag_max: int = 1000  # flags that folder may hold; then new ones are refused

    @classmethod
    def from_env(cls) -> DemoSettings:
        """The defaults: the shipped model, the pet sample when there are photos (``default_train_data``),
        and a login when ``PETBREEDS_AUTH=user:password`` is set."""
        auth = os.environ.get("PETBREEDS_AUTH")
        return cls(train_data=default_train_data(), auth=parse_auth(auth) if auth else None)


def parse_auth(value: str) -> tuple[str, str]:
    """``"user:password"`` -> ``("user", "password")`` (the password may contain colons)."""
    user, sep, password = str(value).partition(":")
    if not sep or not user.strip() or not password:
        raise ValueError("expected USER:PASSWORD, both non-empty (e.g. teacher:s3cret)")
    return user.strip(), password


def choose_port(flag: int | None, environ=os.environ) -> int:
    """The port to listen on: ``--port``, else ``$GRADIO_SERVER_PORT`` (the variable Gradio and hosts
    such as Hugging Face Spaces use), else ``DEFAULT_PORT``. ``ValueError`` for anything but 1-65535."""
    if flag is not None:
        value, source = flag, "--port"
    elif environ.get("GRADIO_SERVER_PORT", "").strip():
        value, source = environ["GRADIO_SERVER_PORT"].strip(), "GRADIO_SERVER_PORT"
    else:
        return DEFAULT_PORT
    try:
        port = int(value)
    except ValueError:
        raise ValueError(f"{source}={value!r}: expected a port number, 1 to 65535 (e.g. 7861)") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"{source}={port}: expected a port number, 1 to 65535 (e.g. 7861)")
    return port


def port_problem(host: str, port: int, only_busy: bool = False) -> str | None:
    """Why the demo cannot listen on ``host:port``, in one line, or None.

    ``only_busy``: report only a port that is in use (or needs administrator rights), the checks
    ``python -m demo`` makes before the app loads; anything else (an address this machine does not
    have, say) is left to the server, and said after it failed."""
    import errno
    import socket

    host = host.strip("[]")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except (OSError, UnicodeError) as err:
        return None if only_busy else f"--host {host}: cannot resolve it ({err})"
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: a closing socket is no owner
        try:
            s.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                return (f"port {port} is already in use on {host} (another demo?): stop that program, or choose "
                        f"another port with --port {port + 1 if port < 65535 else 7861}")
            if err.errno == errno.EACCES:
                return f"port {port} needs administrator rights on this system: choose one above 1023 with --port"
            return None if only_busy else f"cannot listen on {host}:{port} ({err.strerror or err}): check --host"
    return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to a network address
        return False


def example_photos(table: Path | None = None, n_per_species: int = 4) -> list[Path]:
    """Photos to click on: validation photos of ``table`` (a labels CSV), cats first, one per breed,
    ``n_per_species`` of each; without a table (or if it has none), the ones in ``demo/examples/``.

    The photos stay where they are: the repository holds only the few shipped examples.
    """
    picked: dict[str, list[Path]] = {"cat": [], "dog": []}
    if table is not None and Path(table).is_file() and Path(table).suffix.lower() == ".csv":
        table = Path(table)
        breeds: set[str] = set()
        with open(table, newline="") as f:
            for row in csv.DictReader(f):
                species, breed = row.get("species"), row.get("breed")
                path = table.parent / "images" / row.get("name", "")
                if (row.get("is_valid") == "1" and species in picked and len(picked[species]) < n_per_species
                        and breed not in breeds and path.is_file()):
                    picked[species].append(path)
                    breeds.add(breed)
    if not picked["cat"] + picked["dog"]:
        for path in sorted(SHIPPED_EXAMPLES.glob("*.jpg")):
            picked["cat" if path.name[0].isupper() else "dog"].append(path)
    return picked["cat"] + picked["dog"]
