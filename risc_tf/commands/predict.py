"""``risc-tf predict``: a saved pipeline on a user's own image files, to a CSV or JSON file.

One row per file (path, class index and name, class probability, predicted
rotation, rotation confidence, status ok / review / unreadable with the
reason); optional upright copies of the rotated files and a review page.
Files are streamed (bounded memory); a file that cannot be read becomes a row,
never a traceback, and is counted in the closing summary. Every output is
written under a temporary name and moved into place at the end.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

from risc_tf.commands._common import output_file, positive_int, probability

__all__ = ["add_parser"]

#: Most cards on the review page (the page says how many more were flagged).
REPORT_LIMIT = 500


def _check_outputs(args: argparse.Namespace, inputs: list[Path]) -> None:
    """Everything about the outputs that can be refused before any model is loaded."""
    output_file(args.output, args.overwrite, (".csv", ".json"))
    if args.report:
        output_file(args.report, args.overwrite, (".html",))
    if args.fix_orientation:
        outdir = Path(args.fix_orientation).resolve()
        for source in inputs:
            folder = source.resolve() if source.is_dir() else source.resolve().parent
            if outdir == folder or folder in outdir.parents:
                raise ValueError(f"--fix-orientation {args.fix_orientation} is inside the input "
                                 f"folder {source}: choose a folder outside the inputs")
        if outdir.exists() and not outdir.is_dir():
            raise FileExistsError(f"--fix-orientation {args.fix_orientation} is a file")


class _Rows:
    """Rows to a CSV file (streamed) or a JSON file (written at the end)."""

    def __init__(self, part: Path, csv_format: bool, fields: tuple[str, ...]):
        self.part, self.fields, self.rows = part, fields, []
        self.file = open(part, "w", newline="", encoding="utf-8") if csv_format else None  # noqa: SIM115
        if self.file is not None:
            self.csv = csv.DictWriter(self.file, fieldnames=fields)
            self.csv.writeheader()

    def add(self, row: dict) -> None:
        if self.file is not None:
            self.csv.writerow({k: "" if row.get(k) is None else row[k] for k in self.fields})
        else:
            self.rows.append({k: row.get(k) for k in self.fields})

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        else:
            self.part.write_text(json.dumps(self.rows, indent=1), encoding="utf-8")


def run_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from risc_tf.angles import match_angles
    from risc_tf.atomic import atomic_output
    from risc_tf.io import find_image_files
    from risc_tf.review import thumbnail, write_review_page
    from risc_tf.scans import ROW_FIELDS, predict_files, quarter_turns_to_undo

    inputs = [Path(p) for p in args.inputs]
    files = find_image_files(inputs, recursive=args.recursive)  # bad paths: exit 2 now
    _check_outputs(args, inputs)
    from risc_tf.pipeline import RISCPipeline

    pipe = RISCPipeline.load(args.pipeline)
    if args.min_rotation_confidence is not None:
        pipe.min_rotation_confidence = args.min_rotation_confidence
    if args.min_class_probability is not None:
        pipe.min_class_probability = args.min_class_probability
    bar = None
    if not args.quiet:
        import keras

        bar = keras.utils.Progbar(len(files), unit_name="file")
    counts = {"ok": 0, "review": 0, "unreadable": 0}
    rotated, flagged, copies, report_rows, thumbs, reasons = 0, 0, 0, [], {}, []
    written: set[Path] = set()  # upright copies of this run: never overwritten by a later one
    root = _common_root(inputs)
    with atomic_output(args.output) as part:  # nothing half-written, whatever happens
        rows = _Rows(part, Path(args.output).suffix.lower() == ".csv", ROW_FIELDS)
        try:
            for result in predict_files(pipe, inputs, args.recursive, args.batch_size):
                row = result.row
                counts[row["status"]] += 1
                turns = None if row["status"] == "unreadable" else \
                    quarter_turns_to_undo(row["rotation"])
                is_rotated = row["status"] != "unreadable" and \
                    match_angles(row["rotation"], (0.0,)) < 0
                if row["status"] == "unreadable":
                    reasons.append(f"{row['path']}: {row['reason']}")
                elif is_rotated:
                    rotated += 1
                    if args.fix_orientation and turns:
                        copies += _upright_copy(result, turns, args, root, written, row)
                rows.add(row)
                if args.report:
                    report_rows.append(row)
                    to_show = row["status"] == "review" or is_rotated
                    flagged += to_show
                    if to_show and len(thumbs) < REPORT_LIMIT:
                        upright = None if turns is None else np.rot90(result.image, turns)
                        thumbs[row["path"]] = (thumbnail(result.image),
                                               None if upright is None else thumbnail(upright))
                if bar is not None:
                    bar.add(1)
        finally:
            rows.close()
        if counts["ok"] + counts["review"] == 0:
            raise ValueError(f"none of the {len(files)} files could be read (first: "
                             f"{reasons[0] if reasons else 'none'}); nothing was written")
    if args.report:
        title = f"risc_tf predictions: {len(report_rows)} files"
        if flagged > len(thumbs):
            title += f" (previews of the first {len(thumbs)} of {flagged} flagged)"
        write_review_page(report_rows, args.report, title=title, thumbnails=thumbs)
    print(f"{len(files)} files: {counts['ok']} ok, {counts['review']} to review, "
          f"{counts['unreadable']} unreadable; {rotated} found rotated"
          + (f", {copies} upright copies in {args.fix_orientation}" if args.fix_orientation
             else ""))
    for line in reasons[:10]:
        print(f"  unreadable: {line}")
    if len(reasons) > 10:
        print(f"  ... and {len(reasons) - 10} more (see {args.output})")
    print(f"written: {args.output}" + (f", {args.report}" if args.report else ""))
    return 0


def _common_root(inputs: list[Path]) -> Path:
    """The folder the upright copies keep their paths relative to: the inputs' common folder."""
    folders = [p.resolve() if p.is_dir() else p.resolve().parent for p in inputs]
    return Path(os.path.commonpath(folders))


def _upright_copy(result, turns: int, args, root: Path, written: set, row: dict) -> int:
    """Write one upright copy; a problem becomes part of the row's reason, never an error."""
    from risc_tf.io import write_upright_copy

    target = Path(args.fix_orientation).resolve() / Path(result.record.path).resolve() \
        .relative_to(root)
    try:
        if target in written:
            raise FileExistsError(f"{target} was written for another file of this run")
        copy = write_upright_copy(result.record, turns, args.fix_orientation, relative_to=root,
                                  overwrite=args.overwrite)
    except (OSError, ValueError) as err:
        row["reason"] = "; ".join(filter(None, [row["reason"], f"no upright copy: {err}"]))
        return 0
    written.add(Path(copy).resolve())
    row["upright_copy"] = str(copy)
    return 1


def add_parser(subparsers) -> None:
    """Register ``predict``."""
    p = subparsers.add_parser(
        "predict", help="run a saved pipeline on your own image files (PNG, JPEG, TIFF, DICOM)",
        description="Run a saved pipeline on your own image files (PNG, JPEG, BMP, GIF, TIFF, "
                    "DICOM): one row per file in a CSV or JSON file (path, class, class "
                    "probability, predicted rotation, rotation confidence, status ok / review "
                    "/ unreadable), optional upright copies and a review page. Files are "
                    "streamed; an unreadable file becomes a row. Exit code 0 when at least one "
                    "file was read, otherwise 2 with the reason.",
        epilog="example: risc-tf predict --pipeline runs/pneumonia scans/ --output "
               "predictions.csv --fix-orientation upright/ --report review.html")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    p.add_argument("--pipeline", required=True, metavar="DIR",
                   help="a saved RISCPipeline folder, or a risc-tf reproduce run folder")
    p.add_argument("--output", required=True, metavar="FILE",
                   help="predictions file: .csv or .json")
    p.add_argument("--recursive", action="store_true", help="also read subfolders")
    p.add_argument("--fix-orientation", metavar="OUTDIR",
                   help="write upright copies of the rotated files here (lossless quarter "
                        "turns, same format; JPEG re-encoded with its own tables; never "
                        "inside the inputs)")
    p.add_argument("--report", metavar="FILE.html",
                   help="a static review page: original beside corrected for every image "
                        "flagged for review or found rotated")
    p.add_argument("--min-rotation-confidence", type=probability, metavar="P",
                   help="mark images whose rotation confidence is below P for review "
                        "(default: the pipeline's)")
    p.add_argument("--min-class-probability", type=probability, metavar="P",
                   help="mark images whose class probability is below P for review")
    p.add_argument("--batch-size", type=positive_int, default=64, metavar="N",
                   help="images read before each model call (default 64)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing output files and copies")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_predict)
