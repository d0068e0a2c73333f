"""Stages 3-5: evaluate RISC (and baselines) on a randomly rotated PneumoniaMNIST test set.

    python examples/train_rotnet.py --data-root ../shared/data/medmnist --backbone small
    python examples/train_classifier.py --data-root ../shared/data/medmnist --backbone small
    python examples/evaluate_risc.py --data-root ../shared/data/medmnist

Reads ``rotnet.keras`` and ``classifier.keras`` from the current folder.
"""

import argparse

import keras

import risc_tf
from risc_tf.evaluation import build_methods, evaluate_models, evaluation_sets

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data-root", default=None, help="folder holding pneumoniamnist.npz")
parser.add_argument("--rotnet", default="rotnet.keras")
parser.add_argument("--classifier", default="classifier.keras")
args = parser.parse_args()

rotnet = keras.models.load_model(args.rotnet)
classifier = keras.models.load_model(args.classifier)
angles = risc_tf.rotnet_angles(rotnet)
x, y = risc_tf.load_medmnist("pneumoniamnist", "test", root=args.data_root)

# The RISC chain itself: predict the rotation, counter-rotate, classify.
pipe = risc_tf.RISCPipeline(rotnet, classifier, mode="hard")
rotated, labels, true_angles = risc_tf.rotated_test_arrays(x, y, angles, seed=0)
print("RISC accuracy on the rotated test set:", pipe.score(rotated.clip(0, 1), labels))

# All methods (classifier alone, TTA, RISC hard/soft) on the upright and rotated sets.
sets = evaluation_sets(x, y, angles, seed=0)
results = evaluate_models(build_methods(rotnet, classifier, angles), rotnet, sets, angles)
print(f"RotNet accuracy on the rotated test set: {results['rotnet']['rotated_test_acc']:.3f}")
for method, m in results["rotated"].items():
    print(f"{method:>12}: rotated ACC {m['acc']:.3f}  AUC {m['auc']:.3f}  "
          f"per angle {m['per_angle_acc']}")
