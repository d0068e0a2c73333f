"""A static HTML page for a person to check predictions on their own images by eye.

:func:`write_review_page` writes one self-contained file: thumbnails are
embedded as base64 PNG ``data:`` URIs, the style is inline, there is no
JavaScript and no external resource, so the page opens offline and can be
archived or mailed as it is. It shows a summary (files per status, how many
were found rotated), one card per image to check (status "review", or a
predicted rotation other than 0) with the original beside the corrected
image, and the list of unreadable files with their reasons.

Rows
----
One plain dict per file (JSON-friendly; the command line writes them):

=====================  ========================================================
key                    value
=====================  ========================================================
``path``               str: the file (required)
``status``             ``"ok"``, ``"review"`` or ``"unreadable"`` (required)
``reason``             str or None: why "review" or "unreadable", one line
``class_index``        int or None: predicted class
``class_name``         str or None: its name
``class_probability``  float in [0, 1] or None
``rotation``           float or None: predicted rotation of the file's image,
                       degrees counter-clockwise as displayed (0 = upright)
``rotation_confidence``  float in [0, 1] or None
=====================  ========================================================

Missing optional keys mean None; other keys are ignored.

Thumbnails
----------
:func:`thumbnail` makes the small 8-bit images: at most ``size`` pixels on
the longer side (Lanczos; never enlarged: the browser scales small images up
without smoothing). Values become 0..255 as follows: uint8 as is; bool as
0/255; other integer types (uint16 scans...) min-max per image, because 16-bit
X-rays rarely fill 0..65535 and would look black when scaled by the dtype
range; floats in [0, 1] (the library's convention, DICOM included) times 255,
other floats min-max; NaN and infinities as 0. To keep memory low when
streaming many files, pass ``thumbnail(image)`` rather than the full image.

Only numpy and Pillow are imported (no TensorFlow), so the command line starts fast.
"""

from __future__ import annotations

import base64
import html
import io
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from risc_tf.angles import ANGLE_TOLERANCE, angle_difference
from risc_tf.atomic import atomic_output
from risc_tf.validation import check_int, check_probability

__all__ = ["ROW_KEYS", "STATUSES", "thumbnail", "write_review_page"]

#: Values of ``row["status"]``, in the order of the summary.
STATUSES = ("ok", "review", "unreadable")
#: The keys of a row (see the module docstring).
ROW_KEYS = (
    "path", "status", "reason", "class_index", "class_name", "class_probability",
    "rotation", "rotation_confidence",
)

Thumbnails = Mapping[str, "tuple[np.ndarray, np.ndarray | None] | np.ndarray"]

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       margin: 0; padding: 24px 32px; background: #f4f5f7; color: #1d2330; }
h1 { font-size: 22px; margin: 0 0 8px; }
h2 { font-size: 17px; margin: 28px 0 12px; }
.summary { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin: 0; }
.grid { display: grid; gap: 16px; grid-template-columns: repeat(auto-fill, minmax(358px, 1fr)); }
.card { background: #fff; border-radius: 8px; padding: 12px; border: 1px solid #dde1e7;
        border-top: 4px solid var(--accent); }
.pair { display: flex; gap: 12px; }
figure { margin: 0; text-align: center; font-size: 12px; color: #5b6472; }
.thumb { width: 160px; height: 160px; background: #111; border-radius: 4px; display: flex;
         align-items: center; justify-content: center; color: #9aa3af; overflow: hidden; }
.thumb img { width: 160px; height: 160px; object-fit: contain; image-rendering: pixelated; }
.path { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px;
        word-break: break-all; margin: 10px 0 6px; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; margin: 8px 0 0; }
dt { color: #5b6472; } dd { margin: 0; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 10px; color: #fff;
         font-size: 12px; font-weight: 600; background: var(--accent); margin-right: 4px; }
.reason { color: #5b6472; margin: 6px 0 0; }
.ok { --accent: #2e7d32; } .review { --accent: #b35c00; } .unreadable { --accent: #c62828; }
.rotated { --accent: #1f5fbf; }
table { border-collapse: collapse; background: #fff; border: 1px solid #dde1e7; }
td, th { padding: 6px 12px; border-bottom: 1px solid #eceff3; text-align: left; }
th { background: #eceff3; font-weight: 600; }
td.path { margin: 0; }
.none { color: #5b6472; }
"""


def thumbnail(image, size: int = 160) -> np.ndarray:
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


def _data_uri(image) -> str:
    buffer = io.BytesIO()
    Image.fromarray(thumbnail(image)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _check_rows(rows) -> list[dict]:
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence):
        raise ValueError(f"rows must be a sequence of dicts (one per file); got {type(rows)}")
    checked = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValueError(f"rows[{i}] must be a dict; got {row!r}")
        if not isinstance(row.get("path"), (str, os.PathLike)):
            raise ValueError(f"rows[{i}] needs a 'path' (str); got {row.get('path')!r}")
        out = {key: row.get(key) for key in ROW_KEYS}
        out["path"] = str(out["path"])
        where = f"rows[{i}] ({out['path']})"
        if out["status"] not in STATUSES:
            raise ValueError(f"{where}: status must be one of {STATUSES}; got {out['status']!r}")
        for key in ("class_probability", "rotation_confidence"):
            if out[key] is not None:
                out[key] = check_probability(f"{where} {key}", out[key])
        if out["class_index"] is not None:
            out["class_index"] = check_int(f"{where} class_index", out["class_index"], minimum=0)
        rotation = out["rotation"]
        if rotation is not None and (
            not isinstance(rotation, numbers.Real) or not math.isfinite(rotation)
        ):
            raise ValueError(f"{where}: rotation must be a finite number of degrees or None")
        checked.append(out)
    return checked


def _is_rotated(row: dict) -> bool:
    rotation = row["rotation"]
    return (
        row["status"] != "unreadable" and rotation is not None
        and abs(float(angle_difference(rotation, 0.0))) > ANGLE_TOLERANCE
    )


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _figure(image, caption: str) -> str:
    if image is None:
        inner = "no preview"
    else:
        inner = f'<img src="{_data_uri(image)}" alt="{_e(caption)}">'
    caption = f"<figcaption>{_e(caption)}</figcaption>"
    return f'<figure><div class="thumb">{inner}</div>{caption}</figure>'


def _card(row: dict, images) -> str:
    if isinstance(images, np.ndarray) or images is None:
        original, corrected = images, None
    else:
        original, corrected = images
    rotated = _is_rotated(row)
    figures = _figure(original, "original")
    if rotated:
        figures += _figure(corrected, "corrected")
    facts = []
    if row["class_name"] is not None or row["class_index"] is not None:
        name = row["class_name"] if row["class_name"] is not None else "class"
        index = "" if row["class_index"] is None else f" ({row['class_index']})"
        facts.append(("class", f"{name}{index}"))
    if row["class_probability"] is not None:
        facts.append(("probability", f"{row['class_probability']:.2f}"))
    if row["rotation"] is not None:
        how = f"{row['rotation']:g}° counter-clockwise" if rotated else "0° (upright)"
        facts.append(("rotation", how))
    if row["rotation_confidence"] is not None:
        facts.append(("confidence", f"{row['rotation_confidence']:.2f}"))
    details = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)
    reason = f'<p class="reason">{_e(row["reason"])}</p>' if row["reason"] else ""
    accent = row["status"] if row["status"] != "ok" else ("rotated" if rotated else "ok")
    badge = f'<span class="badge {row["status"]}">{_e(row["status"])}</span>'
    if rotated:
        badge += f'<span class="badge rotated">rotated {row["rotation"]:g}°</span>'
    return (
        f'<article class="card {accent}"><div class="pair">{figures}</div>'
        f'<p class="path">{_e(row["path"])}</p><div>{badge}</div>{reason}'
        f"<dl>{details}</dl></article>"
    )


def write_review_page(
    rows: Sequence[Mapping],
    path: str | os.PathLike[str],
    title: str = "risc_tf: images to review",
    thumbnails: Thumbnails | None = None,
) -> Path:
    """Write the review page (a self-contained HTML file) and return its path.

    Parameters
    ----------
    rows : sequence of dict
        One per file, with the keys of the module docstring (``path`` and
        ``status`` required).
    path : str or PathLike
        The HTML file to write; its folder is created if needed. Written under
        a temporary name and renamed into place (never half-written).
    title : str
        Page title and heading.
    thumbnails : mapping, optional
        ``row["path"]`` (as str) -> ``(original, corrected)`` images, or just
        the original; ``corrected`` may be None. Any size, dtype uint8,
        uint16, float...: they are shrunk with :func:`thumbnail`. Cards of
        rows without an entry say "no preview".

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        A row that is not a dict, without a path, with an unknown status, a
        probability outside [0, 1], a negative class index or a non-finite
        rotation (the message names the row and its path); a thumbnail of
        the wrong shape.

    Examples
    --------
    >>> import tempfile
    >>> rows = [{"path": "a.png", "status": "ok", "rotation": 0},
    ...         {"path": "b.png", "status": "review", "reason": "low confidence",
    ...          "class_name": "pneumonia", "class_probability": 0.55,
    ...          "rotation": 90, "rotation_confidence": 0.6}]
    >>> upright = np.zeros((28, 28), np.uint8)
    >>> page = write_review_page(rows, Path(tempfile.mkdtemp()) / "review.html",
    ...                          thumbnails={"b.png": (np.rot90(upright), upright)})
    >>> page.read_text(encoding="utf-8").count('class="card ')
    1
    """
    checked = _check_rows(rows)
    thumbnails = {} if thumbnails is None else {str(k): v for k, v in thumbnails.items()}
    counts = {status: sum(row["status"] == status for row in checked) for status in STATUSES}
    rotated = sum(_is_rotated(row) for row in checked)
    to_check = [row for row in checked if row["status"] == "review" or _is_rotated(row)]
    unreadable = [row for row in checked if row["status"] == "unreadable"]

    badges = "".join(
        f'<span class="badge {status}">{status} {counts[status]}</span>' for status in STATUSES
    )
    summary = (
        f'<p class="summary"><strong>{len(checked)} file(s)</strong>{badges}'
        f'<span class="badge rotated">rotated {rotated}</span></p>'
    )
    cards = "".join(_card(row, thumbnails.get(row["path"])) for row in to_check)
    if not cards:
        cards = '<p class="none">Nothing to check: every readable image is upright and sure.</p>'
    else:
        cards = f'<div class="grid">{cards}</div>'
    failures = "".join(
        f'<tr><td class="path">{_e(row["path"])}</td><td>{_e(row["reason"] or "")}</td></tr>'
        for row in unreadable
    )
    failures = (
        f"<table><tr><th>file</th><th>reason</th></tr>{failures}</table>"
        if failures else '<p class="none">None.</p>'
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body>"
        f"<header><h1>{_e(title)}</h1>{summary}</header>\n"
        f"<section><h2>To check ({len(to_check)})</h2>{cards}</section>\n"
        f"<section><h2>Unreadable files ({len(unreadable)})</h2>{failures}</section>\n"
        "</body></html>\n"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as part:
        part.write_text(page, encoding="utf-8")
    return path
