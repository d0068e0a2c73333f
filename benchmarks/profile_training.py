"""Where a ResNet50 32x32 training step spends its time, op type by op type.

Traces ``--steps`` steps of ``fit`` (after a warm-up) with TensorFlow's profiler
and sums the time of every TensorFlow op by type, read straight from the
profiler's XPlane file (no TensorBoard needed). Times are summed over all
threads, so they add up to more than the wall time on a multi-core machine.
Run from the repository root, with or without ``TF_ENABLE_ONEDNN_OPTS=0``::

    TF_CPP_MIN_LOG_LEVEL=3 python -m benchmarks.profile_training
    TF_CPP_MIN_LOG_LEVEL=3 python -m benchmarks.profile_training --stock
"""

from __future__ import annotations

import argparse
import collections
import glob
import tempfile
import time

import keras
import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2

import risc_tf
from benchmarks._common import header
from devdata import DATA_ROOT
from risc_tf.fast import FusedAdam


def op_times(logdir: str) -> collections.Counter:
    """Milliseconds per TensorFlow op type in the profiler's XPlane file."""
    path = sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))[-1]
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    totals: collections.Counter = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" in name and "/" in name:  # TF op events are "scope/op:OpType"
                    totals[name.rsplit(":", 1)[1]] += event.duration_ps / 1e9
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stock", action="store_true", help="stock layers and Keras Adam")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    side = "stock layers + Keras Adam" if args.stock else "fast layers + FusedAdam"
    header(f"op profile of ResNet50 32x32 training, {side}, batch {args.batch_size}")

    images, labels = risc_tf.load_medmnist("pneumoniamnist", "train", root=DATA_ROOT)
    n = args.batch_size * args.steps
    x, y = risc_tf.preprocess_images(images[:n]), labels[:n].astype("int64")
    keras.utils.set_random_seed(0)
    model = risc_tf.build_classifier(2, backbone="resnet50", fast_conv=not args.stock)
    optimizer = keras.optimizers.Adam(1e-3) if args.stock else FusedAdam(1e-3)
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy())
    fit = lambda: model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)  # noqa: E731
    fit()  # trace and warm up
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        fit()
        wall = time.perf_counter() - start
        tf.profiler.experimental.stop()
        totals = op_times(logdir)
    if not totals:
        raise SystemExit("the profile recorded no TensorFlow ops (profiler unavailable?)")
    per_step = {k: v / args.steps for k, v in totals.items()}
    print(f"wall {1e3 * wall / args.steps:.0f} ms per step under the profiler; "
          f"op time summed over threads {sum(per_step.values()):.0f} ms per step")
    for name, ms in sorted(per_step.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"  {ms:7.1f} ms  {name}")
    rest = sorted(per_step.values(), reverse=True)[args.top:]
    print(f"  {sum(rest):7.1f} ms  ({len(rest)} other op types)")


if __name__ == "__main__":
    main()
