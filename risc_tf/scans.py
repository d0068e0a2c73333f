"""A folder of a user's scans through a pipeline: one result per file, streamed.

:func:`predict_files` reads files with :func:`risc_tf.io.iter_images` (one file
in memory at a time), gathers readable images into batches of ``batch_size``,
runs :meth:`risc_tf.RISCPipeline.predict_details` on each batch (images of any
size; the pipeline resizes each) and yields one :class:`FileResult` per file,
in file order. The pipeline runs each batch in a worker thread while the next
batch is read and the caller handles the results of the one before (TensorFlow
releases the GIL while it computes). Each result carries the decisions of
:mod:`risc_tf.decisions`: the file's orientation (the pipeline's angle and a
finer estimate from the RotNet's probabilities), its reasons for review, and
the upright copy it should get. Unreadable files get the status
``"unreadable"`` and the reason.

Memory is bounded by three batches of images (one being read, one in the
pipeline, one being handled), whatever the number of files. A batch is the
readable files among ``batch_size`` consecutive files (a window that starts
at a multiple of ``batch_size``), cut short where its decoded images reach
:data:`BATCH_BYTES`, so that large scans do not fill the memory. The same
files make the same batches in any run whose list starts at a multiple of
``batch_size`` (the shards of :mod:`risc_tf.shards`): the numbers do not
depend on how a folder was split.

The review decision on the confidences is the pipeline's (its ``review``
flag, explained by :func:`risc_tf.decisions.confidence_reasons`, the rule it
applies); the decisions about the rotation and the copy are added here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from risc_tf.decisions import (
    CopyPlan,
    Orientation,
    Reason,
    check_max_tilt,
    confidence_reasons,
    continuous_orientations,
    copy_plan,
    orientation_reasons,
    orientations,
    quarter_turns_to_undo,  # noqa: F401 - was importable from here
    status_of,
)
from risc_tf.imagefiles import display_path
from risc_tf.io import ImageRecord, iter_images
from risc_tf.rowfiles import ROW_FIELDS
from risc_tf.validation import check_int

__all__ = ["BATCH_BYTES", "FileResult", "pipeline_max_tilt", "predict_files", "predict_records"]

#: The decoded image bytes at which a batch is cut short (it holds at most
#: ``batch_size`` files and this much of their pixels, plus the one file that crossed
#: the line): 256 files of 28x28 pixels, 32 scans of 2048x2048 16-bit pixels.
BATCH_BYTES = 256 * 2**20


@dataclasses.dataclass
class FileResult:
    """One file's outcome: the pipeline's answer and the decisions about it.

    Attributes
    ----------
    record : ImageRecord
        The file and its image (``record.image`` is None when unreadable).
    answer : dict
        ``class_index``, ``class_name``, ``class_probability``,
        ``rotation_confidence`` (empty when unreadable).
    orientation : Orientation or None
        How the file is turned (None when unreadable).
    reasons : list of Reason
        Why it is not simply ``ok`` (review reasons and notes).
    copy : CopyPlan or None
        The upright copy it should get.
    upright_copy : str or None
        The copy's path once written (:meth:`copied`).
    copy_kind : str or None
        ``"exact"`` or ``"straightened"`` once written.
    """

    record: ImageRecord
    answer: dict = dataclasses.field(default_factory=dict)
    orientation: Orientation | None = None
    reasons: list[Reason] = dataclasses.field(default_factory=list)
    copy: CopyPlan | None = None
    upright_copy: str | None = None
    copy_kind: str | None = None

    @property
    def image(self) -> np.ndarray | None:
        return self.record.image

    @property
    def status(self) -> str:
        return status_of(self.reasons)

    @property
    def rotated(self) -> bool | None:
        return None if self.orientation is None else self.orientation.rotated

    def copied(self, path, kind: str) -> None:
        """Record the upright copy written for this file."""
        self.upright_copy, self.copy_kind = display_path(path), kind

    def note(self, reason: Reason) -> None:
        """Add a reason (e.g. ``no_copy``: why no upright copy was written)."""
        self.reasons.append(reason)

    @property
    def row(self) -> dict:
        """The file's row: the keys of :data:`ROW_FIELDS` (JSON-ready values)."""
        o = self.orientation
        row = dict.fromkeys(ROW_FIELDS)
        row.update(self.answer)
        row.update(
            path=display_path(self.record.path),
            status=self.status,
            reason="; ".join(r.text for r in self.reasons) or None,
            reason_codes=";".join(r.code for r in self.reasons) or None,
            rotation=None if o is None else o.rotation,
            estimated_rotation=None if o is None else round(o.estimate, 2),
            rotated=self.rotated,
            upright_copy=self.upright_copy,
            copy_kind=self.copy_kind,
        )
        return row


def _rotation_proba(pipe, details, images) -> np.ndarray:
    """The RotNet's probabilities: from ``details`` when the pipeline gives them, else one
    more RotNet pass."""
    proba = getattr(details, "rotation_proba", None)
    if proba is None:
        _, proba = pipe.predict_rotation(images, return_proba=True)
    return np.asarray(proba, np.float64).reshape(len(images), len(pipe.angles))


def _results(pipe, records: Sequence[ImageRecord], *, max_tilt: float,
             straighten: bool) -> list[FileResult]:
    images = [r.image for r in records]
    details = pipe.predict_details(images)
    if getattr(pipe, "head", "bins") == "circular":  # a continuous angle, read per image
        found = continuous_orientations(details.rotation, max_tilt=max_tilt)
    else:
        found = orientations(details.rotation, angles=pipe.angles, max_tilt=max_tilt,
                             proba=_rotation_proba(pipe, details, images))
    ood = getattr(pipe, "ood", None)
    scores = getattr(details, "ood_score", None)
    given = getattr(details, "reasons", None)  # a pipeline that explains its review flags
    results = []
    for i, record in enumerate(records):
        rot_conf, class_p = float(details.rotation_confidence[i]), \
            float(details.class_probability[i])
        if given is not None:
            reasons = list(given[i])
        else:
            reasons = confidence_reasons(
                rot_conf, class_p, min_rotation_confidence=pipe.min_rotation_confidence,
                min_class_probability=pipe.min_class_probability,
                ood_score=None if scores is None else float(scores[i]),
                ood_threshold=None if ood is None else ood.threshold)
        if bool(details.review[i]) and not any(r.review for r in reasons):
            reasons.append(Reason("pipeline_review", "marked for review by the pipeline"))
        reasons += orientation_reasons(found[i], straighten=straighten)
        answer = {"class_index": int(details.class_index[i]),
                  "class_name": str(details.class_name[i]),
                  "class_probability": class_p, "rotation_confidence": rot_conf}
        results.append(FileResult(record, answer, found[i], reasons,
                                  copy_plan(found[i], reasons, straighten=straighten)))
    return results


def predict_files(pipe, inputs, *, recursive: bool = False, batch_size: int = 256,
                  max_tilt: float | None = None,
                  straighten: bool = False) -> Iterator[FileResult]:
    """Stream image files through a pipeline; one :class:`FileResult` per file, in order.

    Parameters
    ----------
    pipe : RISCPipeline
        Its review thresholds decide the confidence reasons.
    inputs : path or sequence of paths
        Files and folders (see :func:`risc_tf.io.find_image_files`).
    recursive : bool, default False
        Also look in subfolders.
    batch_size : int, default 256
        Files read before each pipeline call, at most (with :data:`BATCH_BYTES`, the
        memory bound).
    max_tilt : float, optional
        Degrees between the RotNet's refined estimate and its predicted angle
        (a quarter turn for a circular head) beyond which a file is turned off
        the pipeline's angle set (status ``"review"``, no exact copy); see
        :func:`risc_tf.decisions.orientations`. Default: the pipeline's
        ``max_tilt`` (:func:`pipeline_max_tilt`).
    straighten : bool, default False
        Plan resampled ("straightened") copies for rotations that no quarter
        turn undoes, and do not send in-set non-quarter-turn rotations to review.

    Raises
    ------
    FileNotFoundError, ValueError
        A path that does not exist, an empty folder or one without image files
        (raised before anything is read); bad ``batch_size`` or ``max_tilt``.
        Problems of single files never raise: they become ``"unreadable"`` rows.

    Notes
    -----
    The pipeline runs in a worker thread, one batch ahead of the results taken.
    To stop early, close the iterator (``close()``, or ``contextlib.closing``): it
    waits for the batch the worker is running, and the thread ends.

    Examples
    --------
    >>> for result in predict_files(pipe, "scans/"):  # doctest: +SKIP
    ...     print(result.row["path"], result.status, result.reasons)
    """
    records = iter_images(inputs, recursive=recursive)  # checks the inputs now
    return predict_records(pipe, records, batch_size=batch_size, max_tilt=max_tilt,
                           straighten=straighten)


def pipeline_max_tilt(pipe, max_tilt: float | None = None) -> float:
    """``max_tilt`` checked for the pipeline's head and angles, else the pipeline's own
    tolerance (``pipe.max_tilt``), else the head's default
    (:func:`risc_tf.decisions.check_max_tilt`)."""
    if max_tilt is None:
        max_tilt = getattr(pipe, "max_tilt", None)
    return check_max_tilt(max_tilt, pipe.angles, getattr(pipe, "head", "bins"))


def predict_records(pipe, records: Iterable[ImageRecord], *, batch_size: int = 256,
                    max_tilt: float | None = None,
                    straighten: bool = False) -> Iterator[FileResult]:
    """:func:`predict_files` on records already being read (e.g. one shard's files).

    Parameters
    ----------
    records : iterable of ImageRecord
        E.g. ``(risc_tf.io.read_record(p) for p in paths)``; consumed lazily.

    Other parameters and errors as :func:`predict_files` (the options are
    checked when this function is called).
    """
    batch_size = check_int("batch_size", batch_size)
    max_tilt = pipeline_max_tilt(pipe, max_tilt)
    return _stream(pipe, iter(records), batch_size=batch_size, max_tilt=max_tilt,
                   straighten=straighten)


def _batches(records: Iterator[ImageRecord], batch_size: int) -> Iterator[list[ImageRecord]]:
    """Consecutive records in batches: a window of ``batch_size`` records (starting at a
    multiple of ``batch_size``), cut short where its readable images reach
    :data:`BATCH_BYTES`."""
    batch: list[ImageRecord] = []
    held = 0  # decoded bytes in the batch
    for position, record in enumerate(records, 1):
        batch.append(record)
        held += record.image.nbytes if record.ok else 0
        if position % batch_size == 0 or held >= BATCH_BYTES:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


def _in_file_order(batch: list[ImageRecord], done: Future | None) -> Iterator[FileResult]:
    """The batch's results in file order: the pipeline's for readable files, "unreadable"
    rows for the others."""
    answered = iter(done.result() if done is not None else ())
    for record in batch:
        yield next(answered) if record.ok else \
            FileResult(record, reasons=[Reason("unreadable", record.error)])


def _stream(pipe, records, *, batch_size: int, max_tilt: float,
            straighten: bool) -> Iterator[FileResult]:
    """The pipeline runs each batch in a worker thread (TensorFlow releases the GIL) while
    this generator reads the next batch and its caller handles the results of the one
    before: at most three batches in memory."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="risc_tf-predict")
    running: tuple | None = None  # the batch in the worker and its future results
    try:
        for batch in _batches(records, batch_size):
            readable = [r for r in batch if r.ok]
            done = pool.submit(_results, pipe, readable, max_tilt=max_tilt,
                               straighten=straighten) if readable else None
            if running is not None:
                yield from _in_file_order(*running)
            running = (batch, done)
        if running is not None:
            yield from _in_file_order(*running)
    finally:  # a caller that stops early does not wait for the batches queued after
        pool.shutdown(wait=True, cancel_futures=True)
