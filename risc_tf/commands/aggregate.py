"""``risc-tf aggregate``: statistics over runs of one experiment made separately."""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def run_aggregate(args: argparse.Namespace) -> int:
    from risc_tf.experiments.aggregation import aggregate

    result = aggregate(args.runs, args.output, overwrite=args.overwrite)
    print(result.verdict)
    print(f"report: {args.output}/results.md")
    return 0


def add_parser(subparsers) -> None:
    """Register ``aggregate``."""
    p = subparsers.add_parser(
        "aggregate", help="mean +- std, bootstrap intervals and paired tests over seeds",
        description="Aggregate finished risc-tf reproduce runs of one experiment (same "
                    "dataset, angle sets, protocol, recipe; different seeds): per method the "
                    "mean +- std over seeds and a 95 % bootstrap interval of the rotated-test "
                    "accuracy, AUC, the sweep over the circle, the RotNet, and exact McNemar "
                    "tests of RISC against each baseline with a verdict. Writes "
                    "OUTPUT/results.json, results.md and accuracy_intervals.png.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="reproduce run folders")
    p.add_argument("--output", required=True, metavar="DIR", help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier aggregate")
    p.set_defaults(func=run_aggregate, needs_tensorflow=False)
