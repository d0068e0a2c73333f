"""RISCPipeline inference: fused graph vs the naive two-step, and single-image latency.

Both sides use the same ResNet50 RotNet + classifier (32x32, FastConv2D /
FastBatchNormalization layers, untrained weights: speed does not depend on the
weight values) on the same rotated PneumoniaMNIST test images, in one process,
alternating, ``--repeats`` rounds; medians and ratios are printed. One more
naive side runs stock-layer copies of the same two models (same weights, built
with ``fast_conv=False``), i.e. the naive two-step as it ran before the fast
layers existed. The naive side is what a user would
write without the pipeline::

    p = rotnet.predict(x); k = p.argmax(1)
    x_up = np.stack([np.rot90(img, -k_i) for img, k_i in zip(x, k)])
    y = classifier.predict(x_up)

One more fused side runs the same pipeline on :func:`risc_tf.fold_batchnorm`
copies of the two models (same predictions; BatchNorm folded into the
convolutions). The naive two-step runs twice: at the pipeline's batch size
(the like-for-like comparison) and at ``predict``'s default batch size (32),
as the snippet above is written.
Last, the arithmetic: the pair's floating-point operations per sample, this
CPU's float32 matmul rate, and the share of it each side reaches, which bounds
what any float32 pipeline on these kernels can do.

Run from the repository root::

    TF_CPP_MIN_LOG_LEVEL=3 python -m benchmarks.bench_inference
"""

from __future__ import annotations

import argparse
import statistics

import keras
import numpy as np

import risc_tf
from benchmarks._common import forward_flops, header, interleaved, matmul_peak, report, timed
from devdata import DATA_ROOT


def naive(rotnet, classifier, x, batch_size=None):
    p_rot = rotnet.predict(x, batch_size=batch_size, verbose=0)
    k = p_rot.argmax(axis=1)  # angles (0, 90, 180, 270) -> quarter turns
    upright = np.stack([np.rot90(img, -int(q)) for img, q in zip(x, k)])
    return classifier.predict(upright, batch_size=batch_size, verbose=0)


def arithmetic(times, n, rotnet, classifier) -> None:
    """Print each side's float32 rate against this CPU's matmul rate."""
    rot, cls = forward_flops(rotnet), forward_flops(classifier)
    peak = matmul_peak()
    hard = rot + cls
    print(f"arithmetic: RotNet {rot / 1e6:.1f} + classifier {cls / 1e6:.1f} MFLOP per sample "
          f"(soft mode: RotNet + 4 classifiers); float32 matmul 2048x2048: {peak:.1f} GFLOP/s")
    print(f"  ceiling at that rate: hard {peak * 1e9 / hard:.0f} samples/s, "
          f"soft {peak * 1e9 / (rot + 4 * cls):.0f} samples/s")
    for name, v in times.items():
        flops = rot + 4 * cls if "soft" in name else hard
        rate = n / statistics.median(v) * flops / 1e9
        print(f"  {name:34s} {rate:6.1f} GFLOP/s ({rate / peak:.0%} of the matmul rate)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--latency-calls", type=int, default=50)
    args = parser.parse_args()
    header("RISCPipeline inference, ResNet50 pair at 32x32")

    images, labels = risc_tf.load_medmnist("pneumoniamnist", "test", root=DATA_ROOT)
    x, _, _ = risc_tf.rotated_test_arrays(images, labels, image_size=32, seed=0)  # (N, 32, 32, 3)
    n = len(x)
    keras.utils.set_random_seed(0)
    rotnet = risc_tf.build_rotnet(backbone="resnet50")
    classifier = risc_tf.build_classifier(2, backbone="resnet50")
    stock = []
    for fast in (rotnet, classifier):
        builder = risc_tf.build_rotnet if fast is rotnet else lambda **kw: (
            risc_tf.build_classifier(2, **kw))
        copy = builder(backbone="resnet50", fast_conv=False)
        copy.set_weights(fast.get_weights())
        stock.append(copy)
    hard = risc_tf.RISCPipeline(rotnet, classifier, mode="hard", batch_size=args.batch_size)
    soft = risc_tf.RISCPipeline(rotnet, classifier, mode="soft", batch_size=args.batch_size)
    folded = risc_tf.RISCPipeline(risc_tf.fold_batchnorm(rotnet),
                                  risc_tf.fold_batchnorm(classifier), batch_size=args.batch_size)

    sides = {
        "naive predict -> rot90 -> predict": lambda: naive(rotnet, classifier, x, args.batch_size),
        "naive, predict's default batch": lambda: naive(rotnet, classifier, x),
        "naive, stock-layer copies": lambda: naive(*stock, x, args.batch_size),
        "RISCPipeline hard (fused)": lambda: hard.predict_proba(x),
        "RISCPipeline soft (fused, 4 rots)": lambda: soft.predict_proba(x),
        "RISCPipeline hard, BatchNorm folded": lambda: folded.predict_proba(x),
    }
    for fn in sides.values():
        fn()  # trace and warm up
    p_hard = hard.predict_proba(x)
    p_naive = sides["naive predict -> rot90 -> predict"]()
    same = np.array_equal(p_naive.argmax(1), p_hard.argmax(1))
    print(f"naive and fused hard predictions identical on {n} images: {same}")
    p_folded = folded.predict_proba(x)
    gap = np.abs(p_folded - p_hard).max()
    agree = np.array_equal(p_folded.argmax(1), p_hard.argmax(1))
    print(f"BatchNorm-folded pipeline: same predictions {agree}, "
          f"largest probability difference {gap:.1e}")
    times = interleaved(sides, args.repeats)
    print(f"samples/s ({n} images per run, {args.repeats} runs per side, interleaved):")
    report(times, n, "samples/s", "naive predict -> rot90 -> predict")
    fused = np.median(times["RISCPipeline hard (fused)"])
    for name in ("naive, predict's default batch", "naive, stock-layer copies"):
        print(f"  fused hard / {name}: {np.median(times[name]) / fused:.2f}x")
    folded_time = np.median(times["RISCPipeline hard, BatchNorm folded"])
    for name in ("naive predict -> rot90 -> predict", "naive, predict's default batch"):
        print(f"  folded hard / {name}: {np.median(times[name]) / folded_time:.2f}x")
    arithmetic(times, n, rotnet, classifier)
    traces = {k[0]: g.experimental_get_tracing_count() for k, g in hard._graphs.items()}
    print(f"  traces of the hard pipeline's graph after all runs: {traces}")

    one = x[0]
    hard.predict(one)
    lat = {
        "RISCPipeline.predict(one image)": [timed(lambda: hard.predict(one))
                                            for _ in range(args.latency_calls)],
        "naive, one image": [timed(lambda: naive(rotnet, classifier, one[None], 1))
                             for _ in range(args.latency_calls)],
    }
    print(f"single-image latency ({args.latency_calls} calls in a loop):")
    for name, v in lat.items():
        print(f"  {name:34s} median {1e3 * statistics.median(v):7.1f} ms  "
              f"(min {1e3 * min(v):.1f}, max {1e3 * max(v):.1f})")


if __name__ == "__main__":
    main()
