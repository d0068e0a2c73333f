"""Per-layer cost of ResNet50's convolutions at 32x32: stock vs FastConv2D vs patches.

For every distinct convolution of ``build_classifier(2)`` (input shape, kernel,
stride, filters), times the forward pass and forward + backward (gradients for
input and kernel) at batch ``--batch-size`` in a traced function, for the stock
``keras.layers.Conv2D``, ``FastConv2D`` (which rewrites the single-tap cases as a
matmul and leaves the rest stock), and, for kxk kernels, the rejected
alternative "patches + matmul" (pad, k*k slices concatenated, one matmul).
Prints medians of ``--repeats`` interleaved runs, and the total per training step
(times the number of such layers). Run from the repository root::

    TF_CPP_MIN_LOG_LEVEL=3 python -m benchmarks.bench_conv_layers
"""

from __future__ import annotations

import argparse
import collections
import statistics

import keras
import tensorflow as tf

import risc_tf
from benchmarks._common import header, timed
from risc_tf.fast import FastConv2D


def patches_conv(layer: keras.layers.Conv2D):
    """The rejected alternative: explicit patches + one matmul (stride 1, "same")."""
    kh, kw = layer.kernel_size

    def call(x):
        n, h, w, c = tf.shape(x)[0], x.shape[1], x.shape[2], x.shape[3]
        p = tf.pad(x, [[0, 0], [kh // 2, kh // 2], [kw // 2, kw // 2], [0, 0]])
        cols = tf.concat([p[:, i : i + h, j : j + w, :] for i in range(kh) for j in range(kw)], -1)
        kernel = tf.reshape(layer.kernel, [-1, layer.filters])
        y = tf.matmul(tf.reshape(cols, [-1, kh * kw * c]), kernel)
        return tf.reshape(y, [n, h, w, layer.filters]) + layer.bias

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    header(f"ResNet50 32x32 convolutions, batch {args.batch_size}, milliseconds")
    model = risc_tf.build_classifier(2, fast_conv=False)
    groups = collections.Counter(
        (tuple(layer.input.shape[1:]), tuple(layer.kernel_size), tuple(layer.strides),
         layer.filters, layer.padding)
        for layer in model.layers if isinstance(layer, keras.layers.Conv2D)
    )
    totals = collections.Counter()
    print(f"{'input':>14s} {'k':>3s} {'s':>2s} {'out':>5s} {'n':>3s} | {'forward':^22s} | "
          f"{'forward + backward':^22s} |")
    print(f"{'':30s} | {'stock':>6s} {'fast':>6s} {'patch':>6s} | {'stock':>6s} {'fast':>6s} "
          f"{'patch':>6s} | rewritten")
    for (shape, k, s, filters, padding), count in sorted(groups.items(), key=lambda g: -g[0][0][0]):
        x = tf.random.normal((args.batch_size, *shape))
        stock = keras.layers.Conv2D(filters, k, strides=s, padding=padding)
        fast = FastConv2D(filters, k, strides=s, padding=padding)
        stock.build(x.shape)
        fast.build(x.shape)
        fast.set_weights(stock.get_weights())
        fns = {"stock": stock, "fast": fast}
        if k != (1, 1) and s == (1, 1) and padding == "same":
            fns["patch"] = patches_conv(stock)
        row = {}
        for name, fn in fns.items():
            variables = (stock if name == "patch" else fn).trainable_variables

            def grad(fn=fn, variables=variables, x=x):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    loss = tf.reduce_sum(tf.square(fn(x)))
                return tape.gradient(loss, [x, *variables])

            fwd, both = tf.function(lambda fn=fn, x=x: fn(x)), tf.function(grad)
            fwd(), both()
            runs = [(timed(fwd), timed(both)) for _ in range(args.repeats)]
            row[name] = [1e3 * statistics.median(r[i] for r in runs) for i in (0, 1)]
            totals[name + " fwd"] += count * row[name][0]
            totals[name + " both"] += count * row[name][1]
        cell = lambda i, row=row: " ".join(  # noqa: E731
            f"{row[n][i]:6.1f}" if n in row else f"{'-':>6s}" for n in ("stock", "fast", "patch")
        )
        plan = fast.rewrite_plan(x.shape)
        print(f"{str(shape):>14s} {k[0]:>3d} {s[0]:>2d} {filters:>5d} {count:>3d} | {cell(0)} | "
              f"{cell(1)} | {plan.kind if plan else 'stock'}")
    print(f"per step (x count): forward stock {totals['stock fwd']:.0f} ms, fast "
          f"{totals['fast fwd']:.0f} ms; forward + backward stock {totals['stock both']:.0f} ms, "
          f"fast {totals['fast both']:.0f} ms")


if __name__ == "__main__":
    main()
