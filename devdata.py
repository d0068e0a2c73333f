"""Where a development checkout of risc_tf finds the MedMNIST files (not installed with it).

The tests, the speed benchmarks (``benchmarks/``) and the research probes
(``probes/``) read the data from ``$RISC_TF_DATA`` when it is set (the library's
own variable, read by :func:`risc_tf.catalog.default_root`), else from
``../shared/data/medmnist`` beside this checkout. The library and the command
line fall back to medmnist's ``~/.medmnist`` instead; only a checkout has a
folder beside it.
"""

from __future__ import annotations

import os
from pathlib import Path

from risc_tf.catalog import DATA_ENV, default_root

__all__ = ["DATA_ROOT", "SHARED_DATA", "data_root"]

#: ``../shared/data/medmnist`` beside this checkout.
SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data" / "medmnist"


def data_root() -> Path:
    """``$RISC_TF_DATA`` if set (as the library reads it), else :data:`SHARED_DATA`."""
    return default_root() if os.environ.get(DATA_ENV) else SHARED_DATA


#: The data folder of the tests, benchmarks and probes.
DATA_ROOT = data_root()
