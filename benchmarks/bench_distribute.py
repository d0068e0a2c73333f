"""Training rate of the ResNet50 32x32 classifier: one device, MirroredStrategy over two
logical CPU devices, and float32 against mixed_bfloat16.

Each setting runs in its own process (logical devices and the dtype policy are
fixed per process): ``risc_tf.train_classifier`` on real PneumoniaMNIST train
images, fast layers on, batch 64 (global), BatchNorm re-estimation off so that
only training steps are timed (no validation during training); the rate is
images per second over the epochs after the first (tracing and warm-up
excluded), median over epochs. Each line ends with the validation accuracy
after the training (BatchNorm statistics re-estimated once), to compare
float32 and mixed_bfloat16 at the same seed.

On a 2-core CPU two logical devices share the same two cores: no speed-up is
possible, the number shows the overhead of MirroredStrategy's replication and
all-reduce. Run from the repository root on a quiet machine::

    TF_CPP_MIN_LOG_LEVEL=3 python -m benchmarks.bench_distribute
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SETTINGS = {
    "one device, float32": {"devices": 1, "policy": "float32"},
    "one device, mixed_bfloat16": {"devices": 1, "policy": "mixed_bfloat16"},
    "MirroredStrategy, 2 logical CPUs, float32": {"devices": 2, "policy": "float32"},
}


def child(devices: int, policy: str, images: int, epochs: int) -> dict:
    import tensorflow as tf

    if devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
    import keras

    import risc_tf
    from benchmarks._common import machine
    from devdata import DATA_ROOT
    from risc_tf.distribute import make_strategy

    keras.mixed_precision.set_dtype_policy(policy)
    x, y = risc_tf.load_medmnist("pneumoniamnist", "train", root=DATA_ROOT)
    xv, yv = risc_tf.load_medmnist("pneumoniamnist", "val", root=DATA_ROOT)
    x, y = x[:images], y[:images]
    ends = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            ends.append(time.perf_counter())

    strategy = make_strategy("mirrored" if devices > 1 else "none")
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = risc_tf.build_classifier(2)
        start = time.perf_counter()
        risc_tf.train_classifier(model, x, y, epochs=epochs, batch_size=64, patience=None,
                                 recalibrate_bn=False, verbose=0, callbacks=[Clock()])
    epoch_s = [b - a for a, b in zip([start, *ends[:-1]], ends)]
    risc_tf.recalibrate_batchnorm(model, risc_tf.classification_dataset(x, y, batch_size=64))
    proba = model.predict(risc_tf.preprocess_images(xv), verbose=0)
    return {"machine": machine(), "replicas": strategy.num_replicas_in_sync,
            "epoch_s": epoch_s, "val_accuracy": float((proba.argmax(1) == yv).mean())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=1280, help="training images per epoch")
    p.add_argument("--epochs", type=int, default=4, help="epochs (the first is not timed)")
    p.add_argument("--child", nargs=2, metavar=("DEVICES", "POLICY"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        result = child(int(args.child[0]), args.child[1], args.images, args.epochs)
        print("RESULT " + json.dumps(result))
        return
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    print(f"ResNet50 classifier, 32x32, batch 64, {args.images} images/epoch, {args.epochs} "
          "epochs (first not timed), fast layers, no BatchNorm re-estimation")
    for name, s in SETTINGS.items():
        done = subprocess.run([sys.executable, "-m", "benchmarks.bench_distribute",
                               "--images", str(args.images),
                               "--epochs", str(args.epochs), "--child", str(s["devices"]),
                               s["policy"]], capture_output=True, text=True, env=env)
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            print(f"  {name}: failed\n{done.stderr[-2000:]}")
            continue
        r = json.loads(line[len("RESULT "):])
        steady = sorted(r["epoch_s"][1:])
        rate = args.images / steady[len(steady) // 2]
        print(f"  {name:45s} {rate:6.1f} img/s (epochs: "
              + ", ".join(f"{args.images / t:.0f}" for t in r["epoch_s"][1:])
              + f"); validation accuracy after training {r['val_accuracy']:.3f}")
    print(f"machine: {r['machine']}")


if __name__ == "__main__":
    main()
