"""``risc-tf reproduce``: the paper's stages 1-5 with baselines and the full report."""

from __future__ import annotations

import argparse

from risc_tf.commands._common import (
    add_common,
    angle_step,
    data_errors,
    positive_int,
    resolve_angles,
)
from risc_tf.reproduce import ReproduceConfig, reproduce

__all__ = ["add_parser"]


def run_reproduce(args: argparse.Namespace) -> int:
    config = ReproduceConfig(
        dataset=args.dataset, output=args.output, data_root=args.data_root, size=args.size,
        input_size=args.input_size, backbone=args.backbone, weights=args.weights,
        angles=resolve_angles(args), epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, patience=args.patience or None, seed=args.seed,
        subset=args.subset, sweep_step=args.sweep_step, timing_samples=args.timing_samples,
        download=args.download, verify=args.verify, overwrite=args.overwrite,
        verbose=0 if args.quiet else 1,
    )
    with data_errors():
        results = reproduce(config)
    print(results["summary"]["verdict"])
    print(f"report: {args.output}/results.md")
    return 0


def add_parser(subparsers) -> None:
    """Register ``reproduce``."""
    p = subparsers.add_parser(
        "reproduce", help="run stages 1-5 with baselines and write Table 1, Table 2 and plots",
        description="Train the RotNet, the upright classifier and the rotation-augmented "
                    "baseline; evaluate every method (classifier, TTA, RISC hard and soft) on "
                    "the upright and a randomly rotated test set, per angle and on a sweep of "
                    "angles; time inference; write results.json, results.md, PNG plots and "
                    "the saved pipeline into OUTPUT. OUTPUT must be new or empty, or hold an "
                    "earlier run that --overwrite replaces.",
        epilog="example: risc-tf reproduce --dataset pneumoniamnist "
               "--data-root ../shared/data/medmnist --output runs/pneumonia")
    add_common(p)
    p.add_argument("--sweep-step", type=angle_step, default=10.0, metavar="DEG",
                   help="step of the accuracy-versus-angle sweep (default 10)")
    p.add_argument("--timing-samples", type=positive_int, default=50, metavar="N",
                   help="images timed one at a time for Table 2 (default 50)")
    p.set_defaults(func=run_reproduce)
