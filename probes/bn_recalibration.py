"""The BatchNorm trap: ResNet50 from scratch at 32x32, with and without BatchNorm re-estimation.

Trains the same model twice from the same initial weights on real PneumoniaMNIST, once with
``recalibrate_bn=False`` (Keras defaults: BatchNorm momentum 0.99) and once with the library's
default re-estimation, and prints the per-epoch validation accuracy of both.

    python -m probes.bn_recalibration --data-root ../shared/data/medmnist --model classifier
    python -m probes.bn_recalibration --data-root ../shared/data/medmnist --model rotnet

``--data-root`` defaults to ``$RISC_TF_DATA``, else ``../shared/data/medmnist``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import risc_tf  # noqa: E402
from devdata import DATA_ROOT  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=DATA_ROOT,
                        help=f"folder holding pneumoniamnist.npz (default {DATA_ROOT})")
    parser.add_argument("--model", choices=("classifier", "rotnet"), default="classifier")
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    x, y = risc_tf.load_medmnist("pneumoniamnist", "train", root=args.data_root)
    xv, yv = risc_tf.load_medmnist("pneumoniamnist", "val", root=args.data_root)
    rng = np.random.default_rng(args.seed)
    keep = rng.permutation(len(x))[: args.train_size]
    x, y = x[keep], y[keep]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"TF {tf.__version__}, Keras {keras.__version__}")
    print(f"{args.model} {args.backbone} from scratch, {len(x)} train images, {args.epochs} epochs,"
          f" batch 64, Adam 1e-3, seed {args.seed}; validation majority-class rate "
          f"{max(np.mean(yv), 1 - np.mean(yv)):.3f}")

    keras.utils.set_random_seed(args.seed)
    if args.model == "classifier":
        model = risc_tf.build_classifier(2, (32, 32, 3), backbone=args.backbone)
    else:
        model = risc_tf.build_rotnet((32, 32, 3), backbone=args.backbone)
    initial = model.get_weights()
    results = {}
    for recalibrate in (False, True):
        model.set_weights(initial)
        start = time.perf_counter()
        common = dict(epochs=args.epochs, seed=args.seed, patience=None, verbose=2,
                      recalibrate_bn=recalibrate)
        if args.model == "classifier":
            history = risc_tf.train_classifier(model, x, y, xv, yv, **common)
        else:
            history = risc_tf.train_rotnet(model, x, xv, **common)
        results[f"recalibrate_bn={recalibrate}"] = {
            "train_accuracy": [round(v, 3) for v in history.history["accuracy"]],
            "val_accuracy": [round(v, 3) for v in history.history["val_accuracy"]],
            "seconds": round(time.perf_counter() - start, 1),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
