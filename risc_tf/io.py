"""Users' own image files: reading PNG, JPEG, BMP, GIF, TIFF and DICOM, writing upright copies.

Conventions of every array returned by :func:`read_image` / :func:`iter_images`:

* **Shape**: ``(H, W)`` for grayscale, ``(H, W, 3)`` for colour, at the file's
  native size (resizing to the model input is the pipeline's job). Images
  smaller than :data:`MIN_SIDE` pixels on a side are errors.
* **dtype**: ``uint8`` for 8-bit files (and bilevel mode "1", as 0/255),
  ``uint16`` for 16-bit files (PIL modes "I;16", "I;16B", and 32-bit "I"
  whose values fit 0..65535; other values are refused), ``float32`` in [0, 1]
  for DICOM (see :mod:`risc_tf.dicom`) and for 32-bit float TIFFs (min-max
  scaled). Pillow decodes 16-bit *colour* PNG/TIFF at 8 bits per channel;
  such images come back as uint8 with ``info["reduced_to_8_bit"] = True``.
* **Alpha** (RGBA, LA, transparent palettes): composited over black, which
  equals dropping alpha for opaque images and keeps transparent areas black
  like the background of a scan. ``info["alpha"]`` says what happened.
* **Palette** images (GIF, "P" PNG) become RGB, or grayscale when every colour
  used is a gray; "LA" becomes grayscale. RGB images whose channels are equal
  stay RGB (the pipeline accepts both).
* **EXIF orientation** is applied (``PIL.ImageOps.exif_transpose``): the array
  is the image as a viewer displays it, the orientation a person checks.
* **Multi-frame** GIF/TIFF: the first frame is read, ``info["frames"]`` holds
  the count. Multi-frame DICOM is refused (a DICOM series of frames is a
  volume, not one picture).

An unreadable file is never skipped silently: :func:`read_image` raises
:class:`ImageReadError` with a one-line reason, :func:`iter_images` yields an
:class:`ImageRecord` whose ``error`` holds it.

:func:`write_upright_copy` writes a corrected copy of an original file (same
format and bit depth, lossless except for JPEG); angles are counter-clockwise
as displayed, as everywhere in risc_tf.

This module is the public face of four: :mod:`risc_tf.imagefiles` (finding
files, :class:`ImageReadError`, atomic writes), :mod:`risc_tf.pillow_io`
(Pillow formats) and :mod:`risc_tf.dicom` (DICOM through pydicom, an optional
extra imported on the first DICOM file). Only numpy and Pillow are imported
at start-up (no TensorFlow), so the command line starts fast.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from risc_tf.imagefiles import (
    IMAGE_SUFFIXES,
    ImageReadError,
    PathLike,
    PathsLike,
    atomic_output,
    copy_target,
    find_image_files,
    is_dicom_path,
)
from risc_tf.pillow_io import read_pil, write_rotated_pil
from risc_tf.validation import MIN_SIDE, check_int

__all__ = [
    "IMAGE_SUFFIXES",
    "MIN_SIDE",
    "ImageReadError",
    "ImageRecord",
    "find_image_files",
    "is_dicom_file",
    "iter_images",
    "load_images",
    "read_image",
    "read_record",
    "write_upright_copy",
]



@dataclass
class ImageRecord:
    """One file read by :func:`iter_images`: its image, or why it could not be read.

    Attributes
    ----------
    path : Path
        The file, as found by :func:`find_image_files`.
    image : np.ndarray or None
        The image (see the module docstring for shapes and dtypes); None on error.
    error : str or None
        One line saying what is wrong, e.g. ``"not a PNG file (cannot
        identify image)"``; None when the file was read.
    info : dict
        What was found and done: ``format``, ``mode``, ``bits``, ``dtype``,
        ``size`` (width, height as read), ``frames``, ``exif_orientation``,
        ``exif_transposed``, ``alpha``, ``reduced_to_8_bit``; DICOM files add
        ``photometric_interpretation``, ``rescale``, ``voi``, ``inverted``,
        ``transfer_syntax`` (:func:`risc_tf.dicom.read_dicom`).
    """

    path: Path
    image: np.ndarray | None = field(default=None, repr=False)
    error: str | None = None
    info: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the image was read."""
        return self.error is None


def read_image(path: PathLike) -> np.ndarray:
    """Read one image file as a numpy array (the conventions of the module docstring).

    Parameters
    ----------
    path : str or PathLike
        A PNG, JPEG, BMP, GIF, TIFF or DICOM file (the content decides, not
        the suffix; DICOM is recognised by its suffix or its ``DICM`` marker).

    Returns
    -------
    np.ndarray
        ``(H, W)`` or ``(H, W, 3)``; uint8, uint16, or float32 in [0, 1].

    Raises
    ------
    ImageReadError
        The file is missing, not an image, corrupt or truncated, too small,
        multi-frame DICOM, or DICOM without pydicom installed. The message
        names the file and gives the reason in one line.

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image
    >>> tmp = Path(tempfile.mkdtemp())
    >>> Image.fromarray(np.zeros((8, 6), np.uint16)).save(tmp / "scan.png")  # 16-bit PNG
    >>> image = read_image(tmp / "scan.png")
    >>> image.shape, image.dtype
    ((8, 6), dtype('uint16'))
    """
    return _read(Path(path))[0]


def read_record(path: PathLike) -> ImageRecord:
    """Read one file into an :class:`ImageRecord`, failures included.

    Parameters
    ----------
    path : str or PathLike
        The file.

    Returns
    -------
    ImageRecord
        ``record.image`` and ``record.info`` on success; otherwise
        ``record.error`` holds the one-line reason of :class:`ImageReadError`
        (which is therefore never raised) and ``record.info`` what was learnt.
        Errors that are not about the file (e.g. ``MemoryError``) propagate.

    Examples
    --------
    >>> import tempfile
    >>> text = Path(tempfile.mkdtemp()) / "notes.png"
    >>> _ = text.write_text("not an image")
    >>> read_record(text).error
    'not a PNG file (cannot identify image)'
    """
    path = Path(path)
    try:
        image, info = _read(path)
    except ImageReadError as exc:
        return ImageRecord(path, None, exc.reason, exc.info)
    return ImageRecord(path, image, None, info)


def iter_images(inputs: PathsLike, *, recursive: bool = False) -> Iterator[ImageRecord]:
    """Stream the images of files and folders, one file in memory at a time.

    The file list is built (and checked) when this function is called; each
    file is opened only when the iterator reaches it, so a folder of 100,000
    scans is never loaded at once.

    Parameters
    ----------
    inputs : path or sequence of paths
        Files and/or folders (see :func:`find_image_files`).
    recursive : bool, default False
        Also look into subfolders of the folders.

    Returns
    -------
    Iterator[ImageRecord]
        A generator: one record per file, in :func:`find_image_files` order,
        unreadable files included (``record.ok`` is False, ``record.error`` says why).

    Raises
    ------
    FileNotFoundError, ValueError
        From :func:`find_image_files`, at call time (before any file is read).

    Examples
    --------
    >>> for record in iter_images("scans/"):  # doctest: +SKIP
    ...     print(record.path, record.image.shape if record.ok else record.error)
    """
    paths = find_image_files(inputs, recursive=recursive)
    return (read_record(path) for path in paths)


def load_images(inputs: PathsLike, *, recursive: bool = False) -> list[ImageRecord]:
    """Read every image of files and folders into a list (all in memory: small folders only).

    Parameters
    ----------
    inputs : path or sequence of paths
        Files and/or folders (see :func:`find_image_files`).
    recursive : bool, default False
        Also look into subfolders of the folders.

    Returns
    -------
    list of ImageRecord
        As :func:`iter_images` yields them; prefer it for large folders.

    Raises
    ------
    FileNotFoundError, ValueError
        From :func:`find_image_files`.
    """
    return list(iter_images(inputs, recursive=recursive))


def _read(path: Path) -> tuple[np.ndarray, dict]:
    if not path.is_file():
        raise ImageReadError(path, "no such file" if not path.exists() else "not a file")
    if is_dicom_path(path):
        import risc_tf.dicom as dicom  # imports pydicom lazily, itself

        image, info = dicom.read_dicom(path)
    else:
        try:
            image, info = read_pil(path)
        except ImageReadError as error:
            if path.suffix.lower() in IMAGE_SUFFIXES:
                raise
            image, info = _read_acr_nema(path, error)
    info["dtype"] = str(image.dtype)
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE:
        need = f"at least {MIN_SIDE}x{MIN_SIDE} is needed"
        raise ImageReadError(path, f"image is {width}x{height} pixels; {need}", info)
    return image, info


def _read_acr_nema(path: Path, error: ImageReadError) -> tuple[np.ndarray, dict]:
    """A file without an image suffix that Pillow cannot read: DICOM without the 'DICM'
    marker (ACR-NEMA style, e.g. ``IM0001``), or the Pillow error."""
    import risc_tf.dicom as dicom

    try:
        return dicom.read_dicom(path)
    except ImageReadError:
        raise error from None


def is_dicom_file(path: PathLike) -> bool:
    """Whether a file is read as DICOM: a DICOM suffix or marker, or (for a file without an
    image suffix) DICOM without the marker (ACR-NEMA style) that Pillow cannot open."""
    path = Path(path)
    if is_dicom_path(path):
        return True
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return False
    try:
        read_pil(path)
    except ImageReadError:
        return True
    return False


def write_upright_copy(
    record_or_path: ImageRecord | PathLike,
    quarter_turns_ccw: int,
    outdir: PathLike,
    *,
    relative_to: PathLike | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a copy of a file turned by ``quarter_turns_ccw`` counter-clockwise quarter turns.

    Angles follow the library: counter-clockwise as displayed, as
    ``np.rot90(image, k)`` and ``tf.image.rot90``. An image that a pipeline
    finds rotated by 90 degrees is made upright by turning it back,
    ``quarter_turns_ccw=-1`` (the same as 3); 180 degrees is undone by 2,
    270 degrees by 1 (= ``-round(angle / 90)``).

    The full-size original is re-read (not ``record.image``) and rotated
    without interpolation (PIL ``Image.transpose``, ``np.rot90``): PNG, TIFF,
    BMP, GIF and DICOM copies hold exactly the original pixels, at the same
    bit depth. **JPEG is the one lossy case**: it is decoded and re-encoded
    with the original quantization tables and chroma subsampling, which keeps
    the loss to rounding (a few grey levels); for a bit-exact rotation use
    ``jpegtran -rotate``. An EXIF orientation is baked into the pixels (the
    turn is relative to the displayed image, as :func:`read_image` returns it)
    and reset in the copy. All frames of a multi-frame GIF/TIFF are turned.
    DICOM copies are new derived instances (:func:`risc_tf.dicom.write_rotated_dicom`).
    ``quarter_turns_ccw % 4 == 0`` copies the file byte for byte.

    The input is never modified. The copy is written under a temporary name
    in the target folder and renamed into place, so no half-written file is
    ever visible, even if writing fails.

    Parameters
    ----------
    record_or_path : ImageRecord or str or PathLike
        The original file (an :class:`ImageRecord` stands for its ``path``).
    quarter_turns_ccw : int
        Counter-clockwise quarter turns to apply (negative: clockwise).
    outdir : str or PathLike
        Folder of the copy (created if needed). The copy keeps the file name.
    relative_to : str or PathLike, optional
        A folder containing the original: the copy keeps the original's
        subfolders below it (``relative_to/a/b.png`` -> ``outdir/a/b.png``).
    overwrite : bool, default False
        Replace an existing copy.

    Returns
    -------
    Path
        The copy.

    Raises
    ------
    FileNotFoundError
        The original does not exist.
    FileExistsError
        The target exists and ``overwrite`` is False.
    ValueError
        Bad ``quarter_turns_ccw``; the target is the original file itself; the
        original is not inside ``relative_to``; a format that is not written
        (only PNG, JPEG, TIFF, BMP, GIF, DICOM); a 16-bit colour PNG/TIFF
        (Pillow decodes it at 8 bits, so a copy would lose precision).
    ImageReadError
        The original cannot be read.

    Examples
    --------
    A scan stored turned 90 degrees counter-clockwise; the pipeline predicts
    ``rotation == 90``, so the copy is turned back by one clockwise quarter turn:

    >>> import tempfile
    >>> from PIL import Image
    >>> tmp = Path(tempfile.mkdtemp())
    >>> upright = np.arange(24, dtype=np.uint8).reshape(4, 6) * 10
    >>> Image.fromarray(np.rot90(upright, 1)).save(tmp / "scan.png")
    >>> fixed = write_upright_copy(tmp / "scan.png", -1, tmp / "fixed")
    >>> fixed.relative_to(tmp).as_posix(), np.array_equal(read_image(fixed), upright)
    ('fixed/scan.png', True)
    """
    path = record_or_path.path if isinstance(record_or_path, ImageRecord) else record_or_path
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"record_or_path must be an ImageRecord or a path; got {path!r}")
    src = Path(path)
    if not src.is_file():
        raise FileNotFoundError(f"no such file: {src}")
    turns = check_int("quarter_turns_ccw", quarter_turns_ccw, minimum=None) % 4
    target = copy_target(src, Path(outdir), relative_to, overwrite=overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(target) as part:
        if turns == 0:
            shutil.copyfile(src, part)
        elif is_dicom_file(src):
            import risc_tf.dicom as dicom

            dicom.write_rotated_dicom(src, turns, part)
        else:
            write_rotated_pil(src, turns, part)
    return target
