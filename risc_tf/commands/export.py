"""``risc-tf export``: a saved pipeline as one SavedModel (TF Serving) or a LiteRT file."""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def run_export(args: argparse.Namespace) -> int:
    from risc_tf.pipeline import RISCPipeline

    pipe = RISCPipeline.load(args.pipeline)
    path = pipe.export(args.output, format=args.format, overwrite=args.overwrite)
    what = "SavedModel (signatures serving_default: float32, serving_uint8: uint8)" \
        if args.format == "tf_saved_model" else "LiteRT flat buffer (builtin ops only)"
    print(f"{what} written to {path}")
    return 0


def add_parser(subparsers) -> None:
    """Register ``export``."""
    p = subparsers.add_parser(
        "export", help="export a saved pipeline for serving (SavedModel or LiteRT)",
        description="Export the whole fused pipeline (input checks, resize, RotNet, "
                    "counter-rotation, classifier) as one TensorFlow SavedModel for "
                    "TensorFlow Serving, or as a LiteRT (.tflite) file; see docs/deploy.md.")
    p.add_argument("--pipeline", required=True, metavar="DIR",
                   help="a saved RISCPipeline folder, or a risc-tf reproduce run folder")
    p.add_argument("--format", choices=("tf_saved_model", "litert"), default="tf_saved_model",
                   help="tf_saved_model (default) or litert")
    p.add_argument("--output", required=True, metavar="PATH",
                   help="a new folder (SavedModel, e.g. serving/risc/1) or a .tflite file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing export")
    p.set_defaults(func=run_export)
