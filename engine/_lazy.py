"""Names re-exported by a package, each module imported only when one of its names is first used.

``import engine`` (or ``engine.data``) must stay instant: torch and friends load when a name that
needs them is first asked for (PEP 562's module ``__getattr__``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, list[str]],
                 namespace: dict) -> tuple[list[str], Callable[[str], object], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for ``package``, whose ``exports`` map a module (relative
    to the package, e.g. ``"loaders"``) to the public names it defines. ``namespace`` is the
    package's ``globals()``: a name is cached there once imported, so later lookups are direct."""
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str):
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(where))

    return sorted(where), __getattr__, __dir__
