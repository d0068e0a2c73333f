"""A whole prediction run over a user's files: predictions file, upright copies, review page.

What ``risc-tf predict`` does, as two library calls:

1. :func:`plan_predictions` checks every output and lists the files (no model,
   no image read): an output whose folder is missing or that exists (without
   ``overwrite``), a copies folder inside an input folder, a bad shard, a path
   that does not exist are refused here, before anything is read or written.
2. :func:`run_predictions` streams the files through a pipeline
   (:func:`risc_tf.scans.predict_records`) and writes, as the rows come, the
   predictions file (:class:`risc_tf.rowfiles.RowWriter`), the upright copies
   the decisions ask for (:func:`risc_tf.decisions.copy_plan`: exact quarter
   turns, and straightened copies when asked) and the review page
   (:class:`risc_tf.review.ReviewPage`). Memory holds three batches of images
   (read, predicted, written) and a few counters, whatever the number of files.

Every output is staged (:class:`risc_tf.staging.Staging`) and put in place
together when the run ends: a run that fails or is killed leaves none of its
outputs, and the next run cleans up after it (:func:`risc_tf.staging.recover`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from risc_tf.decisions import Reason
from risc_tf.imagefiles import (
    as_paths,
    copy_target,
    display_path,
    find_image_files,
    one_line,
)
from risc_tf.io import read_record, write_upright_copy
from risc_tf.review import ReviewPage
from risc_tf.rowfiles import RowWriter, row_format
from risc_tf.scans import FileResult, pipeline_max_tilt, predict_records
from risc_tf.shards import Shard, pipeline_fingerprint, record_path, shard_record
from risc_tf.staging import Staging, recover
from risc_tf.straighten import straighten_image, write_straightened_copy
from risc_tf.thumbnails import thumbnail
from risc_tf.validation import check_int

__all__ = ["PredictionPlan", "RunSummary", "plan_predictions", "run_predictions"]

#: How many unreadable files a summary names (the predictions file lists them all).
EXAMPLES = 10


@dataclasses.dataclass
class PredictionPlan:
    """The checked outputs and the files of one run (from :func:`plan_predictions`)."""

    files: list[str]
    output: Path
    report: Path | None = None
    fix_orientation: Path | None = None
    root: Path | None = None
    overwrite: bool = False
    shard: Shard | None = None
    all_files: list[str] | None = None  # the whole list, when sharded
    batch_size: int = 256


@dataclasses.dataclass
class RunSummary:
    """What a run did: counts, copies, and what was written."""

    files: int = 0
    counts: dict = dataclasses.field(default_factory=lambda: {"ok": 0, "review": 0,
                                                              "unreadable": 0})
    rotated: int = 0
    copies: dict = dataclasses.field(default_factory=lambda: {"exact": 0, "straightened": 0})
    no_copy: int = 0
    unreadable: list = dataclasses.field(default_factory=list)  # first EXAMPLES (path, reason)
    written: list = dataclasses.field(default_factory=list)
    recovered: dict = dataclasses.field(default_factory=lambda: {"removed": 0, "finished": 0})

    def add(self, result: FileResult) -> None:
        self.files += 1
        self.counts[result.status] += 1
        self.rotated += bool(result.rotated)
        if result.copy_kind:
            self.copies[result.copy_kind] += 1
        self.no_copy += any(r.code == "no_copy" for r in result.reasons)
        if result.status == "unreadable" and len(self.unreadable) < EXAMPLES:
            self.unreadable.append((display_path(result.record.path), result.row["reason"]))


def _missing_folder(path: Path) -> Path | None:
    """The first folder of ``path``'s parents that does not exist (None: all exist)."""
    missing = None
    for parent in path.parents:
        if parent.exists():
            return missing
        missing = parent
    return missing


def _check_file(name: str, path: Path, overwrite: bool) -> None:
    missing = _missing_folder(path)
    if missing is not None:
        raise FileNotFoundError(f"{name} {display_path(path)}: the folder {display_path(missing)} "
                                "does not exist")
    if not path.parent.is_dir():
        raise NotADirectoryError(f"{name} {display_path(path)}: {display_path(path.parent)} is "
                                 "not a folder")
    if path.is_dir():
        raise IsADirectoryError(f"{name} {display_path(path)} is a folder")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{name} {display_path(path)} exists: pass overwrite=True to "
                              "replace it")


def plan_predictions(inputs, output, *, recursive: bool = False, report=None,
                     fix_orientation=None, overwrite: bool = False,
                     shard: Shard | None = None, batch_size: int = 256) -> PredictionPlan:
    """Check the outputs and list the files of a run, before any model or image is loaded.

    Parameters
    ----------
    inputs : path or sequence of paths
        Files and folders (see :func:`risc_tf.io.find_image_files`).
    output : str or PathLike
        The predictions file, ``.csv`` or ``.json``; its folder must exist.
    recursive : bool, default False
        Also read subfolders.
    report : str or PathLike, optional
        A review page, ``.html``; its folder must exist.
    fix_orientation : str or PathLike, optional
        Folder of the upright copies (created if needed), outside every input folder.
    overwrite : bool, default False
        Replace existing outputs and copies.
    shard : Shard, optional
        Run on one block of the file list (:mod:`risc_tf.shards`); a shard
        record is written beside ``output``.
    batch_size : int, default 256
        Files read before each pipeline call (the memory bound; shards are
        made of whole batches).

    Raises
    ------
    FileNotFoundError
        A missing input, or a missing folder of an output (named).
    FileExistsError
        An output that exists without ``overwrite``.
    ValueError
        A wrong suffix, ``report`` equal to ``output``, ``fix_orientation``
        inside an input folder or a file; empty folders, folders without images.
    """
    batch_size = check_int("batch_size", batch_size)
    output = Path(output)
    row_format(output)
    _check_file("output", output, overwrite)
    if shard is not None:
        if not isinstance(shard, Shard):
            raise ValueError(f"shard must be a risc_tf.shards.Shard; got {shard!r}")
        _check_file("shard record", record_path(output), overwrite)
    if report is not None:
        report = Path(report)
        if report.suffix.lower() != ".html":
            raise ValueError(f"report {display_path(report)} must end in .html")
        if os.path.abspath(report) == os.path.abspath(output):
            raise ValueError("report and output are the same file")
        _check_file("report", report, overwrite)
    paths = as_paths(inputs)
    root = None
    if fix_orientation is not None:
        fix_orientation = Path(fix_orientation)
        outdir = fix_orientation.resolve()
        for source in paths:
            folder = source.resolve() if source.is_dir() else source.resolve().parent
            if outdir == folder or folder in outdir.parents:
                raise ValueError(f"fix_orientation {display_path(fix_orientation)} is inside the "
                                 f"input folder {display_path(source)}: choose a folder outside "
                                 "the inputs")
        existing = next((p for p in (fix_orientation, *fix_orientation.parents) if p.exists()),
                        None)
        if existing is not None and not existing.is_dir():
            raise ValueError(f"fix_orientation {display_path(fix_orientation)}: "
                             f"{display_path(existing)} is a file, not a folder")
    files = find_image_files(paths, recursive=recursive)
    if fix_orientation is not None:
        folders = [os.path.abspath(p) if p.is_dir() else os.path.dirname(os.path.abspath(p))
                   for p in paths]
        root = Path(os.path.commonpath(folders))
    files = [os.fspath(p) for p in files]  # str: a third of a Path's memory
    selected = files if shard is None else shard.select(files, unit=batch_size)
    return PredictionPlan(selected, output, report, fix_orientation, root, overwrite, shard,
                          files if shard is not None else None, batch_size)


def _thumbnails(result: FileResult):
    original = thumbnail(result.image)
    plan, orientation = result.copy, result.orientation
    if plan is not None and plan.kind == "straightened":
        return original, straighten_image(original, plan.angle)
    if orientation.quarter_turns is not None:
        return original, np.rot90(original, orientation.quarter_turns)
    return original, None


def _copy(result: FileResult, plan: PredictionPlan, staging: Staging, copies: Path) -> None:
    """Write one file's copy into the staging folder; a problem becomes a ``no_copy`` note."""
    src = result.record.path
    try:
        copy_target(src, plan.fix_orientation, plan.root, overwrite=plan.overwrite)
        if result.copy.kind == "exact":
            staged = write_upright_copy(result.record, result.copy.quarter_turns, copies,
                                        relative_to=plan.root)
        else:
            staged = write_straightened_copy(src, result.copy.angle, copies,
                                             relative_to=plan.root)
    except MemoryError:
        raise
    except FileExistsError:
        target = plan.fix_orientation / Path(os.path.abspath(src)).relative_to(plan.root)
        result.note(Reason("no_copy", f"no upright copy: {display_path(target)} exists (not "
                                      "replaced)"))
        return
    except Exception as err:  # one file's problem: noted in its row, never the run's end
        result.note(Reason("no_copy", f"no upright copy: {one_line(err)}"))
        return
    result.copied(staging.add(staged), result.copy.kind)


def _settings(pipe, plan: PredictionPlan, straighten: bool, max_tilt: float) -> dict:
    return {"batch_size": plan.batch_size,
            "min_rotation_confidence": pipe.min_rotation_confidence,
            "min_class_probability": pipe.min_class_probability,
            "max_tilt": max_tilt, "straighten": straighten,
            "fix_orientation": None if plan.fix_orientation is None else
            display_path(os.path.abspath(plan.fix_orientation))}


def run_predictions(pipe, plan: PredictionPlan, *, straighten: bool = False,
                    max_tilt: float | None = None, on_file=None) -> RunSummary:
    """Run a pipeline over a plan's files and write its outputs (see the module docstring).

    Parameters
    ----------
    pipe : RISCPipeline
        Its review thresholds apply.
    plan : PredictionPlan
        From :func:`plan_predictions`.
    straighten : bool, default False
        Also write resampled copies of files turned by angles no quarter turn
        undoes (see :mod:`risc_tf.straighten`).
    max_tilt : float, optional
        See :func:`risc_tf.scans.predict_files`.
    on_file : callable, optional
        Called with each :class:`risc_tf.scans.FileResult` (e.g. a progress bar).

    Returns
    -------
    RunSummary

    Raises
    ------
    ValueError
        None of the files could be read (then nothing is written).
    """
    summary = RunSummary()
    max_tilt = pipeline_max_tilt(pipe, max_tilt)
    for home in {plan.output.parent, plan.fix_orientation}:
        if home is not None:
            for key, n in recover(home).items():
                summary.recovered[key] += n
    if plan.fix_orientation is not None:
        plan.fix_orientation.mkdir(parents=True, exist_ok=True)
    home = plan.fix_orientation if plan.fix_orientation is not None else plan.output.parent
    records = (read_record(Path(path)) for path in plan.files)
    # closed however the run ends, so that the pipeline's worker thread stops with it
    stream = contextlib.closing(predict_records(
        pipe, records, batch_size=plan.batch_size, max_tilt=max_tilt, straighten=straighten))
    title = f"risc_tf predictions: {len(plan.files)} files" + \
        (f" (shard {plan.shard})" if plan.shard is not None else "")
    with stream as results, Staging(home) as staging:
        page = None if plan.report is None else ReviewPage(staging.file(plan.report),
                                                           title=title)
        record = None if plan.shard is None else staging.file(record_path(plan.output))
        rows = staging.file(plan.output)
        copies = None if plan.fix_orientation is None else staging.folder_for(
            plan.fix_orientation)
        with RowWriter(rows, format=row_format(plan.output)) as writer:
            for result in results:
                if result.copy is not None and copies is not None:
                    _copy(result, plan, staging, copies)
                row = result.row
                writer.add(row)
                summary.add(result)
                if page is not None:
                    page.add(row, _thumbnails(result) if page.wants_preview(row) else None)
                if on_file is not None:
                    on_file(result)
        if summary.counts["unreadable"] == summary.files and plan.shard is None:
            first = summary.unreadable[0] if summary.unreadable else ("none", "")
            raise ValueError(f"none of the {summary.files} files could be read (first: "
                             f"{first[0]}: {first[1]}); nothing was written")
        if page is not None:
            page.close()
        if record is not None:
            info = shard_record(plan.shard, plan.all_files, unit=plan.batch_size,
                                pipeline=pipeline_fingerprint(pipe),
                                settings=_settings(pipe, plan, straighten, max_tilt),
                                rows=summary.files)
            record.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
        staging.commit()
    summary.written = [p for p in (plan.output, plan.report) if p is not None]
    return summary
