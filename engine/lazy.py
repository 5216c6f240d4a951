"""Heavy third-party modules (OR-Tools, SciPy) imported on first use, not at ``import engine``.

Loading a bundle and building a problem need neither; a command that only verifies or prints
a plan never needs them. ``import engine`` used to take 1-2 s, most of it in ``cp_model``
(which imports pandas) and ``scipy.optimize``. A lazy module is a real module object whose
code runs the first time one of its attributes is read (:class:`importlib.util.LazyLoader`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

__all__ = ["lazy_module"]


def lazy_module(name: str) -> ModuleType:
    """The module ``name``, loaded when first used (already loaded: that module).

    Its parent packages are imported now (they are light: ``ortools.sat.python``, ``scipy``).
    An extension module cannot be deferred this way: it is imported at once.
    """
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
        return importlib.import_module(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module
