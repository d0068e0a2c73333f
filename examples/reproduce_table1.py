"""Reproduce one row of the paper's Table 1 (stages 1-5 with baselines) for one dataset.

    python examples/reproduce_table1.py --dataset pneumoniamnist \\
        --data-root ../shared/data/medmnist --backbone small --epochs 2 --output runs/example

The same as ``risc-tf reproduce``; writes results.json, results.md, plots and the
saved pipeline (``models/risc_pipeline``) into --output.
"""

from __future__ import annotations

import argparse

from risc_tf.experiments import ReproduceConfig, reproduce


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="pneumoniamnist")
    parser.add_argument("--data-root", default=None,
                        help="folder holding the dataset's .npz (default: $RISC_TF_DATA)")
    parser.add_argument("--backbone", default="resnet50", help='"resnet50" (the paper) or "small"')
    parser.add_argument("--recipe", default="paper", choices=("paper", "tuned"))
    parser.add_argument("--epochs", type=int, default=None,
                        help="most epochs of every model (default: the recipe's)")
    parser.add_argument("--subset", type=int, default=None,
                        help="use at most N images of each split (quick runs)")
    parser.add_argument("--output", default="runs/example")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run")
    args = parser.parse_args()

    results = reproduce(ReproduceConfig(
        dataset=args.dataset, output=args.output, data_root=args.data_root,
        backbone=args.backbone, recipe=args.recipe, epochs=args.epochs,
        rotnet_epochs=args.epochs, subset=args.subset, seed=0, overwrite=args.overwrite,
    ))
    for row in results.summary["table1"]["rows"]:  # a RunResults (risc_tf.experiments.results)
        paper = "-" if row["paper_acc"] is None else f"{row['paper_acc']:.2f}"
        print(f"{row['row']:<45} this run {row['acc']:.3f}   paper {paper}")
    print(results.summary["verdict"])


if __name__ == "__main__":
    main()
