"""Quickstart: RISC on real PneumoniaMNIST in a few CPU minutes.

Trains a small-backbone RotNet (self-supervised, rotations only) and an upright
classifier, builds the RISCPipeline, and prints accuracy on the upright test set,
on a randomly rotated test set (multiples of 90 degrees, seeded), and with RISC.

    python examples/quickstart.py --data-root ../shared/data/medmnist

``--output DIR`` also saves the pipeline there (``RISCPipeline.load(DIR)``,
``risc-tf predict --pipeline DIR``).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import risc_tf  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=None,
                        help="folder holding the dataset's .npz (default: $RISC_TF_DATA)")
    parser.add_argument("--dataset", default="pneumoniamnist")
    parser.add_argument("--backbone", default="small", help='"small" (fast) or e.g. "resnet50"')
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--subset", type=int, default=None,
                        help="use at most N images of each split (quick runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="save the pipeline into this folder")
    args = parser.parse_args()

    keras.utils.set_random_seed(args.seed)
    data = risc_tf.load_splits(args.dataset, args.data_root, subset=args.subset, seed=args.seed)
    (x, y), (xv, yv), (xt, yt) = data["train"], data["val"], data["test"]
    names = list(risc_tf.dataset_info(args.dataset)["label"].values())
    print(f"{args.dataset}: train {len(x)}, val {len(xv)}, test {len(xt)}, {len(names)} classes")

    start = time.perf_counter()
    rotnet = risc_tf.build_rotnet((32, 32, 3), backbone=args.backbone)  # angles 0, 90, 180, 270
    risc_tf.train_rotnet(rotnet, x, xv, epochs=args.epochs, seed=args.seed, verbose=2)
    classifier = risc_tf.build_classifier(len(names), (32, 32, 3), backbone=args.backbone)
    risc_tf.train_classifier(classifier, x, y, xv, yv, epochs=args.epochs, seed=args.seed,
                             verbose=2)
    print(f"training took {time.perf_counter() - start:.0f} s")

    size = risc_tf.model_image_size(classifier)
    xr, yr, true_angles = risc_tf.rotated_test_arrays(xt, yt, risc_tf.rotnet_angles(rotnet),
                                                      image_size=size, seed=args.seed)
    upright = classifier.predict(risc_tf.preprocess_images(xt, size), verbose=0).argmax(1)
    rotated = classifier.predict(xr, verbose=0).argmax(1)
    hard = risc_tf.RISCPipeline(rotnet, classifier, mode="hard", class_names=names)
    soft = risc_tf.RISCPipeline(rotnet, classifier, mode="soft", class_names=names)
    print(f"RotNet accuracy on the rotated test set: "
          f"{np.mean(hard.predict_rotation(xr) == true_angles):.3f}")
    print(f"upright test accuracy:        {np.mean(upright == yt):.3f}")
    print(f"rotated test accuracy:        {np.mean(rotated == yr):.3f}")
    print(f"RISC (hard) rotated accuracy: {hard.score(xr, yr):.3f}")
    print(f"RISC (soft) rotated accuracy: {soft.score(xr, yr):.3f}")
    if args.output:
        print(f"pipeline saved to {hard.save(args.output, overwrite=True)}")


if __name__ == "__main__":
    main()
