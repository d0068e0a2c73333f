"""Subprocess bodies of tests/test_distribute.py (each needs a fresh TensorFlow).

    python tests/distribute_worker.py mirrored          # 2 logical CPUs vs one device
    python tests/distribute_worker.py worker OUTDIR     # one MultiWorkerMirroredStrategy worker

Each prints one line ``RESULT {json}``. Logical devices must be configured before
TensorFlow initialises its devices, and a process can hold one MirroredStrategy only
(a second one reuses the first one's collective keys), hence the subprocesses.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def _data(n: int = 128, size: int = 16):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
    x[: n // 2, : size // 2] //= 4  # a learnable, orientation-dependent difference
    return x, (np.arange(n) < n // 2).astype(np.int64)


def _digests(model) -> list[str]:
    return [hashlib.sha256(np.ascontiguousarray(w).tobytes()).hexdigest()
            for w in model.get_weights()]


def _freeze_batchnorm(model):
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False  # inference mode: no per-replica batch statistics
    return model


def _replica_divergence(model) -> float:
    worst = 0.0
    for v in model.weights:
        value = getattr(v, "value", v)
        copies = [np.asarray(c) for c in getattr(value, "values", (value,))]
        worst = max([worst, *(float(np.max(np.abs(copies[0] - c))) for c in copies[1:])])
    return worst


def mirrored() -> dict:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras

    import risc_tf
    from risc_tf.distribute import make_strategy
    from risc_tf.fast import FusedAdam

    two = make_strategy("mirrored")
    one = tf.distribute.OneDeviceStrategy("/cpu:0")  # fit's reference: same iterator use
    x, y = _data()
    report = {"replicas": two.num_replicas_in_sync}

    def run(strategy, kind, frozen):
        with strategy.scope():
            keras.utils.set_random_seed(3)
            if kind == "rotnet":
                model = risc_tf.build_rotnet((16, 16, 3), backbone="small", hidden_units=(8, 8),
                                             dropout=0.0)  # dropout masks differ per replica
            else:
                model = risc_tf.build_classifier(2, (16, 16, 3), backbone="small")
            if frozen:
                _freeze_batchnorm(model)
            # epsilon=1: Adam's first steps are ~lr*sign(g) with the default epsilon, so
            # rounding-level gradient differences would flip near-zero entries
            options = dict(epochs=2, batch_size=32, patience=None, verbose=0, seed=1,
                           optimizer=FusedAdam(1e-2, epsilon=1.0),
                           recalibrate_bn=not frozen, recalibration_batches=2)
            if kind == "rotnet":
                history = risc_tf.train_rotnet(model, x, **options)
            else:
                history = risc_tf.train_classifier(model, x, y, **options)
        return model, history.history["loss"]

    for kind in ("rotnet", "classifier"):
        m1, l1 = run(one, kind, True)
        m2, l2 = run(two, kind, True)
        report[kind] = {
            "loss_one": l1, "loss_two": l2,
            "max_weight_diff": max(float(np.max(np.abs(a - b)))
                                   for a, b in zip(m1.get_weights(), m2.get_weights())),
        }
        m3, l3 = run(two, kind, False)  # per-replica BatchNorm, re-estimated each epoch
        report[kind]["per_replica_bn_losses"] = l3
        report[kind]["replica_divergence"] = _replica_divergence(m3)
    return report


def worker(outdir: str) -> dict:
    import tensorflow as tf

    import risc_tf
    from risc_tf.distribute import make_strategy

    strategy = make_strategy("multiworker")
    task = json.loads(os.environ["TF_CONFIG"])["task"]
    chief = task["index"] == 0
    x, y = _data(96)
    with strategy.scope():
        model = risc_tf.build_classifier(2, (16, 16, 3), backbone="small")
        history = risc_tf.train_classifier(model, x, y, x[:32], y[:32], epochs=2, batch_size=32,
                                           recalibration_batches=2, patience=1, verbose=0,
                                           seed=4)
    # Keras's multi-worker convention: every worker saves (saving may synchronise), only
    # the chief's file is kept.
    target = os.path.join(outdir, "model.keras") if chief else os.path.join(
        tempfile.mkdtemp(), "model.keras")
    risc_tf.save_model(model, target)
    if not chief:
        os.remove(target)
    return {"chief": chief, "digests": _digests(model), "history": history.history,
            "replicas": strategy.num_replicas_in_sync, "saved_to": target,
            "tf": tf.__version__}


if __name__ == "__main__":
    mode = sys.argv[1]
    result = mirrored() if mode == "mirrored" else worker(sys.argv[2])
    print("RESULT " + json.dumps(result))
