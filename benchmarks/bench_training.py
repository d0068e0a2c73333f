"""ResNet50 32x32 training throughput: stock Conv2D vs FastConv2D, and the tf.data input.

Runs every side in one process on the same real images (PneumoniaMNIST train,
upsampled to 32x32), with the optimiser and loss of ``risc_tf.train_classifier``.
Sides alternate, ``--repeats`` rounds of one ``fit`` call of ``--steps`` training
steps each; medians and ratios are printed. A run's rate counts its steps after
the first (data fetch included), timed by a callback: each ``fit`` call also
spends 0.1-2 s outside the steps (iterator set-up, teardown), which a real
training run pays once, not once per ``--steps`` steps. Run from the repository
root::

    TF_CPP_MIN_LOG_LEVEL=3 python -m benchmarks.bench_training

Prefix ``TF_ENABLE_ONEDNN_OPTS=0`` to measure TensorFlow's Eigen CPU kernels
instead of oneDNN (docs/performance.md); there one more side trains the fast
layers with the oneDNN rewrite policy (``RISC_TF_CONV_POLICY=onednn``).

``--deterministic`` adds what ``deterministic=True`` costs (issue 23): the tf.data
side again, and a side with the ``"light"`` augmentation (whose seeded Keras layers
are stateful ops, which op determinism makes tf.data run serially), each once as
usual and once with TensorFlow's op determinism on while its model is traced, its
pipeline built and every ``fit`` runs (:func:`risc_tf.determinism.op_determinism`,
what the training helpers do); the input pipelines alone are timed both ways too::

    TF_CPP_MIN_LOG_LEVEL=3 python -m benchmarks.bench_training --deterministic

``--backbone small --steps 3 --repeats 1`` checks the script in seconds.
"""

from __future__ import annotations

import argparse
import os
import time

import keras
import numpy as np
import tensorflow as tf

import risc_tf
from benchmarks._common import header, report
from devdata import DATA_ROOT
from risc_tf.determinism import op_determinism
from risc_tf.fast import FusedAdam, onednn_enabled

#: Under Eigen kernels, one more side: the fast layers with the rewrites chosen for
#: oneDNN (what FastConv2D did before it had a policy per backend).
ONEDNN_POLICY_SIDE = "fast layers (oneDNN policy) + FusedAdam, in-memory"


class StepTimer(keras.callbacks.Callback):
    """Seconds from the start of the second step to the end of the last one."""

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 1:
            self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.end = time.perf_counter()

    def seconds(self) -> float:
        return self.end - self.start


#: The tf.data side, and what deterministic=True costs (--deterministic).
PIPELINE_SIDE = "fast layers + FusedAdam, tf.data pipeline"
DETERMINISM_SIDES = {  # side -> (augment, op determinism)
    PIPELINE_SIDE + ", deterministic": (None, True),
    "fast layers + FusedAdam, tf.data + light augment": ("light", False),
    "fast layers + FusedAdam, tf.data + light augment, deterministic": ("light", True),
}


def compiled(fast_conv: bool, fused_adam: bool, jit_compile: bool = False,
             backbone: str = "resnet50") -> keras.Model:
    keras.utils.set_random_seed(0)
    model = risc_tf.build_classifier(2, backbone=backbone, fast_conv=fast_conv)
    model.compile(  # as risc_tf.training._fit
        optimizer=(FusedAdam if fused_adam else keras.optimizers.Adam)(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=jit_compile,
    )
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=11, help="training steps per run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--xla", action="store_true", help="also time FastConv2D with jit_compile")
    parser.add_argument("--deterministic", action="store_true",
                        help="also time the tf.data sides under op determinism (issue 23)")
    parser.add_argument("--backbone", default="resnet50",
                        help="'small' checks the script quickly (default resnet50)")
    args = parser.parse_args()
    header(f"{args.backbone} 32x32 training (classifier, Adam, batch {args.batch_size})")

    images, labels = risc_tf.load_medmnist("pneumoniamnist", "train", root=DATA_ROOT)
    n = args.batch_size * args.steps
    raw, y = images[:n], labels[:n].astype("int64")
    x = risc_tf.preprocess_images(raw)  # float32 (n, 32, 32, 3), in memory

    def classification_pipeline(augment=None, deterministic=False, images=raw, labels=y):
        with op_determinism(deterministic):  # tf.data reads the setting when it is built
            return risc_tf.classification_dataset(images, labels, batch_size=args.batch_size,
                                                  image_size=32, shuffle=True, seed=0,
                                                  augment=augment)

    pipeline = classification_pipeline()
    models = {
        "stock layers + Keras Adam, in-memory": compiled(False, False, backbone=args.backbone),
        "fast layers + Keras Adam, in-memory": compiled(True, False, backbone=args.backbone),
        "fast layers + FusedAdam, in-memory": compiled(True, True, backbone=args.backbone),
    }
    models[PIPELINE_SIDE] = models["fast layers + FusedAdam, in-memory"]
    if args.xla:
        models["fast layers + FusedAdam + XLA, in-memory"] = compiled(
            True, True, jit_compile=True, backbone=args.backbone)
    if not onednn_enabled():
        models[ONEDNN_POLICY_SIDE] = compiled(True, True, backbone=args.backbone)
    deterministic = {}  # side -> whether op determinism is on while it traces and trains
    if args.deterministic:
        for name, (_, on) in DETERMINISM_SIDES.items():
            models[name] = compiled(True, True, backbone=args.backbone)  # traced its own way
            deterministic[name] = on

    def fit(name, model, data) -> float:
        timer = StepTimer()
        with op_determinism(deterministic.get(name, False)):
            if isinstance(data, tf.data.Dataset):
                model.fit(data, epochs=1, verbose=0, callbacks=[timer])
            else:
                model.fit(data, y, batch_size=args.batch_size, epochs=1, verbose=0,
                          shuffle=False, callbacks=[timer])
        return timer.seconds()

    sides = {name: (model, pipeline if "tf.data" in name else x) for name, model in models.items()}
    for name, (augment, on) in DETERMINISM_SIDES.items():
        if name in sides:
            sides[name] = (models[name], classification_pipeline(augment, on))
    chosen = os.environ.get("RISC_TF_CONV_POLICY", "")  # the user's, if any
    for name, (model, data) in sides.items():  # trace and warm up every side first
        # FastConv2D reads its policy when traced, i.e. in this first fit
        os.environ["RISC_TF_CONV_POLICY"] = "onednn" if name == ONEDNN_POLICY_SIDE else chosen
        fit(name, model, data)
    os.environ["RISC_TF_CONV_POLICY"] = chosen
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.repeats):  # alternate, so that a shared machine's load hits all sides
        for name, (model, data) in sides.items():
            times[name].append(fit(name, model, data))
    timed_images = (args.steps - 1) * args.batch_size
    print(f"images/s ({args.steps - 1} timed steps x {args.batch_size} images per run, "
          f"{args.repeats} runs per side, interleaved):")
    report(times, timed_images, "img/s", "stock layers + Keras Adam, in-memory")
    fast = np.median(times["fast layers + FusedAdam, in-memory"])
    piped = np.median(times[PIPELINE_SIDE])
    print(f"  tf.data pipeline rate / in-memory rate (library default): {fast / piped:.3f}")
    if args.deterministic:
        light = np.median(times["fast layers + FusedAdam, tf.data + light augment"])
        for what, name, base in (
                ("tf.data pipeline", PIPELINE_SIDE + ", deterministic", piped),
                ("with light augment",
                 "fast layers + FusedAdam, tf.data + light augment, deterministic", light)):
            print(f"  deterministic rate / usual rate, {what}: "
                  f"{base / np.median(times[name]):.3f}")

    print("input pipelines alone (all train images, one pass after a warm-up, no model):")
    pipelines = {
        "classification_dataset": lambda: risc_tf.classification_dataset(
            images, labels, batch_size=args.batch_size, image_size=32, shuffle=True, seed=0),
        "rotation_dataset": lambda: risc_tf.rotation_dataset(
            images, batch_size=args.batch_size, seed=0),
    }
    if args.deterministic:
        pipelines["classification_dataset, light augment"] = lambda: classification_pipeline(
            "light", images=images, labels=labels)
    for name, make in pipelines.items():
        for on in (False, True) if args.deterministic else (False,):
            with op_determinism(on):
                ds = make()
                for _ in ds.take(2):
                    pass
                cpu, wall = time.process_time(), time.perf_counter()
                count = sum(len(batch[0]) for batch in ds)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            label = name + (", deterministic" if on else "")
            print(f"  {label:48s} {count / wall:8.0f} img/s, {count / cpu:8.0f} img per "
                  "CPU-second")


if __name__ == "__main__":
    main()
