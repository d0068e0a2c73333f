"""A static HTML page for a person to check predictions on their own images by eye.

:class:`ReviewPage` writes one self-contained file: thumbnails are embedded as
base64 PNG ``data:`` URIs, the style is inline, there is no JavaScript and no
external resource, so the page opens offline and can be archived or mailed as
it is. It shows a summary (files per status, how many were found rotated, how
many exact and straightened upright copies were written), a section "To
check" with every file whose status is ``"review"`` or that was found rotated
(a card with the original beside the corrected image for the first
``preview_limit`` of them, a table row for the others), and the list of
unreadable files with their reasons. Rows are added one at a time and kept on
disk (anonymous temporary files) until the page is written, so memory does
not grow with the number of files; :func:`write_review_page` does it for a
list of rows.

Rows
----
One plain dict per file (JSON-friendly; ``risc-tf predict`` writes them, the
columns of :data:`risc_tf.rowfiles.ROW_FIELDS`):

=======================  ======================================================
key                      value
=======================  ======================================================
``path``                 str: the file (required)
``status``               ``"ok"``, ``"review"`` or ``"unreadable"`` (required)
``reason``               str or None: why "review" or "unreadable", one line
``class_index``          int or None: predicted class
``class_name``           str or None: its name
``class_probability``    float in [0, 1] or None
``rotation``             float or None: predicted rotation of the file's image,
                         degrees counter-clockwise as displayed (0 = upright)
``rotation_confidence``  float in [0, 1] or None
``estimated_rotation``   float or None: the finer estimate (shown when it
                         differs from ``rotation``)
``rotated``              bool or None: whether the file is rotated; when
                         missing, :func:`risc_tf.decisions.is_rotated` of
                         ``rotation``
``copy_kind``            ``"exact"``, ``"straightened"`` or None: the upright
                         copy written
=======================  ======================================================

Missing optional keys mean None; other keys are ignored.

Thumbnails are made by :func:`risc_tf.thumbnails.thumbnail`.

Only numpy and Pillow are imported (no TensorFlow), so the command line starts fast.
"""

from __future__ import annotations

import html
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from risc_tf.atomic import atomic_output
from risc_tf.decisions import STATUSES, is_rotated
from risc_tf.imagefiles import escape_text
from risc_tf.thumbnails import data_uri
from risc_tf.validation import check_int, check_probability

__all__ = ["ROW_KEYS", "STATUSES", "ReviewPage", "write_review_page"]

#: The keys of a row (see the module docstring).
ROW_KEYS = (
    "path", "status", "reason", "class_index", "class_name", "class_probability",
    "rotation", "rotation_confidence", "estimated_rotation", "rotated", "copy_kind",
    "reason_codes",
)
#: Most cards with previews on a page (the other files to check are listed in a table).
PREVIEW_LIMIT = 500

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
.rotated { --accent: #1f5fbf; } .exact { --accent: #2e7d32; } .straightened { --accent: #6a3fb5; }
table { border-collapse: collapse; background: #fff; border: 1px solid #dde1e7; }
td, th { padding: 6px 12px; border-bottom: 1px solid #eceff3; text-align: left; }
th { background: #eceff3; font-weight: 600; }
td.path { margin: 0; }
.none { color: #5b6472; }
"""


def _check_row(row, i: int) -> dict:
    if not isinstance(row, Mapping):
        raise ValueError(f"rows[{i}] must be a dict; got {row!r}")
    if not isinstance(row.get("path"), (str, os.PathLike)):
        raise ValueError(f"rows[{i}] needs a 'path' (str); got {row.get('path')!r}")
    out = {key: row.get(key) for key in ROW_KEYS}
    out["path"] = escape_text(os.fspath(out["path"]))
    where = f"rows[{i}] ({out['path']})"
    if out["status"] not in STATUSES:
        raise ValueError(f"{where}: status must be one of {STATUSES}; got {out['status']!r}")
    for key in ("class_probability", "rotation_confidence"):
        if out[key] is not None:
            out[key] = check_probability(f"{where} {key}", out[key])
    if out["class_index"] is not None:
        out["class_index"] = check_int(f"{where} class_index", out["class_index"], minimum=0)
    for key in ("rotation", "estimated_rotation"):
        value = out[key]
        if value is not None and (not isinstance(value, numbers.Real) or not math.isfinite(value)):
            raise ValueError(f"{where}: {key} must be a finite number of degrees or None")
    if out["rotated"] is None:
        out["rotated"] = out["status"] != "unreadable" and is_rotated(out["rotation"])
    if out["copy_kind"] not in (None, "exact", "straightened"):
        raise ValueError(f"{where}: copy_kind must be 'exact', 'straightened' or None; "
                         f"got {out['copy_kind']!r}")
    for key in ("reason", "class_name"):
        if out[key] is not None:
            out[key] = escape_text(str(out[key]))
    return out


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _figure(image, caption: str, missing: str = "no preview") -> str:
    inner = missing if image is None else f'<img src="{data_uri(image)}" alt="{_e(caption)}">'
    caption = f"<figcaption>{_e(caption)}</figcaption>"
    return f'<figure><div class="thumb">{inner}</div>{caption}</figure>'


def _turn(row: dict) -> str:
    angle = row["estimated_rotation"] if row["estimated_rotation"] is not None and \
        "off_angle_set" in str(row.get("reason_codes") or row["reason"] or "") else row["rotation"]
    return f"{angle:g}°"


def _card(row: dict, images) -> str:
    if isinstance(images, np.ndarray) or images is None:
        original, corrected = images, None
    else:
        original, corrected = images
    rotated = row["rotated"]
    figures = _figure(original, "original")
    if rotated:
        caption = {"straightened": "straightened (resampled)"}.get(row["copy_kind"], "corrected")
        figures += _figure(corrected, caption)
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
    estimate = row["estimated_rotation"]
    if estimate is not None and row["rotation"] is not None and \
            abs((estimate - row["rotation"] + 180) % 360 - 180) >= 0.5:
        facts.append(("estimated", f"about {estimate:.0f}°"))
    if row["rotation_confidence"] is not None:
        facts.append(("confidence", f"{row['rotation_confidence']:.2f}"))
    if rotated:
        facts.append(("upright copy", row["copy_kind"] or "none"))
    details = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)
    reason = f'<p class="reason">{_e(row["reason"])}</p>' if row["reason"] else ""
    accent = row["status"] if row["status"] != "ok" else ("rotated" if rotated else "ok")
    badge = f'<span class="badge {row["status"]}">{_e(row["status"])}</span>'
    if rotated and row["rotation"] is not None:
        badge += f'<span class="badge rotated">rotated {_e(_turn(row))}</span>'
    return (
        f'<article class="card {accent}"><div class="pair">{figures}</div>'
        f'<p class="path">{_e(row["path"])}</p><div>{badge}</div>{reason}'
        f"<dl>{details}</dl></article>"
    )


def _table_row(row: dict) -> str:
    turn = _turn(row) if row["rotated"] and row["rotation"] is not None else ""
    return (f'<tr><td class="path">{_e(row["path"])}</td><td>{_e(row["status"])}</td>'
            f'<td>{_e(turn)}</td><td>{_e(row["reason"] or "")}</td></tr>')


class ReviewPage:
    """Build the review page one row at a time; :meth:`close` writes it.

    Parameters
    ----------
    path : str or PathLike
        The HTML file; its folder is created if needed. Written under a
        temporary name and renamed into place (never half-written).
    title : str
        Page title and heading.
    preview_limit : int, default 500
        Most cards with thumbnails; further files to check are listed in a table.

    Examples
    --------
    >>> import tempfile
    >>> with ReviewPage(Path(tempfile.mkdtemp()) / "review.html") as page:
    ...     page.add({"path": "a.png", "status": "review", "rotation": 0.0})
    >>> "To check (1)" in page.path.read_text(encoding="utf-8")
    True
    """

    def __init__(self, path: str | os.PathLike, *, title: str = "risc_tf: images to review",
                 preview_limit: int = PREVIEW_LIMIT):
        import tempfile

        self.path, self.title = Path(path), str(title)
        self.preview_limit = check_int("preview_limit", preview_limit, minimum=0)
        self.counts = dict.fromkeys(STATUSES, 0)
        self.rotated = self.checked = self.files = 0
        self.copies = {"exact": 0, "straightened": 0}
        # Anonymous files: removed by the system even if the process is killed.
        self._cards, self._more, self._unreadable = (
            tempfile.TemporaryFile("w+", encoding="utf-8") for _ in range(3))

    def to_check(self, row: Mapping) -> bool:
        """Whether ``row`` goes to "To check" (status review, or rotated)."""
        row = _check_row(row, self.files)
        return row["status"] == "review" or bool(row["rotated"])

    def wants_preview(self, row: Mapping) -> bool:
        """Whether :meth:`add` would show thumbnails for ``row`` (compute them only then)."""
        return self.to_check(row) and self.checked < self.preview_limit

    def add(self, row: Mapping, thumbnails=None) -> None:
        """Add one file's row; ``thumbnails`` is ``(original, corrected)`` or the original
        alone (any size and dtype, see :func:`risc_tf.thumbnails.thumbnail`), for cards."""
        row = _check_row(row, self.files)
        self.files += 1
        self.counts[row["status"]] += 1
        self.rotated += bool(row["rotated"])
        if row["copy_kind"] in self.copies:
            self.copies[row["copy_kind"]] += 1
        if row["status"] == "unreadable":
            self._unreadable.write(f'<tr><td class="path">{_e(row["path"])}</td>'
                                   f'<td>{_e(row["reason"] or "")}</td></tr>')
        elif row["status"] == "review" or row["rotated"]:
            if self.checked < self.preview_limit:
                self._cards.write(_card(row, thumbnails))
            else:
                self._more.write(_table_row(row))
            self.checked += 1

    def close(self) -> Path:
        """Write the page (once) and return its path."""
        if self._cards.closed:
            return self.path
        try:
            self._write()
        finally:
            for spool in (self._cards, self._more, self._unreadable):
                spool.close()
        return self.path

    def __enter__(self) -> ReviewPage:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            for spool in (self._cards, self._more, self._unreadable):
                spool.close()

    def _write(self) -> None:
        badges = "".join(f'<span class="badge {status}">{status} {self.counts[status]}</span>'
                         for status in STATUSES)
        badges += f'<span class="badge rotated">rotated {self.rotated}</span>'
        badges += "".join(f'<span class="badge {kind}">{kind} copies {n}</span>'
                          for kind, n in self.copies.items() if n)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(self.path) as part, open(part, "w", encoding="utf-8") as out:
            out.write(
                '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                '<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{_e(self.title)}</title><style>{_CSS}</style></head>\n<body>"
                f"<header><h1>{_e(self.title)}</h1><p class=\"summary\"><strong>{self.files} "
                f"file(s)</strong>{badges}</p></header>\n"
                f"<section><h2>To check ({self.checked})</h2>")
            if not self.checked:
                out.write('<p class="none">Nothing to check: every readable image is upright '
                          "and sure.</p>")
            if self.checked and self.preview_limit:
                out.write('<div class="grid">')
                _copy(self._cards, out)
                out.write("</div>")
            if self.checked > self.preview_limit:
                shown = min(self.checked, self.preview_limit)
                out.write(f'<p class="none">Previews of the first {shown} of {self.checked}; '
                          "the others:</p><table><tr><th>file</th><th>status</th>"
                          "<th>rotation</th><th>reason</th></tr>")
                _copy(self._more, out)
                out.write("</table>")
            out.write(f"</section>\n<section><h2>Unreadable files "
                      f"({self.counts['unreadable']})</h2>")
            if self.counts["unreadable"]:
                out.write("<table><tr><th>file</th><th>reason</th></tr>")
                _copy(self._unreadable, out)
                out.write("</table>")
            else:
                out.write('<p class="none">None.</p>')
            out.write("</section>\n</body></html>\n")


def _copy(spool, out) -> None:
    spool.seek(0)
    while chunk := spool.read(1 << 16):
        out.write(chunk)


def write_review_page(
    rows: Sequence[Mapping],
    path: str | os.PathLike,
    *,
    title: str = "risc_tf: images to review",
    thumbnails: Thumbnails | None = None,
    preview_limit: int = PREVIEW_LIMIT,
) -> Path:
    """Write the review page (a self-contained HTML file) for a list of rows; return its path.

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
        uint16, float...: they are shrunk with :func:`risc_tf.thumbnails.thumbnail`. Cards of
        rows without an entry say "no preview".
    preview_limit : int, default 500
        See :class:`ReviewPage`.

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        A row that is not a dict, without a path, with an unknown status, a
        probability outside [0, 1], a negative class index or a non-finite
        rotation (the message names the row and its path); a thumbnail of
        the wrong shape. Nothing is written then.

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
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence):
        raise ValueError(f"rows must be a sequence of dicts (one per file); got {type(rows)}")
    checked = [_check_row(row, i) for i, row in enumerate(rows)]  # all, before writing
    thumbnails = {} if thumbnails is None else {escape_text(os.fspath(k)): v
                                                for k, v in thumbnails.items()}
    with ReviewPage(path, title=title, preview_limit=preview_limit) as page:
        for row in checked:
            page.add(row, thumbnails.get(row["path"]))
    return page.path
