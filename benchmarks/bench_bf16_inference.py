"""Would bfloat16 speed up RISC inference? float32 vs bf16 copies of a trained pair.

Loads a trained pipeline (e.g. the one ``risc-tf reproduce`` saves), rebuilds
both models under Keras's ``mixed_bfloat16`` policy with the same weights, and
runs the hard-mode ``RISCPipeline`` of each on the same rotated test images, in
one process, alternating, ``--repeats`` rounds. Prints rates, their ratio, how
often the two pipelines agree and both accuracies. Exploratory: bf16 is not
a library option (see docs/performance.md). Run from the repository root, after
``risc-tf reproduce --dataset pneumoniamnist --backbone resnet50 --output
runs/pneumoniamnist-resnet50``::

    TF_CPP_MIN_LOG_LEVEL=3 python -m benchmarks.bench_bf16_inference \\
        --pipeline runs/pneumoniamnist-resnet50/models/risc_pipeline
"""

from __future__ import annotations

import argparse

import keras
import numpy as np

import risc_tf
from benchmarks._common import header, interleaved, report
from devdata import DATA_ROOT


def bf16_copy(model: keras.Model, build) -> keras.Model:
    """The same architecture and weights under the ``mixed_bfloat16`` policy."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        copy = build()
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights(model.get_weights())
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipeline", required=True, help="folder saved by RISCPipeline.save")
    parser.add_argument("--dataset", default="pneumoniamnist")
    parser.add_argument("--backbone", default="resnet50", help="the pipeline's backbone")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    header("RISCPipeline inference, float32 vs bfloat16 copies of a trained pair")

    images, labels = risc_tf.load_medmnist(args.dataset, "test", root=DATA_ROOT)
    f32 = risc_tf.RISCPipeline.load(args.pipeline)
    f32 = risc_tf.RISCPipeline(f32.rotnet, f32.classifier, mode="hard", fill=f32.fill)
    shape = (f32.image_size, f32.image_size, 3)
    x, y, _ = risc_tf.rotated_test_arrays(images, labels, f32.angles, image_size=f32.image_size,
                                          seed=0, fill=f32.fill)
    classes = int(f32.classifier.output_shape[-1])
    rotnet = bf16_copy(
        f32.rotnet, lambda: risc_tf.build_rotnet(shape, angles=f32.angles, backbone=args.backbone)
    )
    classifier = bf16_copy(
        f32.classifier, lambda: risc_tf.build_classifier(classes, shape, backbone=args.backbone)
    )
    b16 = risc_tf.RISCPipeline(rotnet, classifier, mode="hard", fill=f32.fill)

    p32, p16 = f32.predict_proba(x), b16.predict_proba(x)  # also traces both graphs
    truth = np.asarray(y).ravel()
    print(f"{len(x)} rotated {args.dataset} test images")
    print(f"  predictions agree: {np.mean(p32.argmax(1) == p16.argmax(1)):.4f}; "
          f"max |p32 - p16| {np.abs(p32 - p16).max():.4f}")
    print(f"  accuracy float32 {np.mean(p32.argmax(1) == truth):.4f}, "
          f"bfloat16 {np.mean(p16.argmax(1) == truth):.4f}")
    sides = {"float32 pipeline": lambda: f32.predict_proba(x),
             "mixed_bfloat16 pipeline": lambda: b16.predict_proba(x)}
    times = interleaved(sides, args.repeats)
    print(f"samples/s ({len(x)} images per run, {args.repeats} runs per side, interleaved):")
    report(times, len(x), "samples/s", "float32 pipeline")


if __name__ == "__main__":
    main()
