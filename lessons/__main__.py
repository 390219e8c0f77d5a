"""``python -m lessons build`` runs the notebooks (``build.py``); ``python -m lessons copy DEST`` copies them
into a folder of your own (``workspace.py``)."""

import sys

from .build import main

if __name__ == "__main__":
    sys.exit(main())
