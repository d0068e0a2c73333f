"""Reproduce one row of the paper's Table 1 (stages 1-5 with baselines) for one dataset.

    python examples/reproduce_table1.py --dataset pneumoniamnist \
        --data-root ../shared/data/medmnist --backbone small --epochs 2 --output runs/example

The same as ``risc-tf reproduce``; writes results.json, results.md and plots into --output.
"""

import argparse

from risc_tf.reproduce import ReproduceConfig, reproduce

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--dataset", default="pneumoniamnist")
parser.add_argument("--data-root", default=None)
parser.add_argument("--backbone", default="resnet50")
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--subset", type=int, default=None)
parser.add_argument("--output", default="runs/example")
args = parser.parse_args()

results = reproduce(ReproduceConfig(
    dataset=args.dataset, output=args.output, data_root=args.data_root,
    backbone=args.backbone, epochs=args.epochs, subset=args.subset, seed=0,
))
for row in results["summary"]["table1"]["rows"]:
    paper = "-" if row["paper_acc"] is None else f"{row['paper_acc']:.2f}"
    print(f"{row['row']:<45} this run {row['acc']:.3f}   paper {paper}")
print(results["summary"]["verdict"])
