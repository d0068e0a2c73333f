"""PNG figures of a :func:`risc_tf.reproduce` run (matplotlib, no display needed).

Figures are drawn on :class:`matplotlib.figure.Figure` objects (the Agg canvas),
never through pyplot, so they work headless and leave global state alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

__all__ = ["PLOTS", "plot_all"]

#: File names of the figures, in report order.
PLOTS = {
    "training_curves": "training_curves.png",
    "confusion_matrices": "confusion_matrices.png",
    "per_angle_accuracy": "per_angle_accuracy.png",
    "angle_sweep": "angle_sweep.png",
}

_TRAINED = {"rotnet": "RotNet (stage 1)", "classifier": "Upright classifier (stage 2)",
            "rotation_augmented": "Rotation-augmented classifier"}


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def training_curves(results: dict, path: Path) -> Path:
    """Accuracy and loss per epoch, training and validation, for every trained model."""
    names = [n for n in _TRAINED if n in results["training"]]
    fig = Figure(figsize=(4.2 * len(names), 6.4))
    axes = fig.subplots(2, len(names), squeeze=False)
    for j, name in enumerate(names):
        hist = results["training"][name]["history"]
        epochs = np.arange(1, len(hist["loss"]) + 1)
        for i, metric in enumerate(("accuracy", "loss")):
            ax = axes[i, j]
            ax.plot(epochs, hist[metric], "o-", label="train")
            if f"val_{metric}" in hist:
                ax.plot(epochs, hist[f"val_{metric}"], "s--", label="validation")
            ax.set_xlabel("epoch")
            ax.set_ylabel(metric)
            if metric == "accuracy":
                ax.set_ylim(0, 1.02)
                ax.set_title(_TRAINED[name])
            ax.set_xticks(epochs)
            ax.grid(alpha=0.3)
            ax.legend()
    fig.suptitle("Training curves (validation with re-estimated BatchNorm statistics)")
    return _save(fig, path)


def confusion_matrices(results: dict, path: Path) -> Path:
    """Confusion matrices on the rotated test set: RotNet (angles) and every method."""
    rotated = results["evaluation"]["rotated"]
    panels = [("RotNet: true vs predicted angle", results["rotnet"]["confusion_matrix"],
               [f"{a:g}" for a in results["angles"]["rotnet"]])]
    labels = [str(i) for i in range(results["dataset"]["num_classes"])]
    panels += [(f"{m}: ACC {r['acc']:.3f}", r["confusion_matrix"], labels)
               for m, r in rotated.items()]
    cols = 3
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(4.3 * cols, 4.0 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (title, matrix, ticks) in zip(axes, panels):
        m = np.asarray(matrix)
        ax.imshow(m, cmap="Blues")
        for (r, c), v in np.ndenumerate(m):
            ax.text(c, r, str(v), ha="center", va="center", fontsize=8,
                    color="white" if v > m.max() / 2 else "black")
        ax.set_xticks(range(len(ticks)), ticks, fontsize=8)
        ax.set_yticks(range(len(ticks)), ticks, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=9)
    for ax in axes[len(panels):]:
        ax.axis("off")
    fig.suptitle("Confusion matrices on the randomly rotated test set")
    return _save(fig, path)


def per_angle_accuracy(results: dict, path: Path) -> Path:
    """Accuracy per true rotation angle of the rotated test set, for every method."""
    rotated = results["evaluation"]["rotated"]
    series = {"RotNet (angle)": results["rotnet"]["per_angle_acc"]}
    series.update({m: r["per_angle_acc"] for m, r in rotated.items()})
    angles = list(series["RotNet (angle)"])
    width = 0.8 / len(series)
    fig = Figure(figsize=(max(8.0, 1.1 * len(angles) * len(series) / 3), 4.6))
    ax = fig.subplots()
    x = np.arange(len(angles))
    for k, (name, per) in enumerate(series.items()):
        ax.bar(x + (k - (len(series) - 1) / 2) * width, [per.get(a, np.nan) for a in angles],
               width, label=name)
    ax.set_xticks(x, [f"{a} deg" for a in angles])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy per true rotation (randomly rotated test set)")
    ax.legend(fontsize=8, ncol=min(len(series), 6), loc="upper center",
              bbox_to_anchor=(0.5, -0.1), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def angle_sweep(results: dict, path: Path) -> Path:
    """Accuracy of every method with the whole test set rotated by each swept angle."""
    sweep = results["sweep"]
    fig = Figure(figsize=(8.5, 4.5))
    ax = fig.subplots()
    for name, acc in sweep["acc"].items():
        ax.plot(sweep["angles"], acc, "o-", markersize=3, label=name)
    for a in results["angles"]["rotnet"]:
        ax.axvline(a % 360.0, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("rotation of the test set (degrees CCW); dotted: RotNet angle set")
    ax.set_ylabel("accuracy")
    ax.set_xlim(-5, 355)
    ax.set_ylim(0, 1.02)
    ax.set_title("Accuracy versus rotation angle")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_all(results: dict, folder: Path) -> dict[str, str]:
    """Write every figure of :data:`PLOTS` into ``folder``; return name -> file name."""
    makers = {"training_curves": training_curves, "confusion_matrices": confusion_matrices,
              "per_angle_accuracy": per_angle_accuracy, "angle_sweep": angle_sweep}
    for name, make in makers.items():
        make(results, Path(folder) / PLOTS[name])
    return dict(PLOTS)
