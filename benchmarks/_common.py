"""Shared helpers for the benchmarks and probes: the machine line, timing, rates, FLOPs."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from risc_tf.fast import onednn_enabled


def machine() -> str:
    """One line naming the machine and the versions."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    kernels = "oneDNN" if onednn_enabled() else "Eigen (oneDNN off)"
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, TensorFlow {tf.__version__} "
        f"with {kernels} CPU kernels, "
        f"Keras {keras.__version__}, numpy {np.__version__}, load average at start {load[0]:.2f}"
    )


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(sides: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Time every side once per round, ``repeats`` rounds, sides alternating.

    Alternating spreads the load of a shared machine evenly over the sides.
    """
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, fn in sides.items():
            times[name].append(timed(fn))
    return times


def report(times: dict[str, list[float]], items: int, unit: str, base: str) -> None:
    """Print median rate per side, the spread, and the ratio to ``base``."""
    rate = {k: items / statistics.median(v) for k, v in times.items()}
    for name, v in times.items():
        spread = ", ".join(f"{items / t:.0f}" for t in v)
        print(
            f"  {name:34s} median {rate[name]:8.1f} {unit}  ({rate[name] / rate[base]:.2f}x "
            f"{base})  runs: {spread}"
        )


def forward_flops(model: keras.Model) -> float:
    """Floating-point operations of one image's forward pass (2 per multiply-add).

    Counts the convolutions and dense layers, which hold all but a fraction of a
    percent of a ResNet's arithmetic (BatchNorm, ReLU and the additions are
    elementwise); nested models are walked through.
    """
    flops = 0.0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Conv2D):
            _, oh, ow, f = layer.output.shape
            kh, kw, cin, _ = layer.kernel.shape
            flops += 2.0 * oh * ow * f * kh * kw * cin
        elif isinstance(layer, keras.layers.Dense):
            flops += 2.0 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return flops


def matmul_peak(size: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of a large float32 ``tf.matmul``: what this CPU's kernels can reach.

    A square matmul is the most efficient operation TensorFlow has on CPU, so its
    rate is a practical ceiling for any convolution network on the same kernels.
    """
    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    product()
    best = statistics.median([timed(lambda: product().numpy()) for _ in range(repeats)])
    return 2.0 * size**3 / best / 1e9


def header(title: str) -> None:
    print(f"== {title}")
    print(f"machine: {cpu_model()}; {machine()}")
