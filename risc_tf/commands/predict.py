"""``risc-tf predict``: a saved pipeline on a user's own image files, to a CSV or JSON file.

Parses the options, calls :func:`risc_tf.prediction_run.plan_predictions`
(every output checked, no model loaded) and
:func:`risc_tf.prediction_run.run_predictions`, and prints the summary. The
decisions (status, reasons, rotation, copies) are the library's
(:mod:`risc_tf.decisions`); every path printed is escaped as in the
predictions file (:func:`risc_tf.imagefiles.escape_text`).
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from risc_tf.commands._common import positive_int, probability

__all__ = ["add_parser", "cli_errors", "echo", "without_graph_rewrites"]

#: Library argument names -> the flags that set them, for error messages.
FLAGS = {"output": "--output", "report": "--report", "fix_orientation": "--fix-orientation",
         "shard record": "--output (shard record)", "max_tilt": "--max-tilt",
         "batch_size": "--batch-size"}


@contextlib.contextmanager
def cli_errors():
    """Say the command-line flag where a library error names its argument."""
    try:
        yield
    except (ValueError, OSError) as err:
        text = str(err).replace("pass overwrite=True", "pass --overwrite")
        for name, flag in FLAGS.items():
            if text.startswith(name + " "):
                text = flag + text[len(name):]
                break
        if text == str(err):
            raise
        if isinstance(err, OSError):
            raise type(err)(text) from None
        raise ValueError(text) from None


def echo(text: str = "") -> None:
    """Print one line: file-name bytes that are not UTF-8 as ``\\xHH``, and anything the
    output's encoding cannot hold backslash-escaped (never an encoding error)."""
    from risc_tf.imagefiles import escape_text

    stream = sys.stdout
    encoding = getattr(stream, "encoding", None) or "utf-8"
    text = escape_text(text).encode(encoding, "backslashreplace").decode(encoding)
    print(text, file=stream)


def shard_arg(text: str):
    """argparse type: ``K/N`` (K from 0)."""
    from risc_tf.shards import parse_shard

    try:
        return parse_shard(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).replace("shard K/N", "K/N")) from None


def tilt_arg(text: str) -> float:
    """argparse type: degrees > 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 180:
        raise argparse.ArgumentTypeError(f"must be degrees in (0, 180); got {text!r}")
    return value


def without_graph_rewrites() -> None:
    """Turn off TensorFlow's Grappler graph rewrites in this process (the command's own).

    ``predict`` traces one graph and runs it batch after batch, and Grappler rewrites
    it once, before the first batch: without the rewrites the whole command took
    1.5 s a round less on the 2-vCPU AVX-512 machine (docs/deploy.md, "Throughput:
    where it stands"). A process-wide setting, so the command sets it, not the
    library.
    """
    import tensorflow as tf

    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def run_predict(args: argparse.Namespace) -> int:
    from risc_tf.imagefiles import display_path
    from risc_tf.prediction_run import plan_predictions, run_predictions

    with cli_errors():  # bad outputs and inputs: exit 2 before any model or image is loaded
        plan = plan_predictions(args.inputs, args.output, recursive=args.recursive,
                                report=args.report, fix_orientation=args.fix_orientation,
                                overwrite=args.overwrite, shard=args.shard,
                                batch_size=args.batch_size)
    from risc_tf.pipeline import RISCPipeline

    without_graph_rewrites()
    # inference only: BatchNorm folded into the convolutions, same answers within rounding
    pipe = RISCPipeline.load(args.pipeline, fold_batchnorm=True)
    if args.min_rotation_confidence is not None:
        pipe.min_rotation_confidence = args.min_rotation_confidence
    if args.min_class_probability is not None:
        pipe.min_class_probability = args.min_class_probability
    bar = None
    if not args.quiet:
        from risc_tf.progress import Progress

        bar = Progress(len(plan.files), stream=sys.stderr)
    with cli_errors():
        summary = run_predictions(pipe, plan, straighten=args.straighten,
                                  max_tilt=args.max_tilt,
                                  on_file=None if bar is None else (lambda _: bar.add(1)))
    if bar is not None:
        bar.close()
    recovered = summary.recovered
    if recovered["removed"] or recovered["finished"]:
        echo(f"cleaned up after interrupted runs: removed the temporary files of "
             f"{recovered['removed']}, finished putting in place the outputs of "
             f"{recovered['finished']}")
    counts, copies = summary.counts, summary.copies
    line = (f"{summary.files} files" + (f" (shard {plan.shard})" if plan.shard else "") +
            f": {counts['ok']} ok, {counts['review']} to review, {counts['unreadable']} "
            f"unreadable; {summary.rotated} found rotated")
    if plan.fix_orientation is not None:
        line += (f", {copies['exact']} exact upright copies" +
                 (f" and {copies['straightened']} straightened (resampled) copies"
                  if args.straighten else "") + f" in {display_path(plan.fix_orientation)}")
        if summary.no_copy:
            line += f" ({summary.no_copy} could not be written: see the reason column)"
    echo(line)
    for path, reason in summary.unreadable:
        echo(f"  unreadable: {path}: {reason}")
    if counts["unreadable"] > len(summary.unreadable):
        echo(f"  ... and {counts['unreadable'] - len(summary.unreadable)} more (see "
             f"{display_path(plan.output)})")
    echo("written: " + ", ".join(display_path(p) for p in summary.written))
    return 0


def add_parser(subparsers) -> None:
    """Register ``predict``."""
    from risc_tf.decisions import DEFAULT_MAX_TILT

    p = subparsers.add_parser(
        "predict", help="run a saved pipeline on your own image files (PNG, JPEG, TIFF, DICOM)",
        description="Run a saved pipeline on your own image files (PNG, JPEG, BMP, GIF, TIFF, "
                    "DICOM): one row per file in a CSV or JSON file (path, status ok / review "
                    "/ unreadable with the reasons, class, class probability, predicted and "
                    "estimated rotation, rotation confidence, upright copy), optional upright "
                    "copies and a review page. Files are streamed; an unreadable file becomes "
                    "a row. Outputs appear together at the end (a killed run leaves none; the "
                    "next run cleans up). Exit code 0 when at least one file was read, "
                    "otherwise 2 with the reason.",
        epilog="example: risc-tf predict --pipeline runs/pneumonia scans/ --output "
               "predictions.csv --fix-orientation upright/ --report review.html")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    p.add_argument("--pipeline", required=True, metavar="DIR",
                   help="a saved RISCPipeline folder, or a risc-tf reproduce run folder")
    p.add_argument("--output", required=True, metavar="FILE",
                   help="predictions file: .csv or .json (its folder must exist)")
    p.add_argument("--recursive", action="store_true", help="also read subfolders")
    p.add_argument("--fix-orientation", metavar="OUTDIR",
                   help="write upright copies of the files found rotated here: exact "
                        "(lossless) quarter turns when the rotation is a confident quarter "
                        "turn, same format; never inside the inputs")
    p.add_argument("--straighten", action="store_true",
                   help="also write resampled copies (interpolated, on an expanded canvas) of "
                        "files turned by other angles; without it such files get status "
                        "review and no copy")
    p.add_argument("--max-tilt", type=tilt_arg, metavar="DEG",
                   help="degrees between the RotNet's refined angle estimate and its predicted "
                        "angle (a quarter turn for a circular head) beyond which a file is "
                        "turned off the pipeline's angle set (status review; default: the "
                        f"pipeline's, else {DEFAULT_MAX_TILT:g} or a third of the set's "
                        "smallest gap if less)")
    p.add_argument("--report", metavar="FILE.html",
                   help="a static review page: original beside corrected for every image "
                        "to review or found rotated")
    p.add_argument("--min-rotation-confidence", type=probability, metavar="P",
                   help="mark images whose rotation confidence is below P for review "
                        "(default: the pipeline's)")
    p.add_argument("--min-class-probability", type=probability, metavar="P",
                   help="mark images whose class probability is below P for review "
                        "(default: the pipeline's)")
    p.add_argument("--shard", type=shard_arg, metavar="K/N",
                   help="run on block K of N of the sorted file list (K from 0 to N-1, e.g. "
                        "$JOB_COMPLETION_INDEX/N); join the shards with risc-tf merge")
    p.add_argument("--batch-size", type=positive_int, default=256, metavar="N",
                   help="files read before each model call, at most (default 256; fewer "
                        "when their pixels pass 256 MiB); shards are made of whole batches")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing output files and copies")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run_predict)
