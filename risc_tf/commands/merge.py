"""``risc-tf merge``: join the predictions files of the shards of one ``predict`` run."""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def run_merge(args: argparse.Namespace) -> int:
    from risc_tf.commands.predict import cli_errors, echo
    from risc_tf.imagefiles import display_path
    from risc_tf.shards import merge_predictions

    with cli_errors():
        summary = merge_predictions(args.shards, args.output, overwrite=args.overwrite)
    counts, copies = summary["counts"], summary["copies"]
    echo(f"{len(args.shards)} shards, {summary['files']} files: {counts['ok']} ok, "
         f"{counts['review']} to review, {counts['unreadable']} unreadable; "
         f"{summary['rotated']} found rotated, {copies['exact']} exact upright copies, "
         f"{copies['straightened']} straightened copies")
    echo(f"written: {display_path(args.output)}")
    return 0


def add_parser(subparsers) -> None:
    """Register ``merge``."""
    p = subparsers.add_parser(
        "merge", help="join the predictions files of the shards of a predict run",
        description="Join the predictions files written by 'risc-tf predict --shard K/N' "
                    "(each with its .shard.json record) into one file with the rows of one "
                    "run over the whole list, in order. Refused, before anything is written: "
                    "a missing shard, the same shard twice, shards of different pipelines, "
                    "settings or file lists, an incomplete file.",
        epilog="example: risc-tf merge preds/shard-*.csv --output predictions.csv")
    p.add_argument("shards", nargs="+", metavar="SHARD", help="the shards' predictions files")
    p.add_argument("--output", required=True, metavar="FILE",
                   help="merged predictions file: .csv or .json")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=run_merge, needs_tensorflow=False)
