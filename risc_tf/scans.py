"""A folder of a user's scans through a pipeline: one result per file, streamed.

:func:`predict_files` reads files with :func:`risc_tf.io.iter_images` (one file
in memory at a time), gathers readable images into batches of ``batch_size``,
runs :meth:`risc_tf.RISCPipeline.predict_details` on each batch (images of any
size; the pipeline resizes each) and yields one :class:`FileResult` per file,
in file order: readable files with the pipeline's answer and a status ``"ok"``
or ``"review"``, unreadable ones with status ``"unreadable"`` and the reason.
Memory is bounded by one batch of images, whatever the number of files.

The rows follow the schema of :mod:`risc_tf.review` (plus ``upright_copy``,
filled by the command line when it writes corrected copies).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import numpy as np

from risc_tf.angles import match_angles
from risc_tf.io import ImageRecord, iter_images
from risc_tf.validation import check_int

__all__ = ["ROW_FIELDS", "FileResult", "predict_files", "quarter_turns_to_undo"]

#: Columns of the predictions file, in order.
ROW_FIELDS = ("path", "status", "reason", "class_index", "class_name", "class_probability",
              "rotation", "rotation_confidence", "upright_copy")


@dataclasses.dataclass
class FileResult:
    """One file's outcome: its row, and the image read (None when unreadable)."""

    row: dict
    record: ImageRecord

    @property
    def image(self) -> np.ndarray | None:
        return self.record.image


def quarter_turns_to_undo(rotation: float) -> int | None:
    """Counter-clockwise quarter turns that undo a predicted rotation (0-3), or None when
    the rotation is not a multiple of 90 degrees (no lossless correction exists)."""
    k = int(match_angles(rotation, (0.0, 90.0, 180.0, 270.0)))
    return None if k < 0 else (4 - k) % 4


def _reason(pipe, rotation_confidence: float, class_probability: float) -> str | None:
    parts = []
    if rotation_confidence < pipe.min_rotation_confidence:
        parts.append(f"rotation confidence {rotation_confidence:.3f} < "
                     f"{pipe.min_rotation_confidence:g}")
    if class_probability < pipe.min_class_probability:
        parts.append(f"class probability {class_probability:.3f} < "
                     f"{pipe.min_class_probability:g}")
    return "; ".join(parts) or None


def _rows(pipe, records: Sequence[ImageRecord]) -> list[dict]:
    details = pipe.predict_details([r.image for r in records])
    rows = []
    for i, record in enumerate(records):
        rot_conf, class_p = float(details.rotation_confidence[i]), \
            float(details.class_probability[i])
        rows.append({
            "path": str(record.path),
            "status": "review" if details.review[i] else "ok",
            "reason": _reason(pipe, rot_conf, class_p),
            "class_index": int(details.class_index[i]),
            "class_name": str(details.class_name[i]),
            "class_probability": class_p,
            "rotation": float(details.rotation[i]),
            "rotation_confidence": rot_conf,
            "upright_copy": None,
        })
    return rows


def _unreadable(record: ImageRecord) -> dict:
    return {**dict.fromkeys(ROW_FIELDS), "path": str(record.path), "status": "unreadable",
            "reason": record.error}


def predict_files(pipe, inputs, recursive: bool = False,
                  batch_size: int = 64) -> Iterator[FileResult]:
    """Stream image files through a pipeline; one :class:`FileResult` per file, in order.

    Parameters
    ----------
    pipe : RISCPipeline
        Its ``min_rotation_confidence`` / ``min_class_probability`` decide the
        ``"review"`` status.
    inputs : path or sequence of paths
        Files and folders (see :func:`risc_tf.io.find_image_files`).
    recursive : bool, default False
        Also look in subfolders.
    batch_size : int, default 64
        Images read before each pipeline call (the memory bound).

    Raises
    ------
    FileNotFoundError, ValueError
        A path that does not exist, an empty folder or one without image files
        (raised before anything is read). Problems of single files never
        raise: they become ``"unreadable"`` rows.
    """
    batch_size = check_int("batch_size", batch_size)
    pending: list[ImageRecord] = []
    order: list[ImageRecord] = []

    def flush():
        rows = iter(_rows(pipe, pending)) if pending else iter(())
        for record in order:
            yield FileResult(next(rows) if record.ok else _unreadable(record), record)
        pending.clear()
        order.clear()

    for record in iter_images(inputs, recursive=recursive):
        order.append(record)
        if record.ok:
            pending.append(record)
        if len(pending) == batch_size:
            yield from flush()
    yield from flush()
