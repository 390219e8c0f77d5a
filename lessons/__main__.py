"""``python -m lessons build``: run every lesson notebook and render it to HTML (see ``build.py``)."""

import sys

from .build import main

if __name__ == "__main__":
    sys.exit(main())
