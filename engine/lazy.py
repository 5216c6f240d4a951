"""Heavy third-party modules (OR-Tools, SciPy) imported on first use, not at ``import engine``.

Loading a bundle and building a problem need neither; a command that only verifies or prints
a plan never needs them. ``import engine`` used to take 1-2 s, most of it in ``cp_model``
(which imports pandas) and ``scipy.optimize``. A lazy module is a stand-in that imports the
real one the first time one of its attributes is read.
"""

from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType
from typing import Any

__all__ = ["SOLVER_MODULES", "lazy_module", "load_now"]

#: what a solve needs: imported by ``engine.place`` before its clock starts (a time limit is for solving)
SOLVER_MODULES = ("ortools.sat.python.cp_model", "scipy.sparse", "highspy._core")

_LOCK = threading.Lock()


class _LazyModule(ModuleType):
    """Stands for a module until one of its attributes is read; then holds that module's names.

    Not :class:`importlib.util.LazyLoader`: under Python 3.11 two threads touching a lazy module at
    once (CP-SAT callbacks, Dask workers in threads) could see it half loaded. The real import here
    runs under the import system's own lock, and the names are copied in under a lock of ours.
    """

    def __getattr__(self, attr: str) -> Any:
        name = self.__dict__["_lazy_name"]
        real = importlib.import_module(name)
        with _LOCK:
            for key, value in real.__dict__.items():
                if key not in ("__name__", "__spec__", "__loader__"):
                    self.__dict__.setdefault(key, value)
        try:
            return self.__dict__[attr]
        except KeyError:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}") from None


def lazy_module(name: str) -> ModuleType:
    """The module ``name``, loaded when one of its attributes is first read (already loaded: that module).

    ``sys.modules`` never holds the stand-in: ``import name`` elsewhere imports the real module.
    """
    if name in sys.modules:
        return sys.modules[name]
    module = _LazyModule(name)
    module.__dict__["_lazy_name"] = name
    return module


def load_now(names: tuple[str, ...] = SOLVER_MODULES) -> None:
    """Import ``names`` now (a no-op once imported): before a deadline starts, not inside it."""
    for name in names:
        importlib.import_module(name)
