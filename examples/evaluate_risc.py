"""Stages 3-5: evaluate RISC (and baselines) on a randomly rotated PneumoniaMNIST test set.

    python examples/train_rotnet.py --data-root ../shared/data/medmnist --backbone small
    python examples/train_classifier.py --data-root ../shared/data/medmnist --backbone small
    python examples/evaluate_risc.py --data-root ../shared/data/medmnist

Reads ``rotnet.keras`` and ``classifier.keras`` (written by the two scripts
above) from the current folder, or the files given with --rotnet/--classifier.
"""

from __future__ import annotations

import argparse

import risc_tf
from risc_tf.evaluation import build_methods, evaluate_models, evaluation_sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None,
                        help="folder holding pneumoniamnist.npz (default: $RISC_TF_DATA)")
    parser.add_argument("--rotnet", default="rotnet.keras")
    parser.add_argument("--classifier", default="classifier.keras")
    parser.add_argument("--subset", type=int, default=None,
                        help="evaluate at most N test images (quick runs)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the rotated test set")
    args = parser.parse_args()

    rotnet = risc_tf.load_model(args.rotnet)  # the RotNet's angle set comes back with it
    classifier = risc_tf.load_model(args.classifier)
    angles = risc_tf.rotnet_angles(rotnet)
    size = risc_tf.model_image_size(rotnet)
    x, y = risc_tf.load_splits("pneumoniamnist", args.data_root, subset=args.subset,
                               seed=args.seed, splits=("test",))["test"]

    # The RISC chain itself: predict the rotation, counter-rotate, classify.
    names = list(risc_tf.dataset_info("pneumoniamnist")["label"].values())
    pipe = risc_tf.RISCPipeline(rotnet, classifier, mode="hard", class_names=names)
    rotated, labels, true_angles = risc_tf.rotated_test_arrays(x, y, angles, image_size=size,
                                                               seed=args.seed)
    print(f"RISC (hard) accuracy on the rotated test set ({len(x)} images): "
          f"{pipe.score(rotated, labels):.3f}")

    # Every method (classifier alone, TTA, RISC hard/soft) on the upright and rotated sets.
    sets = evaluation_sets(x, y, angles, image_size=size, seed=args.seed)
    results = evaluate_models(build_methods(rotnet, classifier), rotnet, sets)
    print(f"RotNet accuracy on the rotated test set: {results['rotnet']['acc']:.3f}")
    for method, m in results["rotated"].items():
        per_angle = {a: round(v, 3) for a, v in m["per_angle_acc"].items()}
        print(f"{method:>10}: upright ACC {results['upright'][method]['acc']:.3f}  "
              f"rotated ACC {m['acc']:.3f}  AUC {m['auc']:.3f}  per angle {per_angle}")


if __name__ == "__main__":
    main()
