"""Lazy package exports: a package's public names, imported from their modules on first use.

``risc_tf``, ``risc_tf.experiments`` and ``risc_tf.explain`` import nothing heavy
when they are imported (no TensorFlow, matplotlib or scikit-learn), so the
command line starts at once; each public name is looked up in its module the
first time it is used (PEP 562 module ``__getattr__``), with TensorFlow's
start-up lines muted if that first use imports it (:mod:`risc_tf.tf_logs`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from risc_tf.tf_logs import quiet_tensorflow_import

__all__ = ["lazy_exports"]


def lazy_exports(package: str, namespace: dict, exports: dict[str, str]) -> tuple[
        Callable[[str], object], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package whose names live in submodules.

    Parameters
    ----------
    package : str
        The package's name (for error messages).
    namespace : dict
        The package's ``globals()``: a name, once imported, is stored there so later
        look-ups skip ``__getattr__``.
    exports : dict
        Public name -> module that defines it.

    Examples
    --------
    >>> __getattr__, __dir__ = lazy_exports(__name__, globals(), {"rotate": "risc_tf.rotation"})
    ... # doctest: +SKIP
    """

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        with quiet_tensorflow_import():  # the first use may import TensorFlow
            value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
