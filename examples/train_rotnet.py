"""Stage 1: train a RotNet to predict the rotation of unlabelled PneumoniaMNIST images.

    python examples/train_rotnet.py --data-root ../shared/data/medmnist --backbone small

Saves the RotNet to ``rotnet.keras`` in the current folder (or --out).
"""

import argparse

import risc_tf

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data-root", default=None, help="folder holding pneumoniamnist.npz")
parser.add_argument("--backbone", default="resnet50")
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--out", default="rotnet.keras")
args = parser.parse_args()

train, _ = risc_tf.load_medmnist("pneumoniamnist", "train", root=args.data_root)
val, _ = risc_tf.load_medmnist("pneumoniamnist", "val", root=args.data_root)

# The paper's angle set for PneumoniaMNIST: quarter turns (labels are never used).
rotnet = risc_tf.build_rotnet(angles=(0, 90, 180, 270), backbone=args.backbone)
history = risc_tf.train_rotnet(rotnet, train, val, epochs=args.epochs, seed=0)
print("validation rotation accuracy per epoch:", history.history["val_accuracy"])
rotnet.save(args.out)
print("saved", args.out)
