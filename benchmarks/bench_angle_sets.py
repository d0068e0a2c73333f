"""RISCPipeline prediction speed by angle set: hard and soft mode with 4 to 36 bins, and a
circular head (72 bins) in hard and angle mode.

The same ResNet50 RotNet + classifier pair (32x32, fast layers, untrained
weights: speed does not depend on them; one RotNet head per angle set) on
rotated PneumoniaMNIST test images, batch 256, alternating rounds, medians.
Hard mode classifies one counter-rotation per image whatever the number of
bins (quarter turns as reversals, other angles as a precomputed gather); soft
mode classifies every counter-rotation, so it costs about one classifier pass
per bin. Angle mode (a circular head) counter-rotates each image by its own
continuous estimate: a quarter turn and one bilinear resample with taps computed
in the graph (:func:`risc_tf.resample.resample_rotate`).

    TF_CPP_MIN_LOG_LEVEL=3 python -m benchmarks.bench_angle_sets
"""

from __future__ import annotations

import argparse

import keras

import risc_tf
from benchmarks._common import header, interleaved, report
from devdata import DATA_ROOT
from risc_tf.angles import angles_every


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--images", type=int, default=624)
    p.add_argument("--bins", default="4,8,12,24,36")
    p.add_argument("--circular", default="72", help="bins of circular heads ('' for none)")
    args = p.parse_args()
    header("RISCPipeline speed by angle set (ResNet50 pair, 32x32, batch 256)")
    x, y = risc_tf.load_medmnist("pneumoniamnist", "test", root=DATA_ROOT)
    x, y = x[: args.images], y[: args.images]
    keras.utils.set_random_seed(0)
    classifier = risc_tf.build_classifier(2)
    sides = {}
    for bins in (int(b) for b in args.bins.split(",")):
        angles = angles_every(360 / bins)
        rotnet = risc_tf.build_rotnet(angles=angles)
        rotated, _, _ = risc_tf.rotated_test_arrays(x, y, angles, image_size=32, seed=0)
        for mode in ("hard", "soft"):
            pipe = risc_tf.RISCPipeline(rotnet, classifier, mode=mode)
            pipe.predict_proba(rotated[:8])  # trace and build the tables before timing
            sides[f"{bins:2d} bins, {mode}"] = (lambda p=pipe, r=rotated: p.predict_proba(r))
    for bins in (int(b) for b in args.circular.split(",") if b):
        angles = angles_every(360 / bins)
        rotnet = risc_tf.build_rotnet(angles=angles, head="circular")
        rotated, _, _ = risc_tf.rotated_test_arrays(x, y, image_size=32, seed=0,
                                                    protocol="uniform")
        for mode in ("hard", "angle"):
            pipe = risc_tf.RISCPipeline(rotnet, classifier, mode=mode)
            pipe.predict_proba(rotated[:8])
            sides[f"{bins:2d} bins circular, {mode}"] = (
                lambda p=pipe, r=rotated: p.predict_proba(r))
    times = interleaved(sides, args.repeats)
    report(times, len(x), "img/s", next(iter(sides)))


if __name__ == "__main__":
    main()
