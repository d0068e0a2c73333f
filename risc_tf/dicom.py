"""DICOM for :mod:`risc_tf.io`: reading one image, writing a rotated derived copy.

Needs pydicom >= 3.0, an optional extra (``pip install "risc_tf[dicom]"``),
imported on the first DICOM file; without it, reading a DICOM file raises
:class:`~risc_tf.imagefiles.ImageReadError` saying how to install it.

Reading (:func:`read_dicom`) returns float32 in [0, 1]: the image as a DICOM
viewer shows it by default.

1. **Modality LUT / rescale** (``RescaleSlope``, ``RescaleIntercept`` or a
   Modality LUT) with :func:`pydicom.pixels.apply_modality_lut`: stored values
   become physical values (e.g. Hounsfield units).
2. **VOI**: the first VOI LUT of ``VOILUTSequence`` if there is one, else the
   first window (``WindowCenter``/``WindowWidth``, with ``VOILUTFunction``),
   the preference of :func:`pydicom.pixels.apply_voi_lut`. Windows are
   applied by :func:`pydicom.pixels.apply_windowing` and scaled by its output
   range (values below the window give 0, above it 1); a VOI LUT is looked up
   here (pydicom 3.0.2 wraps the indices of 8-bit LUTs longer than 256
   entries) and scaled by the range of its entries. With neither: min-max of
   the rescaled values (a constant image gives 0). ``info["voi"]`` says which.
3. **MONOCHROME1** (low values displayed bright) is inverted, ``1 - x``, so
   that dense tissue is bright as in MONOCHROME2.

Colour files (RGB; YBR_* are converted to RGB by pydicom) are scaled by
``2**BitsStored - 1``; no LUT applies to them. Refused, with a one-line
reason: multi-frame files (``NumberOfFrames > 1``), files without pixel data,
PALETTE COLOR, and compressed transfer syntaxes that no installed pydicom
plugin decodes (the message names the syntax and the missing plugins).

Rotated copies (:func:`write_rotated_dicom`) rotate the **stored** values
(losslessly, before any LUT) and update what describes the pixel grid: Rows
and Columns, the pixel spacings and aspect ratio (swapped for odd turns),
``ImageOrientationPatient``, ``ImagePositionPatient`` and
``PatientOrientation``, so the geometry stays true. The copy is a new
instance (new SOP Instance UID, ``ImageType`` DERIVED, a
``DerivationDescription``, ``SourceImageSequence`` pointing at the original),
written Explicit VR Little Endian: compressed inputs are decompressed (colour
YBR data becomes RGB). Overlays and the icon image, which would not be
rotated, are removed and the removal is recorded in the description.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from risc_tf.imagefiles import ImageReadError, one_line

__all__ = [
    "INSTALL_HINT", "format_ds", "open_image", "read_dicom", "save_derived", "write_rotated_dicom",
]

INSTALL_HINT = 'pip install "risc_tf[dicom]"'

_SPACINGS = ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing", "PixelAspectRatio")
_OPPOSITE = str.maketrans("LRAPHF", "RLPAFH")


def _pydicom(path: Path):
    try:
        import pydicom
        import pydicom.pixels
    except ImportError:
        raise ImageReadError(path, f"reading DICOM files needs pydicom: {INSTALL_HINT}") from None
    if int(pydicom.__version__.split(".")[0]) < 3:
        raise ImageReadError(
            path,
            f"reading DICOM files needs pydicom>=3.0 (found {pydicom.__version__}): "
            'pip install -U "risc_tf[dicom]"',
        )
    return pydicom


def _open(path: Path):
    pydicom = _pydicom(path)
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path)
    except InvalidDicomError:
        pass
    except MemoryError:
        raise
    except Exception as exc:  # truncated or inconsistent element data
        raise ImageReadError(path, f"corrupt DICOM file ({one_line(exc)})") from None
    # Files written before DICOM Part 10 (ACR-NEMA) have no 'DICM' marker: try without it.
    ds = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path, force=True)
        except Exception:  # any parse failure means: not DICOM
            pass
    if ds is None or ("SOPClassUID" not in ds and "Rows" not in ds):
        raise ImageReadError(path, "not a DICOM file (no 'DICM' marker at byte 128)")
    _assume_transfer_syntax(ds)
    return ds


def _assume_transfer_syntax(ds) -> None:
    """Give a dataset read without file meta (ACR-NEMA) the transfer syntax it was read with.

    pydicom parses such a file as it finds it (implicit VR little endian, the
    ACR-NEMA and DICOM default, or explicit VR) but leaves the file meta empty,
    and then refuses to decode the pixels. The syntax is the one its encoding
    was recognised as.
    """
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is not None and meta.get("TransferSyntaxUID"):
        return
    implicit, little = getattr(ds, "original_encoding", (True, True))
    implicit = True if implicit is None else implicit
    little = True if little is None else little
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit else
                              ExplicitVRLittleEndian if little else ExplicitVRBigEndian)


def _check_image(ds, path: Path) -> str:
    """The photometric interpretation of a single-frame image dataset; refuse anything else."""
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ImageReadError(path, f"multi-frame DICOM ({frames} frames) is not supported")
    if "PixelData" not in ds:
        uid = ds.get("SOPClassUID")
        what = f"a {uid.name} object" if uid else "no SOP class"
        raise ImageReadError(path, f"DICOM file has no pixel data ({what})")
    interpretation = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if interpretation == "PALETTE COLOR":
        raise ImageReadError(path, "PALETTE COLOR DICOM is not supported")
    return interpretation


def _transfer_syntax(ds):
    meta = getattr(ds, "file_meta", None)
    return None if meta is None else meta.get("TransferSyntaxUID")


def _pixels(ds, path: Path) -> np.ndarray:
    """The decoded stored values (colour as RGB)."""
    syntax = _transfer_syntax(ds)
    try:
        return ds.pixel_array
    except MemoryError:
        raise
    except Exception as exc:  # pydicom's decoders raise RuntimeError, ValueError, ...
        if syntax is not None and syntax.is_compressed:
            reason = f"cannot decode the compressed pixel data ({syntax.name}): {exc}"
        else:
            reason = f"cannot decode the pixel data ({exc})"
        raise ImageReadError(path, reason) from None


def _lut_table(item, ds) -> np.ndarray:
    """The entries of a VOI LUT item (US/SS values, or OW bytes in the dataset's byte order)."""
    data = item.LUTData
    if isinstance(data, bytes):
        syntax = _transfer_syntax(ds)
        little = syntax is None or syntax.is_little_endian
        return np.frombuffer(data, dtype="<u2" if little else ">u2").astype(np.int64)
    return np.atleast_1d(np.asarray(data, dtype=np.int64))


def _voi_unit(values: np.ndarray, ds) -> tuple[np.ndarray, str]:
    """VOI LUT or window (with apply_voi_lut's preference), scaled by its output range to [0, 1]."""
    from pydicom.pixels import apply_windowing

    item = (ds.get("VOILUTSequence") or [None])[0]
    if item is not None and "LUTDescriptor" in item and "LUTData" in item:
        # The lookup is done here: pydicom 3.0.2's apply_voi indexes an 8-bit LUT with
        # uint8 indices, which wrap for the common 4096-entry, 8-bit display LUTs.
        entries, first = int(item.LUTDescriptor[0]) or 2**16, int(item.LUTDescriptor[1])
        table = _lut_table(item, ds)[:entries]
        out = table[np.clip(np.round(values) - first, 0, len(table) - 1).astype(np.int64)]
        # Scale by the entries' own range: some devices declare 16 bits for 12-bit data.
        lo, hi, how = float(table.min()), float(table.max()), "VOI LUT"
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        out = apply_windowing(values, ds)
        lo, hi = (float(v) for v in apply_windowing(np.array([-np.inf, np.inf]), ds))
        center = np.atleast_1d(np.asarray(ds.WindowCenter, dtype=float))[0]
        width = np.atleast_1d(np.asarray(ds.WindowWidth, dtype=float))[0]
        how = f"window center {center:g} width {width:g}"
    else:
        out, how = values, "min-max"
        lo, hi = float(values.min()), float(values.max())
    if hi == lo:
        return np.zeros(values.shape, np.float32), how
    return (np.asarray(out, dtype=np.float64) - lo) / (hi - lo), how


def read_dicom(path: Path) -> tuple[np.ndarray, dict]:
    """Read a single-frame DICOM image as float32 in [0, 1] (see the module docstring).

    Parameters
    ----------
    path : Path
        The DICOM file.

    Returns
    -------
    image : np.ndarray
        float32 ``(H, W)`` (grayscale) or ``(H, W, 3)`` (colour) in [0, 1].
    info : dict
        ``format`` ("DICOM"), ``mode`` and ``photometric_interpretation``,
        ``bits`` (BitsStored), ``stored_dtype``, ``size`` (width, height),
        ``frames``, ``transfer_syntax``, ``modality``, ``rescale`` (slope,
        intercept, "Modality LUT" or None), ``voi`` (the window, "VOI LUT",
        "min-max", or None for colour), ``inverted`` (MONOCHROME1),
        ``exif_transposed`` (False) and ``alpha`` (None).

    Raises
    ------
    ImageReadError
        pydicom missing or older than 3.0, not DICOM, corrupt, multi-frame, no
        pixel data, PALETTE COLOR, undecodable compression, invalid window.
    """
    ds = _open(path)
    interpretation = _check_image(ds, path)
    stored = _pixels(ds, path)
    syntax = _transfer_syntax(ds)
    info = {
        "format": "DICOM",
        "mode": "RGB" if stored.ndim == 3 else interpretation,
        "photometric_interpretation": interpretation,
        "bits": int(ds.get("BitsStored") or stored.dtype.itemsize * 8),
        "stored_dtype": str(stored.dtype),
        "size": (int(stored.shape[1]), int(stored.shape[0])),
        "frames": 1,
        "transfer_syntax": None if syntax is None else syntax.name,
        "modality": ds.get("Modality"),
        "rescale": None,
        "voi": None,
        "inverted": False,
        "exif_transposed": False,
        "alpha": None,
    }
    if stored.ndim == 3:
        image = stored / float(2 ** info["bits"] - 1)
    else:
        from pydicom.pixels import apply_modality_lut

        if ds.get("ModalityLUTSequence"):
            info["rescale"] = "Modality LUT"
        elif "RescaleSlope" in ds and "RescaleIntercept" in ds:
            info["rescale"] = (float(ds.RescaleSlope), float(ds.RescaleIntercept))
        try:
            image, info["voi"] = _voi_unit(apply_modality_lut(stored, ds), ds)
        except (ValueError, NotImplementedError, IndexError) as exc:
            raise ImageReadError(path, f"cannot apply the DICOM LUT or window ({exc})") from None
        if interpretation == "MONOCHROME1":
            image, info["inverted"] = 1.0 - image, True
    return np.clip(image, 0.0, 1.0).astype(np.float32), info


def format_ds(value: float) -> str:
    """A number as a DICOM decimal string (DS), never ``-0``."""
    from pydicom.valuerep import format_number_as_ds

    return format_number_as_ds(float(value) + 0.0)  # + 0.0: no "-0.0"


def _rotate_geometry(ds, quarter_turns: int, rows: int, cols: int) -> None:
    """Turn the elements that describe the pixel grid with it, one quarter turn at a time.

    ``np.rot90(a, 1)`` maps ``new[i, j] = old[j, cols - 1 - i]``: the new row
    direction (increasing column index) is the old column direction, the new
    column direction is minus the old row direction, the new first pixel is
    the old top-right one, and the row and column spacings swap.
    """
    for _ in range(quarter_turns):
        orientation = [float(v) for v in ds.get("ImageOrientationPatient") or ()]
        spacing = [float(v) for v in ds.get("PixelSpacing") or ()]
        if len(orientation) == 6:
            row, col = np.array(orientation[:3]), np.array(orientation[3:])
            position = [float(v) for v in ds.get("ImagePositionPatient") or ()]
            if len(position) == 3 and len(spacing) == 2:
                first = np.array(position) + (cols - 1) * spacing[1] * row
                ds.ImagePositionPatient = [format_ds(v) for v in first]
            ds.ImageOrientationPatient = [format_ds(v) for v in (*col, *(-row))]
        patient = ds.get("PatientOrientation")
        if patient is not None and not isinstance(patient, str) and len(patient) == 2:
            ds.PatientOrientation = [str(patient[1]), str(patient[0]).translate(_OPPOSITE)]
        for keyword in _SPACINGS:
            value = ds.get(keyword)
            if value is not None and not isinstance(value, str) and len(value) == 2:
                setattr(ds, keyword, [value[1], value[0]])
        rows, cols = cols, rows


def _drop_unrotated(ds) -> list[str]:
    """Remove overlays and the icon image (they would not match the rotated pixels)."""
    dropped = []
    overlay = [tag for tag in ds.keys() if 0x6000 <= tag.group <= 0x601E and tag.group % 2 == 0]
    for tag in overlay:
        del ds[tag]
    if overlay:
        dropped.append("overlays")
    if "IconImageSequence" in ds:
        del ds.IconImageSequence
        dropped.append("icon image")
    return dropped


def open_image(src: Path):
    """The dataset of a single-frame image file, decompressed, its photometric
    interpretation and its stored values (for the writers of derived copies).

    Raises
    ------
    ImageReadError
        As :func:`read_dicom`.
    """
    ds = _open(src)
    interpretation = _check_image(ds, src)
    syntax = _transfer_syntax(ds)
    if syntax is not None and syntax.is_compressed:
        try:
            ds.decompress()  # Explicit VR Little Endian; YBR colour becomes RGB
        except Exception as exc:  # as _pixels: pydicom's decoders raise many types
            raise ImageReadError(
                src, f"cannot decode the compressed pixel data ({syntax.name}): {exc}"
            ) from None
    stored = _pixels(ds, src)
    if stored.ndim == 3:
        interpretation = "RGB"  # pydicom returns YBR_* data converted to RGB
    return ds, interpretation, stored


def save_derived(ds, src: Path, pixels: np.ndarray, interpretation: str, description: str,
                 dst: Path, *, image_type_extra: tuple[str, ...] = ()) -> None:
    """Store ``pixels`` in ``ds`` and write it to ``dst`` as a new, derived instance.

    A new SOP Instance UID; ``ImageType`` DERIVED (value 1; ``["DERIVED",
    "SECONDARY"]`` when the original has no ImageType), plus
    ``image_type_extra``; ``DerivationDescription``; a ``SourceImageSequence``
    pointing at the original; Explicit VR Little Endian. A file without a
    SOP Class (ACR-NEMA) becomes Secondary Capture, and the description says so.
    Overlays and the icon image (not transformed with the pixels) are removed.

    Raises
    ------
    ValueError
        The pixels cannot be stored back (e.g. values beyond BitsStored).
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

    source = (ds.get("SOPClassUID"), ds.get("SOPInstanceUID"))
    dropped = _drop_unrotated(ds)
    if getattr(ds, "file_meta", None) is None:
        ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if not source[0]:
        ds.SOPClassUID = SecondaryCaptureImageStorage
        description += "; the original has no SOP Class (ACR-NEMA): stored as Secondary Capture"
    bits = int(ds.get("BitsStored") or pixels.dtype.itemsize * 8)
    try:  # also sets a new SOPInstanceUID (and MediaStorageSOPInstanceUID)
        pydicom.pixels.set_pixel_data(ds, np.ascontiguousarray(pixels), interpretation, bits)
    except (ValueError, NotImplementedError, AttributeError) as exc:
        raise ValueError(f"{src}: cannot write a DICOM copy ({one_line(exc)})") from None
    value = ds.get("ImageType")
    values = [] if value is None else [value] if isinstance(value, str) else list(value)
    values = ["DERIVED", *(values[1:] or ["SECONDARY"])]
    ds.ImageType = values + [v for v in image_type_extra if v not in values]
    if dropped:
        description += f"; removed the {' and '.join(dropped)} (not transformed)"
    ds.DerivationDescription = description[:1024]  # ST: at most 1024 characters
    if source[0] and source[1]:
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = source
        ds.SourceImageSequence = [item]
    try:
        ds.save_as(dst, enforce_file_format=True)
    except (ValueError, AttributeError) as exc:  # missing or invalid required elements
        raise ValueError(f"{src}: cannot write a DICOM copy ({one_line(exc)})") from None


def write_rotated_dicom(src: Path, quarter_turns_ccw: int, dst: Path) -> None:
    """Write ``src`` rotated by ``quarter_turns_ccw`` counter-clockwise quarter turns to ``dst``.

    The stored pixel values are rotated with ``np.rot90`` (lossless); see the
    module docstring for the elements that change. ``dst`` is written as is
    (the caller, :func:`risc_tf.io.write_upright_copy`, passes a temporary
    path and checks the target).

    Raises
    ------
    ImageReadError
        ``src`` cannot be read (as :func:`read_dicom`).
    ValueError
        The rotated pixels cannot be stored back (e.g. values beyond BitsStored).
    """
    ds, interpretation, stored = open_image(src)
    turns = int(quarter_turns_ccw) % 4
    _rotate_geometry(ds, turns, *stored.shape[:2])
    description = f"Rotated {90 * turns} degrees counter-clockwise (lossless) by risc_tf"
    save_derived(ds, src, np.rot90(stored, turns), interpretation, description, dst)
