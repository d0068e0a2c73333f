"""Straightened copies: an image turned by any angle, resampled on an expanded canvas.

An upright copy of a file turned by a quarter turn is exact
(:func:`risc_tf.io.write_upright_copy`). Any other angle can only be undone by
**resampling**: every pixel of the copy is interpolated from its neighbours
in the original (bilinear), on a canvas large enough to hold the whole turned
image; the corners it adds are filled with black (0; for DICOM the smallest
stored value, or the largest for MONOCHROME1, which both display as black).
A straightened copy is therefore *not* the original's pixels: edges are
softened a little, and values are rounded back to the original integer type.
It is for looking at, not for measuring.

:func:`straighten_image` resamples an array (any dtype, ``(H, W)`` or
``(H, W, C)``); :func:`write_straightened_copy` writes a file's copy:

* PNG, TIFF, BMP and JPEG: the image as :func:`risc_tf.io.read_image` reads it
  (EXIF orientation applied, alpha composited over black, palettes
  expanded), resampled, written in the same format at the same bit depth
  (8 or 16 bits; JPEG with the original's quantization tables). Not written:
  GIF (a palette cannot be interpolated), 32-bit float TIFF (read min-max
  scaled) and 16-bit colour files (read at 8 bits).
* DICOM: the **stored** values are resampled and written as a new derived
  instance (:func:`risc_tf.dicom.save_derived`) whose ``ImageType`` is
  ``DERIVED`` with ``RESAMPLED`` added and whose ``DerivationDescription``
  states that the pixel data are interpolated. The geometry follows:
  ``ImageOrientationPatient`` and ``ImagePositionPatient`` describe the new
  grid, so every pixel keeps its place in the patient. Files with
  non-square pixels (``PixelSpacing`` rows != columns) are refused, since a
  turn in pixel space would distort them.

Only numpy and Pillow are imported (pydicom on the first DICOM file).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from risc_tf.atomic import atomic_output
from risc_tf.imagefiles import copy_target
from risc_tf.io import is_dicom_file, write_upright_copy
from risc_tf.pillow_io import read_pil

__all__ = ["straighten_image", "write_straightened_copy"]

_FORMATS = ("PNG", "TIFF", "BMP", "JPEG")


def _matrix(width: int, height: int, angle: float) -> tuple[tuple[float, ...], int, int]:
    """The affine matrix (output -> input coordinates, pixel edges at integers) and the
    expanded size of a turn by ``angle`` degrees counter-clockwise: the computation of
    Pillow's ``Image.rotate(angle, expand=True)``, returned so that the geometry of a
    DICOM copy can follow the pixels."""
    theta = -math.radians(angle)
    a, b = round(math.cos(theta), 15), round(math.sin(theta), 15)
    d, e = -b, a
    cx, cy = width / 2.0, height / 2.0
    c, f = a * -cx + b * -cy + cx, d * -cx + e * -cy + cy
    xs, ys = zip(*[(a * x + b * y + c, d * x + e * y + f)
                   for x, y in ((0, 0), (width, 0), (width, height), (0, height))])
    new_w = math.ceil(max(xs)) - math.floor(min(xs))
    new_h = math.ceil(max(ys)) - math.floor(min(ys))
    dx, dy = -(new_w - width) / 2.0, -(new_h - height) / 2.0
    c, f = a * dx + b * dy + c, d * dx + e * dy + f
    return (a, b, c, d, e, f), new_w, new_h


def straighten_image(image, angle: float, *, fill: float = 0.0) -> np.ndarray:
    """``image`` turned ``angle`` degrees counter-clockwise (as displayed), bilinear, on an
    expanded canvas filled with ``fill``.

    Parameters
    ----------
    image : array_like
        ``(H, W)`` or ``(H, W, C)``; integer types are rounded and clipped back
        to their range, floats keep float32.
    angle : float
        Degrees counter-clockwise; a file turned by ``r`` degrees is
        straightened by ``-r``.
    fill : float, default 0
        Value of the canvas outside the turned image.

    Returns
    -------
    np.ndarray
        Same dtype and channels; larger unless ``angle`` is a multiple of 180.

    Examples
    --------
    >>> straighten_image(np.ones((10, 20), np.uint8), 90).shape
    (20, 10)
    """
    x = np.asarray(image)
    if x.ndim not in (2, 3) or x.size == 0:
        raise ValueError(f"image must have shape (H, W) or (H, W, C); got {x.shape}")
    if not math.isfinite(float(angle)):
        raise ValueError(f"angle must be a finite number of degrees; got {angle!r}")
    if float(angle) % 90.0 == 0.0:  # an exact quarter turn needs no interpolation
        return np.rot90(x, int(float(angle) // 90.0) % 4).copy()
    height, width = x.shape[:2]
    matrix, new_w, new_h = _matrix(width, height, float(angle))
    channels = x[..., None] if x.ndim == 2 else x
    out = np.stack([
        np.asarray(Image.fromarray(np.ascontiguousarray(channels[..., i], np.float32), "F")
                   .transform((new_w, new_h), Image.Transform.AFFINE, matrix,
                              Image.Resampling.BILINEAR, fillcolor=float(fill)))
        for i in range(channels.shape[-1])], axis=-1)
    out = out[..., 0] if x.ndim == 2 else out
    if np.issubdtype(x.dtype, np.integer) or x.dtype == bool:
        info = np.iinfo(x.dtype) if x.dtype != bool else None
        lo, hi = (0, 1) if info is None else (info.min, info.max)
        return np.clip(np.round(out), lo, hi).astype(x.dtype)
    return out.astype(np.float32)


def write_straightened_copy(path: str | os.PathLike, angle: float, outdir: str | os.PathLike,
                            *, relative_to: str | os.PathLike | None = None,
                            overwrite: bool = False) -> Path:
    """Write a resampled copy of a file turned ``angle`` degrees counter-clockwise.

    The copy keeps the file's name (below ``outdir``, with the subfolders
    below ``relative_to``, as :func:`risc_tf.io.write_upright_copy`) and is
    written under a temporary name, then renamed into place.

    Parameters
    ----------
    path : str or PathLike
        The original file.
    angle : float
        Degrees counter-clockwise (straightening a file turned by ``r``: ``-r``).
    outdir : str or PathLike
        Folder of the copy (created if needed).
    relative_to : str or PathLike, optional
        A folder containing the original; the copy keeps the subfolders below it.
    overwrite : bool, default False
        Replace an existing copy.

    Returns
    -------
    Path

    Raises
    ------
    FileNotFoundError
        The original does not exist.
    FileExistsError
        The copy exists and ``overwrite`` is False.
    ValueError
        A format that is not written (see the module docstring), non-square
        DICOM pixels, a target that is the original itself.
    ImageReadError
        The original cannot be read.
    """
    src = Path(path)
    if not src.is_file():
        raise FileNotFoundError(f"no such file: {src}")
    if not math.isfinite(float(angle)):
        raise ValueError(f"angle must be a finite number of degrees; got {angle!r}")
    if float(angle) % 90.0 == 0.0:  # exact: the lossless copy
        return write_upright_copy(src, int(float(angle) // 90.0), outdir,
                                  relative_to=relative_to, overwrite=overwrite)
    target = copy_target(src, Path(outdir), relative_to, overwrite=overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(target) as part:
        if is_dicom_file(src):
            _dicom_copy(src, float(angle), part)
        else:
            _pil_copy(src, float(angle), part)
    return target


def _pil_copy(src: Path, angle: float, dst: Path) -> None:
    with Image.open(src) as im:
        fmt, info = im.format, dict(im.info)
        quantization = getattr(im, "quantization", None)
    if fmt not in _FORMATS:
        raise ValueError(f"{src}: straightened copies of {fmt} files are not written "
                         f"({', '.join(_FORMATS)} and DICOM only)")
    image, read = read_pil(src)
    if read["reduced_to_8_bit"] or image.dtype == np.float32:
        raise ValueError(f"{src}: a {read['mode']} {fmt} file is not read at its own depth, so "
                         "no straightened copy is written")
    turned = straighten_image(image, angle)
    options = {key: info[key] for key in ("dpi", "icc_profile") if key in info}
    if fmt == "JPEG" and quantization:
        options["qtables"] = quantization
    if fmt == "TIFF":
        options["compression"] = "tiff_adobe_deflate"
    Image.fromarray(turned).save(dst, format=fmt, **options)


def _dicom_copy(src: Path, angle: float, dst: Path) -> None:
    import risc_tf.dicom as dicom

    ds, interpretation, stored = dicom.open_image(src)
    spacing = [float(v) for v in ds.get("PixelSpacing") or ()]
    if len(spacing) == 2 and not math.isclose(spacing[0], spacing[1], rel_tol=1e-6):
        raise ValueError(f"{src}: pixels are not square (PixelSpacing {spacing}), so a "
                         "turn in pixel space would distort them; no straightened copy")
    fill = 0.0 if stored.ndim == 3 else float(
        stored.max() if interpretation == "MONOCHROME1" else stored.min())
    height, width = stored.shape[:2]
    matrix, _, _ = _matrix(width, height, angle)
    turned = straighten_image(stored, angle, fill=fill)
    _turn_geometry(ds, matrix, turned.shape[:2])
    description = (
        f"Rotated {angle:g} degrees counter-clockwise by risc_tf with bilinear "
        "interpolation on an expanded canvas (corners filled with "
        f"{fill:g}): the pixel data are RESAMPLED, interpolated from the original values, "
        "not the original measurements")
    dicom.save_derived(ds, src, turned, interpretation, description, dst,
                       image_type_extra=("RESAMPLED",))


def _turn_geometry(ds, matrix, shape) -> None:
    """New ImageOrientationPatient / ImagePositionPatient for the resampled grid.

    Output pixel (i, j) has its centre at (j + 0.5, i + 0.5); the matrix maps it
    to the input's continuous coordinates, whose pixel centres are at +0.5.
    """
    from risc_tf.dicom import format_ds

    orientation = [float(v) for v in ds.get("ImageOrientationPatient") or ()]
    if len(orientation) != 6:
        return
    row, col = np.array(orientation[:3]), np.array(orientation[3:])
    a, b, c, d, e, f = matrix
    ds.ImageOrientationPatient = [format_ds(v) for v in (*(a * row + d * col),
                                                         *(b * row + e * col))]
    position = [float(v) for v in ds.get("ImagePositionPatient") or ()]
    spacing = [float(v) for v in ds.get("PixelSpacing") or ()]
    if len(position) == 3 and len(spacing) == 2:
        x, y = a * 0.5 + b * 0.5 + c - 0.5, d * 0.5 + e * 0.5 + f - 0.5  # input (col, row)
        first = np.array(position) + x * spacing[1] * row + y * spacing[0] * col
        ds.ImagePositionPatient = [format_ds(v) for v in first]
    patient = ds.get("PatientOrientation")
    if patient is not None:
        del ds.PatientOrientation  # letters cannot describe an oblique turn
