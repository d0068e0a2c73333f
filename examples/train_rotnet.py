"""Stage 1: train a RotNet to predict the rotation of unlabelled PneumoniaMNIST images.

    python examples/train_rotnet.py --data-root ../shared/data/medmnist --backbone small

Saves the RotNet as a plain Keras file, ``rotnet.keras`` (or --output), with its
angle set recorded inside (``risc_tf.load_model`` gives it back).
"""

from __future__ import annotations

import argparse

import risc_tf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None,
                        help="folder holding pneumoniamnist.npz (default: $RISC_TF_DATA)")
    parser.add_argument("--backbone", default="resnet50", help='"resnet50" (the paper) or "small"')
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--subset", type=int, default=None,
                        help="use at most N images of each split (quick runs)")
    parser.add_argument("--output", default="rotnet.keras", help="the .keras file to write")
    args = parser.parse_args()

    splits = risc_tf.load_splits("pneumoniamnist", args.data_root, subset=args.subset,
                                 splits=("train", "val"))
    train, val = splits["train"][0], splits["val"][0]  # labels are never used

    # The paper's angle set for PneumoniaMNIST: quarter turns.
    rotnet = risc_tf.build_rotnet((32, 32, 3), angles=(0, 90, 180, 270), backbone=args.backbone)
    history = risc_tf.train_rotnet(rotnet, train, val, epochs=args.epochs, seed=0, verbose=2)
    print("validation rotation accuracy per epoch:",
          [round(a, 3) for a in history.history["val_accuracy"]])
    risc_tf.save_model(rotnet, args.output)
    print(f"saved {args.output} (angles {risc_tf.rotnet_angles(rotnet)})")


if __name__ == "__main__":
    main()
