"""``python -m demo``: start the web demo on http://127.0.0.1:7860.

    python -m demo [--host 127.0.0.1] [--port 7860] [--model demo/model] [--auth USER:PASSWORD]
                   [--share] [--train-data path/to/labels.csv] [--max-file-size 10mb] [--trainings 1]
                   [--training-queue 1] [--delete-after 3600] [--uploads-per-minute 30]
                   [--flag-dir DIR] [--flag-max 1000]

The options are read and checked before the app (torch, gradio, the model) is loaded, so ``--help``,
a mistyped option and a port that is already in use answer at once, in one line, with exit status 2.
The port is ``--port``, else ``GRADIO_SERVER_PORT`` (as Gradio and Hugging Face Spaces set it), else 7860.

On a hosted notebook (Google Colab) 127.0.0.1 is the notebook's machine, not the student's:

    !python -m demo --share --auth student:s3cret

asks Gradio's share service for a temporary public https://....gradio.live link. A public link is
open to anyone who has it, so ``--share`` is refused without a login (``--auth`` or
``PETBREEDS_AUTH``). When no link can be made (no internet, the tunnel program cannot be downloaded,
the share server says no), the demo says why in one line and stops with exit status 2: a server
that only this machine can reach is not what ``--share`` asked for. Inside a notebook cell,
``demo.app.launch_in_notebook()`` starts the demo without blocking the kernel.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from demo.settings import (
    DEFAULT_PORT,
    SHIPPED_MODEL,
    DemoSettings,
    choose_port,
    default_train_data,
    is_loopback,
    parse_auth,
    parse_size,
    port_problem,
)

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m demo", description="Start the petbreeds web demo.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine "
                                                       "only; 0.0.0.0 opens it to the network)")
    p.add_argument("--port", type=int, default=None,
                   help=f"port (default: $GRADIO_SERVER_PORT, else {DEFAULT_PORT}; --port wins over the variable)")
    p.add_argument("--model", type=Path, default=SHIPPED_MODEL, help="exported model folder (default: the "
                                                                    "shipped demo/model)")
    p.add_argument("--train-data", type=Path, default=None,
                   help="labels CSV (images/ beside it) or image folder for tab 4 and the examples (default: the "
                        "370-photo pet sample: PETS_SAMPLE, or the cache, picked out of the full dataset when "
                        "needed; without photos training is off: python -m engine.datasets sample gets them)")
    p.add_argument("--auth", default=None, metavar="USER:PASSWORD",
                   help="ask visitors to log in with this user and password (default: $PETBREEDS_AUTH, else no "
                        "login); strongly advised with --host 0.0.0.0, required with --share")
    p.add_argument("--share", action="store_true",
                   help="also ask Gradio's share service for a temporary public link (https://....gradio.live), "
                        "for a hosted notebook such as Colab whose 127.0.0.1 your browser cannot reach. Needs "
                        "--auth and internet access; anyone with the link and the login can use the demo, and "
                        "all traffic goes through Gradio's share servers (or GRADIO_SHARE_SERVER_ADDRESS=host:port, "
                        "a share server of your own). If no link can be made, the demo says why in one line and "
                        "exits with status 2")
    p.add_argument("--max-file-size", default="10mb", help="largest upload, e.g. 10mb (default) or 500kb")
    p.add_argument("--trainings", type=int, default=1, help="trainings that run at once, server-wide (default 1)")
    p.add_argument("--training-queue", type=int, default=1,
                   help="trainings that may wait for a place (default 1); further visitors are told to come back")
    p.add_argument("--delete-after", type=int, default=3600, metavar="SECONDS",
                   help="delete uploads and result files this long after they were written (default 3600; 0 keeps "
                        "them until the server stops)")
    p.add_argument("--uploads-per-minute", type=int, default=30, metavar="N",
                   help="uploads one visitor (one network address) may send a minute, and 2 MB each on average "
                        "(default 30; behind a proxy or a share link the whole room shares one address)")
    p.add_argument("--flag-dir", type=Path, default=None, metavar="DIR",
                   help="switch on \"Wrong breed?\": visitors' reports (photo, answer, their choice of breed, time) "
                        "are written to DIR, one JSON and one JPEG (at most 250 KB) each (default: off)")
    p.add_argument("--flag-max", type=int, default=1000, metavar="N",
                   help="reports DIR may hold; then new ones are refused, none deleted (default 1000)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse the options, build the app, serve until Ctrl-C. Returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        max_file_size = parse_size(args.max_file_size)
    except ValueError as err:
        return _fail(f"--max-file-size: {err}")
    auth_text = args.auth if args.auth is not None else os.environ.get("PETBREEDS_AUTH")
    try:
        auth = parse_auth(auth_text) if auth_text else None
    except ValueError as err:
        return _fail(f"--auth: {err}")
    if args.trainings < 1 or args.training_queue < 0 or args.delete_after < 0 or args.uploads_per_minute < 1:
        return _fail("--trainings and --uploads-per-minute must be at least 1, --training-queue and --delete-after "
                     "at least 0")
    if args.flag_max < 1:
        return _fail("--flag-max must be at least 1")
    try:
        args.flag_dir and args.flag_dir.expanduser().mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return _fail(f"--flag-dir {args.flag_dir}: cannot create it ({err.strerror}): choose a folder you can write to")
    if args.share and auth is None:
        return _fail("--share needs --auth USER:PASSWORD (or PETBREEDS_AUTH=user:password): anyone who has the "
                     "public link could otherwise use the demo, upload photos and start trainings")
    try:
        port = choose_port(args.port)
    except ValueError as err:
        return _fail(str(err))
    problem = port_problem(args.host, port, only_busy=True)  # before the app loads: a busy port answers at once
    if problem:
        return _fail(problem)
    if args.train_data is not None and not args.train_data.exists():
        return _fail(f"--train-data {args.train_data.resolve()}: no such file or folder")
    settings = DemoSettings(model=args.model.resolve(),
                            train_data=args.train_data.resolve() if args.train_data else default_train_data(),
                            max_file_size=max_file_size, auth=auth, trainings=args.trainings,
                            training_queue=args.training_queue, delete_cache_after=args.delete_after or None,
                            uploads_per_minute=args.uploads_per_minute, flag_max=args.flag_max,
                            flag_dir=args.flag_dir.expanduser().resolve() if args.flag_dir else None)
    if not is_loopback(args.host) and auth is None:
        print(f"warning: the demo listens on {args.host}:{port} without a login: anyone who can reach this "
              "machine can use it, upload photos and start trainings. Add --auth USER:PASSWORD (or set "
              "PETBREEDS_AUTH) to ask for one.", file=sys.stderr, flush=True)
    from demo import app  # the heavy part: gradio, torch

    if args.share:
        print(app.share_warning(), file=sys.stderr, flush=True)
        signal.signal(signal.SIGTERM, _exit_on_sigterm)  # a plain `kill` stops the tunnel program too
    try:
        blocks = app.build_demo(settings)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:  # missing, incomplete, pickled, damaged
        return _fail(f"--model {settings.model}: {err}")
    try:
        app.launch(blocks, args.host, port, settings.max_file_size, auth=auth, share=args.share)
    except app.ShareLinkError as err:
        return _fail(f"--share: no share link, so the demo stopped: {err}")
    except app.PortInUse as err:  # taken while the model loaded, or a --host this machine does not have
        return _fail(str(err))
    return 0


def _exit_on_sigterm(signum, frame):
    """SIGTERM as an orderly exit: ``finally`` blocks and atexit handlers (which stop frpc) run."""
    raise SystemExit(128 + signum)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
