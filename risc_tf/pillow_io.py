"""PNG, JPEG, BMP, GIF and TIFF through Pillow: reading one image, writing a rotated copy.

The Pillow side of :mod:`risc_tf.io`, whose module docstring states the
conventions (dtype, alpha, palettes, EXIF orientation, multi-frame files).
Two Pillow limits are made explicit rather than silent: 16-bit *colour* PNG
and TIFF files are decoded at 8 bits per channel (``info["reduced_to_8_bit"]``,
and :func:`write_rotated_pil` refuses them), and images larger than Pillow's
decompression-bomb limit (about 179 megapixels) are reported unreadable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import (
    Image,
    ImageOps,
    ImageSequence,
    JpegImagePlugin,
    PngImagePlugin,
    UnidentifiedImageError,
)

from risc_tf.imagefiles import IMAGE_SUFFIXES, ImageReadError

__all__ = ["read_pil", "reduced_to_8_bit", "write_rotated_pil"]

_KIND = {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".dicom": "DICOM"}

def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    return _KIND.get(suffix, suffix[1:].upper() if suffix in IMAGE_SUFFIXES else "")


def _open_pil(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except UnidentifiedImageError:
        kind = _kind(path)
        what = f"a {kind}" if kind else "an image"
        raise ImageReadError(path, f"not {what} file (cannot identify image)") from None
    except MemoryError:
        raise
    except Exception as exc:  # Pillow's parsers raise many types on corrupt headers
        raise ImageReadError(path, f"cannot open the file ({exc})") from None


def read_pil(path: Path) -> tuple[np.ndarray, dict]:
    """Read the first frame of an image file with Pillow, as displayed (EXIF applied).

    Returns
    -------
    image : np.ndarray
        ``(H, W)`` or ``(H, W, 3)``, uint8, uint16 or float32 (see :mod:`risc_tf.io`).
    info : dict
        ``format``, ``mode``, ``frames``, ``reduced_to_8_bit``,
        ``exif_orientation`` (the tag, or None), ``exif_transposed``, ``size``
        (width, height as displayed), ``bits`` (per sample, as decoded),
        ``alpha`` (None, "opaque" or "composited over black").

    Raises
    ------
    ImageReadError
        Not an image, corrupt or truncated, or values that fit no 16 bits.
    """
    with _open_pil(path) as im:
        info = {"format": im.format, "mode": im.mode, "frames": getattr(im, "n_frames", 1)}
        info["reduced_to_8_bit"] = reduced_to_8_bit(im)
        try:
            im.load()
            orientation = im.getexif().get(0x0112)
            shown = ImageOps.exif_transpose(im)
        except MemoryError:
            raise
        except Exception as exc:  # truncated data: OSError, SyntaxError, ValueError, ...
            what = im.format or _kind(path) or "image"
            raise ImageReadError(path, f"corrupt or truncated {what} file ({exc})") from None
        info["exif_orientation"] = orientation
        info["exif_transposed"] = orientation not in (None, 1)
        info["size"] = shown.size
        return _pil_to_array(shown, path, info), info


def reduced_to_8_bit(im: Image.Image) -> bool:
    """True when Pillow decodes a 16-bit colour file (raw mode "RGB;16B"...) at 8 bits.

    Call before ``im.load()`` (the raw mode is read from the file's tile list).
    """
    if not im.tile or im.mode.startswith(("I", "F")):
        return False
    args = im.tile[0][3]  # (codec, extents, offset, args): a plain tuple before Pillow 11
    rawmode = args if isinstance(args, str) else (args[0] if args else "")
    return isinstance(rawmode, str) and ";16" in rawmode


def _pil_to_array(im: Image.Image, path: Path, info: dict) -> np.ndarray:
    mode = im.mode
    info["bits"] = 1 if mode == "1" else 16 if mode.startswith("I") else 32 if mode == "F" else 8
    info["alpha"] = None
    if mode.startswith("I"):
        return _to_uint16(np.asarray(im), path)
    if mode == "F":
        return _min_max(np.asarray(im, dtype=np.float32), path)
    has_alpha = mode in ("LA", "La", "PA", "RGBA", "RGBa") or "transparency" in im.info
    if mode in ("1", "L") and not has_alpha:
        return np.asarray(im.convert("L"))
    if not has_alpha:
        rgb = np.asarray(im.convert("RGB"))
    else:
        rgba = np.asarray(im.convert("RGBA")).astype(np.uint16)
        alpha = rgba[..., 3:]
        rgb = ((rgba[..., :3] * alpha + 127) // 255).astype(np.uint8)
        info["alpha"] = "opaque" if alpha.min() == 255 else "composited over black"
    gray_source = mode in ("1", "L", "LA", "La") or (
        mode in ("P", "PA") and np.array_equal(rgb[..., 0], rgb[..., 1])
        and np.array_equal(rgb[..., 0], rgb[..., 2])
    )
    return np.ascontiguousarray(rgb[..., 0]) if gray_source else rgb


def _to_uint16(values: np.ndarray, path: Path) -> np.ndarray:
    if values.dtype == np.uint16 or values.dtype == np.dtype(">u2"):
        return values.astype(np.uint16)
    lo, hi = int(values.min()), int(values.max())
    if lo < 0 or hi > 65535:
        raise ImageReadError(
            path,
            f"integer pixel values in [{lo}, {hi}] do not fit 16 bits "
            "(only 8- and 16-bit unsigned images are supported)",
        )
    return values.astype(np.uint16)


def _min_max(values: np.ndarray, path: Path) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        raise ImageReadError(path, "floating-point image contains NaN or infinity")
    lo, hi = float(values.min()), float(values.max())
    if hi == lo:
        return np.zeros_like(values, dtype=np.float32)
    return ((values - lo) / (hi - lo)).astype(np.float32)


_TURN = {0: None, 1: Image.Transpose.ROTATE_90, 2: Image.Transpose.ROTATE_180,
         3: Image.Transpose.ROTATE_270}
#: What each format's copy keeps of ``Image.info`` (dpi swaps with odd turns).
_KEEP = {
    "PNG": ("transparency", "icc_profile", "dpi"),
    "JPEG": ("icc_profile", "dpi", "progressive"),
    "TIFF": ("icc_profile", "dpi"),
    "BMP": ("dpi",),
    "GIF": ("transparency", "duration", "loop", "background"),
}
_LOSSLESS_TIFF = frozenset(
    {"raw", "tiff_lzw", "tiff_adobe_deflate", "tiff_deflate", "packbits", "group3", "group4"}
)


def write_rotated_pil(src: Path, turns: int, dst: Path) -> None:
    """Write ``src`` turned by ``turns`` counter-clockwise quarter turns to ``dst``.

    Every frame is turned as displayed (EXIF orientation baked in, then
    reset); the format, mode (bit depth, palette, alpha) and ``_KEEP``'s
    metadata are kept. JPEG is re-encoded with the original quantization
    tables and subsampling (the one lossy case); TIFF keeps its compression
    when it is lossless, else uses deflate. ``dst`` is written as is (the
    caller, :func:`risc_tf.io.write_upright_copy`, passes a temporary path).

    Raises
    ------
    ImageReadError
        ``src`` cannot be read.
    ValueError
        A format that is not written, or a 16-bit colour file (Pillow decodes
        it at 8 bits per channel, so the copy would lose precision).
    """
    with _open_pil(src) as im:
        fmt = im.format
        if fmt not in _KEEP:
            raise ValueError(
                f"{src}: copies of {fmt} files are not written (PNG, JPEG, TIFF, BMP, GIF "
                "and DICOM only)"
            )
        if reduced_to_8_bit(im):
            raise ValueError(
                f"{src}: Pillow decodes this 16-bit colour {fmt} at 8 bits per channel, so a "
                "copy would lose precision; none is written"
            )
        # im.info changes as frames are read (GIF): keep the first frame's.
        options = {key: im.info[key] for key in _KEEP[fmt] if key in im.info}
        compression, text = im.info.get("compression", "raw"), getattr(im, "text", None)
        turn = _TURN[turns % 4]
        try:
            frames = [ImageOps.exif_transpose(frame) for frame in ImageSequence.Iterator(im)]
        except MemoryError:
            raise
        except Exception as exc:  # as in read_pil
            raise ImageReadError(src, f"corrupt or truncated {fmt} file ({exc})") from None
        frames = [frame if turn is None else frame.transpose(turn) for frame in frames]
        if "dpi" in options and turns % 2:
            options["dpi"] = tuple(reversed(options["dpi"]))
        exif = frames[0].getexif()  # exif_transpose removed the orientation
        if fmt in ("JPEG", "PNG") and len(exif):
            options["exif"] = exif
        if fmt == "JPEG":
            options["qtables"] = im.quantization
            sampling = JpegImagePlugin.get_sampling(im)
            if sampling != -1:
                options["subsampling"] = sampling
        elif fmt == "PNG" and text:
            options["pnginfo"] = PngImagePlugin.PngInfo()
            for key, value in text.items():
                options["pnginfo"].add_text(key, value)
        elif fmt == "TIFF":
            lossless = compression in _LOSSLESS_TIFF
            options["compression"] = compression if lossless else "tiff_adobe_deflate"
        if len(frames) > 1:
            options.update(save_all=True, append_images=frames[1:])
        frames[0].save(dst, format=fmt, **options)
