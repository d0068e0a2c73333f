"""What the trust settings cost at prediction time: ``predict_details`` against ``predict_proba``.

``predict_proba`` runs the RotNet and the classifier once per image. ``predict_details``
(what ``risc-tf predict`` calls) also reads the rotation, its confidence and, with an
out-of-distribution detector, the Mahalanobis score of the classifier's penultimate
features of the corrected image. Both run on the same ResNet50 pair (32x32, untrained
weights: speed does not depend on them) with a detector fitted on the features of 512
PneumoniaMNIST training images, on rotated test images, batch 256, alternating rounds,
medians. A third side is ``predict_details`` of the same pipeline without a detector.

When the features are read from the classifier pass that gives the probabilities,
``predict_details`` costs about what ``predict_proba`` does; a second classifier pass for
the features would make it about 1.5 times slower (three ResNet50 passes, not two).

Run from the repository root, nothing else running::

    TF_CPP_MIN_LOG_LEVEL=3 python -m benchmarks.bench_details
    python -m benchmarks.bench_details --pipeline runs/pneumonia   # a saved pipeline
"""

from __future__ import annotations

import argparse

import keras

import risc_tf
from benchmarks._common import header, interleaved, report
from devdata import DATA_ROOT


def untrained_pipeline(data_root: str) -> risc_tf.RISCPipeline:
    """A ResNet50 pair with an out-of-distribution detector fitted on training images."""
    from risc_tf.ood_layers import fit_ood_detector

    keras.utils.set_random_seed(0)
    rotnet, classifier = risc_tf.build_rotnet(), risc_tf.build_classifier(2)
    x, y = risc_tf.load_medmnist("pneumoniamnist", "train", root=data_root)
    xv, _ = risc_tf.load_medmnist("pneumoniamnist", "val", root=data_root)
    ood = fit_ood_detector(classifier, risc_tf.preprocess_images(x[:512], 32), y[:512],
                           risc_tf.preprocess_images(xv[:256], 32), shrinkage=0.1)
    return risc_tf.RISCPipeline(rotnet, classifier, ood=ood)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pipeline", help="a saved pipeline with a detector (default: untrained "
                                      "ResNet50 pair, detector fitted here)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--images", type=int, default=1024)
    p.add_argument("--data-root", default=DATA_ROOT)
    args = p.parse_args()
    header("predict_details (with the out-of-distribution score) against predict_proba")
    pipe = risc_tf.RISCPipeline.load(args.pipeline) if args.pipeline else \
        untrained_pipeline(args.data_root)
    if pipe.ood is None:
        raise SystemExit(f"{args.pipeline}: the pipeline has no out-of-distribution detector")
    bare = risc_tf.RISCPipeline.from_config(pipe.get_config(), pipe.rotnet, pipe.classifier)
    x, y = risc_tf.load_medmnist("pneumoniamnist", "test", root=args.data_root)
    rotated, _, _ = risc_tf.rotated_test_arrays(x[: args.images], y[: args.images],
                                                (0, 90, 180, 270), image_size=pipe.image_size,
                                                seed=0)
    for fn in (pipe.predict_proba, pipe.predict_details, bare.predict_details):
        fn(rotated[:8])  # trace before timing
    sides = {"predict_proba": lambda: pipe.predict_proba(rotated),
             "predict_details, detector": lambda: pipe.predict_details(rotated),
             "predict_details, no detector": lambda: bare.predict_details(rotated)}
    report(interleaved(sides, args.repeats), len(rotated), "img/s", "predict_proba")


if __name__ == "__main__":
    main()
