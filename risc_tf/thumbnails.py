"""Small 8-bit copies of images for display (the review page's thumbnails).

:func:`thumbnail` makes the small 8-bit images: at most ``size`` pixels on
the longer side (Lanczos; never enlarged: the browser scales small images up
without smoothing). Values become 0..255 as follows: uint8 as is; bool as
0/255; other integer types (uint16 scans...) min-max per image, because 16-bit
X-rays rarely fill 0..65535 and would look black when scaled by the dtype
range; floats in [0, 1] (the library's convention, DICOM included) times 255,
other floats min-max; NaN and infinities as 0. To keep memory low when
streaming many files, pass ``thumbnail(image)`` rather than the full image.

Only numpy and Pillow are imported.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from risc_tf.validation import check_int

__all__ = ["data_uri", "thumbnail"]


def thumbnail(image, *, size: int = 160) -> np.ndarray:
    """A small uint8 copy of an image for display (scaling rules in the module docstring).

    Parameters
    ----------
    image : array_like
        ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``; any real dtype.
    size : int, default 160
        Longest side of the result; smaller images keep their size.

    Returns
    -------
    np.ndarray
        uint8 ``(h, w)`` or ``(h, w, 3)``.

    Raises
    ------
    ValueError
        Another shape, an empty image, or a non-numeric dtype.

    Examples
    --------
    >>> thumbnail(np.full((800, 400), 4095, np.uint16)).shape
    (160, 80)
    """
    size = check_int("size", size, minimum=1)
    x = np.asarray(image)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[-1] != 3) or x.size == 0:
        raise ValueError(f"image must have shape (H, W), (H, W, 1) or (H, W, 3); got {x.shape}")
    if not (x.dtype == bool or np.issubdtype(x.dtype, np.number)) or np.iscomplexobj(x):
        raise ValueError(f"image must hold real numbers; got dtype {x.dtype}")
    if x.dtype != np.uint8:
        x = _to_uint8(x)
    picture = Image.fromarray(np.ascontiguousarray(x))
    picture.thumbnail((size, size), Image.Resampling.LANCZOS)
    return np.asarray(picture)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    if x.dtype == bool:
        return x.astype(np.uint8) * 255
    values = np.nan_to_num(x.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(values.min()), float(values.max())
    if np.issubdtype(x.dtype, np.floating) and lo >= 0.0 and hi <= 1.0:
        lo, hi = 0.0, 1.0
    if hi == lo:
        return np.zeros(x.shape, np.uint8)
    return np.round((values - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def data_uri(image) -> str:
    """A PNG ``data:`` URI of :func:`thumbnail` of ``image`` (for an HTML ``<img>``)."""
    buffer = io.BytesIO()
    Image.fromarray(thumbnail(image)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
