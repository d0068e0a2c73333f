"""Where a development checkout of risc_tf finds the MedMNIST files (not installed with it).

The tests, the speed benchmarks (``benchmarks/``) and the research probes
(``probes/``) read the data from ``$RISC_TF_DATA`` when it is set (the library's
own variable, read by :func:`risc_tf.catalog.default_root`), else from
``../shared/data/medmnist`` beside this checkout. The library and the command
line fall back to medmnist's ``~/.medmnist`` instead; only a checkout has a
folder beside it.

It also writes the one kind of test file that both the tests and the probes make
by hand: an ACR-NEMA style DICOM file (:func:`write_acr_nema`).
"""

from __future__ import annotations

import os
from pathlib import Path

from risc_tf.catalog import DATA_ENV, default_root

__all__ = ["DATA_ROOT", "SHARED_DATA", "data_root", "write_acr_nema"]

#: ``../shared/data/medmnist`` beside this checkout.
SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data" / "medmnist"


def data_root() -> Path:
    """``$RISC_TF_DATA`` if set (as the library reads it), else :data:`SHARED_DATA`."""
    return default_root() if os.environ.get(DATA_ENV) else SHARED_DATA


#: The data folder of the tests, benchmarks and probes.
DATA_ROOT = data_root()


def write_acr_nema(path: str | os.PathLike, pixels, **elements) -> Path:
    """A DICOM file as archives hold them from before Part 10 (needs pydicom).

    No preamble, no 'DICM', no file meta, implicit VR little endian, no SOP Class;
    ``pixels`` (2-D) stored as 16-bit words with 12 bits used, MONOCHROME2;
    ``elements`` are further keyword=value data elements.
    """
    import numpy as np
    from pydicom.dataset import Dataset
    from pydicom.filewriter import dcmwrite

    path = Path(path)
    pixels = np.asarray(pixels)
    ds = Dataset()
    ds.Modality = "CR"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = pixels.astype("<u2").tobytes()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    dcmwrite(path, ds, implicit_vr=True, little_endian=True)
    raw = path.read_bytes()
    if raw[128:132] == b"DICM" or raw[:4] == b"DICM":
        raise RuntimeError(f"pydicom wrote a Part 10 file to {path}, not an ACR-NEMA one")
    return path
