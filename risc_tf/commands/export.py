"""``risc-tf export``: a saved pipeline as one SavedModel (TF Serving), a LiteRT or an ONNX file."""

from __future__ import annotations

import argparse
import contextlib
import re

__all__ = ["add_parser"]

#: --format choices (risc_tf.export.FORMATS, spelled out: parsers import nothing heavy).
FORMATS = ("tf_saved_model", "litert", "onnx")

_WRITTEN = {
    "tf_saved_model": "SavedModel (signatures serving_default: float32, serving_uint8: uint8)",
    "litert": "LiteRT flat buffer (builtin ops only)",
    "onnx": "ONNX model (opset 18; input images: float32 (N, H, W, C) in [0, 1])",
}


@contextlib.contextmanager
def _as_flags():
    """The library's argument names (path, format=..., overwrite=True) as this command's flags."""
    try:
        yield
    except (ValueError, FileExistsError, ImportError) as err:
        text = re.sub(r"^path\b", "--output", str(err))
        text = text.replace("choose a new path", "choose a new --output")
        text = text.replace("overwrite=True", "--overwrite")
        text = re.sub(r"format='(\w+)'", r"--format \1", text)
        raise type(err)(text) from None


def run_export(args: argparse.Namespace) -> int:
    from risc_tf.export import check_export_path
    from risc_tf.pipeline import RISCPipeline

    with _as_flags():  # before loading anything
        check_export_path(args.output, format=args.format, overwrite=args.overwrite)
    pipe = RISCPipeline.load(args.pipeline)
    path = pipe.export(args.output, format=args.format, overwrite=args.overwrite)
    print(f"{_WRITTEN[args.format]} written to {path}")
    return 0


def add_parser(subparsers) -> None:
    """Register ``export``."""
    p = subparsers.add_parser(
        "export", help="export a saved pipeline for serving (SavedModel, LiteRT or ONNX)",
        description="Export the whole fused pipeline (input checks, resize, RotNet, "
                    "counter-rotation, classifier) as one TensorFlow SavedModel for "
                    "TensorFlow Serving, as a LiteRT (.tflite) file, or as an ONNX file for "
                    "onnxruntime (needs pip install \"risc_tf[onnx]\"); see docs/deploy.md.")
    p.add_argument("--pipeline", required=True, metavar="DIR",
                   help="a saved RISCPipeline folder, or a risc-tf reproduce run folder")
    p.add_argument("--format", choices=FORMATS, default="tf_saved_model",
                   help="tf_saved_model (default), litert or onnx")
    p.add_argument("--output", required=True, metavar="PATH",
                   help="a new folder (SavedModel, e.g. serving/risc/1), .tflite or .onnx file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing export")
    p.set_defaults(func=run_export)
