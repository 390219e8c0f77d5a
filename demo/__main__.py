"""``python -m demo``: start the web demo on http://127.0.0.1:7860.

    python -m demo [--host 127.0.0.1] [--port 7860] [--model demo/model]
                   [--train-data path/to/labels.csv] [--max-file-size 10mb] [--no-compile]

The options are read and checked before the app (torch, gradio, the model) is loaded, so ``--help``
and a mistyped option answer at once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from demo.settings import SHIPPED_MODEL, DemoSettings, default_train_data, parse_size

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m demo", description="Start the petbreeds web demo.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine "
                                                       "only; 0.0.0.0 opens it to the network)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--model", type=Path, default=SHIPPED_MODEL, help="exported model folder (default: the "
                                                                    "shipped demo/model)")
    p.add_argument("--train-data", type=Path, default=None,
                   help="labels CSV (images/ beside it) or image folder for tab 4 and the examples (default: the "
                        "370-photo pet sample: PETS_SAMPLE, or the cache, picked out of the full dataset when "
                        "needed; without photos training is off: python -m engine.datasets sample gets them)")
    p.add_argument("--max-file-size", default="10mb", help="largest upload, e.g. 10mb (default) or 500kb")
    p.add_argument("--no-compile", action="store_true",
                   help="do not compile the model in the background at start (half a minute of CPU the first "
                        "time on a machine, then single photos are answered about 1.5 times faster)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse the options, build (or reuse) the app, serve until Ctrl-C. Returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        settings = DemoSettings(model=args.model.resolve(),
                                train_data=args.train_data.resolve() if args.train_data else default_train_data(),
                                max_file_size=parse_size(args.max_file_size))
    except ValueError as err:
        print(f"error: --max-file-size: {err}", file=sys.stderr)
        return 2
    if settings.train_data is not None and not settings.train_data.exists():
        print(f"error: --train-data {settings.train_data}: no such file or folder", file=sys.stderr)
        return 2
    from demo import app  # the heavy part: gradio, torch, and the default model

    try:
        # The module-level app has the default settings: reuse it (and its loaded model) when they match.
        blocks = app.demo if settings == app.DEFAULT_SETTINGS else app.build_demo(settings)
    except (FileNotFoundError, ValueError) as err:  # a missing, incomplete or pickled model
        print(f"error: --model: {err}", file=sys.stderr)
        return 2
    app.launch(blocks, args.host, args.port, settings.max_file_size, compile_model=not args.no_compile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
