"""Stage 2: train a classifier on upright PneumoniaMNIST images.

    python examples/train_classifier.py --data-root ../shared/data/medmnist --backbone small

Saves ``classifier.keras`` (or --output) and prints the upright test ACC and AUC.
``--rotation-augment`` trains the rotation-augmented baseline instead;
``--init-from rotnet.keras`` starts from a trained RotNet's backbone
(self-supervised initialisation; same backbone and input size).
"""

from __future__ import annotations

import argparse

import risc_tf
from risc_tf.evaluation import model_proba
from risc_tf.metrics import classification_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None,
                        help="folder holding pneumoniamnist.npz (default: $RISC_TF_DATA)")
    parser.add_argument("--backbone", default="resnet50", help='"resnet50" (the paper) or "small"')
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--subset", type=int, default=None,
                        help="use at most N images of each split (quick runs)")
    parser.add_argument("--rotation-augment", action="store_true",
                        help="rotate each training image by a random quarter turn (baseline)")
    parser.add_argument("--init-from", metavar="ROTNET.keras",
                        help="initialise the backbone from this trained RotNet")
    parser.add_argument("--output", default="classifier.keras", help="the .keras file to write")
    args = parser.parse_args()

    data = risc_tf.load_splits("pneumoniamnist", args.data_root, subset=args.subset)
    num_classes = len(risc_tf.dataset_info("pneumoniamnist")["label"])

    weights = risc_tf.load_model(args.init_from) if args.init_from else None
    clf = risc_tf.build_classifier(num_classes, (32, 32, 3), backbone=args.backbone,
                                   weights=weights)
    augment = (0, 90, 180, 270) if args.rotation_augment else None
    risc_tf.train_classifier(clf, *data["train"], *data["val"], augment_angles=augment,
                             epochs=args.epochs, seed=0, verbose=2)
    risc_tf.save_model(clf, args.output)

    x_test, y_test = data["test"]
    proba = model_proba(clf)(risc_tf.preprocess_images(x_test, risc_tf.model_image_size(clf)))
    metrics = classification_metrics(y_test, proba)
    print(f"saved {args.output}; upright test ACC {metrics['acc']:.3f}, AUC {metrics['auc']:.3f}")


if __name__ == "__main__":
    main()
