"""TensorFlow's C++ log lines, kept from risc_tf's users unless they ask for them.

TensorFlow writes lines from C++ straight to standard error: when it is imported
(CUDA drivers, CPU instructions; since 2.19 before its logging is configured, so
``TF_CPP_MIN_LOG_LEVEL`` does not reach them, tensorflow/tensorflow#100442), when
it first looks for a GPU (``failed call to cuInit`` on a machine with CUDA
libraries and no GPU) and while it runs graphs. None of them is about the
user's images or models.

**Asking for them**: set ``TF_CPP_MIN_LOG_LEVEL`` to ``0`` (everything), ``1``
(no info lines) or ``2`` (errors only) before importing risc_tf; risc_tf then
changes nothing. Otherwise importing risc_tf sets it to ``3`` for the process
(TensorFlow's errors still reach you as Python exceptions), and the
first import of TensorFlow made through a public name of risc_tf (``from
risc_tf import RISCPipeline``, ``risc_tf.build_rotnet``...) or by the ``risc-tf``
command mutes the C++ side of standard error while it lasts. Only the standard
library is imported.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

__all__ = ["ASKED", "ENV", "quiet_by_default", "quiet_tensorflow_import"]

#: The variable TensorFlow reads for the lowest C++ log level it prints.
ENV = "TF_CPP_MIN_LOG_LEVEL"
#: Whether the user asked for the lines (:data:`ENV` 0, 1 or 2 when risc_tf was imported).
ASKED = os.environ.get(ENV, "").strip() in ("0", "1", "2")


def quiet_by_default() -> None:
    """Set ``TF_CPP_MIN_LOG_LEVEL=3`` unless the user asked for the lines (before TensorFlow
    reads it)."""
    if not ASKED:
        os.environ[ENV] = "3"


@contextlib.contextmanager
def _stderr_to_devnull() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null (C++ code writes there, not to sys.stderr)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no standard error to mute
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def quiet_tensorflow_import() -> Iterator[None]:
    """Mute TensorFlow's start-up lines if the block is where TensorFlow is first imported.

    Does nothing when TensorFlow is already imported or the user asked for its
    lines (:data:`ASKED`). A Python exception raised in the block still shows:
    it is printed after standard error is restored.
    """
    if ASKED or "tensorflow" in sys.modules:
        yield
        return
    with _stderr_to_devnull():
        yield
