"""Stage 2: train a classifier on upright PneumoniaMNIST images.

    python examples/train_classifier.py --data-root ../shared/data/medmnist --backbone small

Saves ``classifier.keras`` (or --out) and prints the upright test ACC and AUC.
Pass --rotation-augment to train the rotation-augmented baseline instead.
"""

import argparse

import risc_tf
from risc_tf.evaluation import classification_metrics, model_proba

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data-root", default=None, help="folder holding pneumoniamnist.npz")
parser.add_argument("--backbone", default="resnet50")
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--rotation-augment", action="store_true")
parser.add_argument("--out", default="classifier.keras")
args = parser.parse_args()

data = {s: risc_tf.load_medmnist("pneumoniamnist", s, root=args.data_root)
        for s in ("train", "val", "test")}
num_classes = len(risc_tf.dataset_info("pneumoniamnist")["label"])

clf = risc_tf.build_classifier(num_classes, backbone=args.backbone)
augment = (0, 90, 180, 270) if args.rotation_augment else None
risc_tf.train_classifier(clf, *data["train"], *data["val"], augment_angles=augment,
                         epochs=args.epochs, seed=0)
clf.save(args.out)

x_test, y_test = data["test"]
metrics = classification_metrics(y_test, model_proba(clf)(risc_tf.preprocess_images(x_test)))
print(f"saved {args.out}; upright test ACC {metrics['acc']:.3f}, AUC {metrics['auc']:.3f}")
