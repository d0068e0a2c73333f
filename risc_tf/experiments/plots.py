"""PNG figures of a :func:`risc_tf.reproduce` run (matplotlib, no display needed).

Figures are drawn on :class:`matplotlib.figure.Figure` objects and written by
:func:`risc_tf.figures.save_figure`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay

from risc_tf.experiments.results import RunResults
from risc_tf.figures import save_figure

__all__ = ["PLOTS", "plot_all"]

#: File names of the figures, in report order.
PLOTS = {
    "training_curves": "training_curves.png",
    "confusion_matrices": "confusion_matrices.png",
    "per_angle_accuracy": "per_angle_accuracy.png",
    "angle_sweep": "angle_sweep.png",
    "rotnet_angle_error": "rotnet_angle_error.png",
    "selective": "selective_classification.png",
    "reliability": "reliability.png",
}

_TRAINED = {"rotnet": "RotNet (stage 1)", "classifier": "Upright classifier (stage 2)",
            "rotation_augmented": "Rotation-augmented classifier"}


def training_curves(results: RunResults, path: Path) -> Path:
    """Accuracy and loss per epoch, training and validation, for every trained model."""
    names = [n for n in _TRAINED if n in results.training]
    fig = Figure(figsize=(4.2 * len(names), 6.4))
    axes = fig.subplots(2, len(names), squeeze=False)
    for j, name in enumerate(names):
        hist = results.training[name].history
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
    return save_figure(fig, path)


def confusion_matrices(results: RunResults, path: Path) -> Path:
    """Confusion matrices on the rotated test set: RotNet (angles) and every method."""
    rotated = results.evaluation.rotated
    panels = [("RotNet: true vs predicted angle", results.rotnet.confusion_matrix,
               [f"{a:g}" for a in results.angles.rotnet])]
    names = results.dataset.class_names
    panels += [(f"{m}: ACC {r.acc:.3f}", r.confusion_matrix, names) for m, r in rotated.items()]
    cols = 3
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(4.6 * cols, 4.3 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (title, matrix, ticks) in zip(axes, panels):
        display = ConfusionMatrixDisplay(np.asarray(matrix), display_labels=ticks)
        display.plot(ax=ax, cmap="Blues", colorbar=False, xticks_rotation=45)
        ax.set_title(title, fontsize=9)
    for ax in axes[len(panels):]:
        ax.axis("off")
    fig.suptitle("Confusion matrices on the randomly rotated test set")
    return save_figure(fig, path)


def per_angle_accuracy(results: RunResults, path: Path) -> Path:
    """Accuracy per true rotation angle of the rotated test set, for every method."""
    rotated = results.evaluation.rotated
    series = {"RotNet (angle)": results.rotnet.per_angle_acc}
    series.update({m: r.per_angle_acc for m, r in rotated.items()})
    angles = list(rotated["classifier"].per_angle_acc)
    width = 0.8 / len(series)
    fig = Figure(figsize=(max(8.0, 1.1 * len(angles) * len(series) / 3), 4.6))
    ax = fig.subplots()
    x = np.arange(len(angles))
    for k, (name, per) in enumerate(series.items()):
        values = [per.get(a) for a in angles]  # strings: "not in the RotNet's angle set"
        values = [v if isinstance(v, float) else np.nan for v in values]
        ax.bar(x + (k - (len(series) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, [f"{a} deg" for a in angles])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy per true rotation (randomly rotated test set)")
    ax.legend(fontsize=8, ncol=min(len(series), 6), loc="upper center",
              bbox_to_anchor=(0.5, -0.1), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


def angle_sweep(results: RunResults, path: Path) -> Path:
    """Accuracy of every method with the whole test set rotated by each swept angle."""
    sweep = results.sweep
    fig = Figure(figsize=(8.5, 4.5))
    ax = fig.subplots()
    for name, acc in sweep.acc.items():
        ax.plot(sweep.angles, acc, "o-", markersize=3, label=name)
    for a in results.angles.rotnet:
        ax.axvline(a % 360.0, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("rotation of the test set (degrees CCW); dotted: RotNet angle set")
    ax.set_ylabel("accuracy")
    ax.set_xlim(-5, 355)
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Accuracy versus rotation angle ({sweep.split or 'test'} set)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def rotnet_angle_error(results: RunResults, path: Path) -> Path:
    """The RotNet's mean absolute angular error at each angle of the sweep."""
    sweep = results.sweep
    fig = Figure(figsize=(8.5, 4.0))
    ax = fig.subplots()
    if sweep.rotnet_mae_deg is not None:
        ax.plot(sweep.angles, sweep.rotnet_mae_deg, "o-", markersize=3,
                label=f"the RotNet's answer (mean {sweep.rotnet_mae_deg_mean:.1f} deg)")
    if sweep.rotnet_refined_mae_deg is not None:
        ax.plot(sweep.angles, sweep.rotnet_refined_mae_deg, "s--", markersize=3,
                label="refined between neighbouring bins "
                      f"(mean {sweep.rotnet_refined_mae_deg_mean:.1f} deg)")
    for a in results.angles.rotnet if len(results.angles.rotnet) <= 36 else ():
        ax.axvline(a % 360.0, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("rotation of the images (degrees CCW)"
                  + ("; dotted: RotNet angle set" if len(results.angles.rotnet) <= 36 else ""))
    ax.set_ylabel("mean absolute error (degrees)")
    ax.set_xlim(-5, 355)
    ax.set_ylim(bottom=0)
    ax.set_title(f"RotNet angular error versus rotation ({sweep.split or 'test'} set)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def selective(results: RunResults, path: Path) -> Path:
    """Accuracy against coverage of RISC hard, by rotation confidence and class probability."""
    fig = Figure(figsize=(8.5, 4.0))
    axes = fig.subplots(1, 2)
    for ax, kind in zip(axes, ("rotation_confidence", "class_probability")):
        for split, style in (("val", "s--"), ("test", "o-")):
            curve = results.selective[split][kind]
            acc = [np.nan if a is None else a for a in curve.accuracy]
            ax.plot(curve.coverage, acc, style, label=split)
            for t, c, a in zip(curve.thresholds, curve.coverage, acc):
                if split == "test":
                    ax.annotate(f"{t:g}", (c, a), fontsize=7, xytext=(3, 3),
                                textcoords="offset points")
        ax.set_xlabel("coverage (fraction answered)")
        ax.set_ylabel("accuracy of the answered images")
        ax.set_title(f"threshold on {kind.replace('_', ' ')}", fontsize=9)
        ax.set_xlim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Selective classification, RISC hard on the rotated sets")
    return save_figure(fig, path)


def reliability(results: RunResults, path: Path) -> Path | None:
    """Reliability diagrams of both models on the rotated test set, before and after their
    temperatures (runs that measured them)."""
    if not results.trust:
        return None
    from risc_tf.trust import plot_trust_report

    return plot_trust_report(results.trust["test"], path)


def plot_all(results: RunResults, folder: Path) -> dict[str, str]:
    """Write every figure of :data:`PLOTS` that the results allow into ``folder``; return
    name -> file name."""
    makers = {"training_curves": training_curves, "confusion_matrices": confusion_matrices,
              "per_angle_accuracy": per_angle_accuracy, "angle_sweep": angle_sweep,
              "rotnet_angle_error": rotnet_angle_error, "selective": selective,
              "reliability": reliability}
    return {name: PLOTS[name] for name, make in makers.items()
            if make(results, Path(folder) / PLOTS[name]) is not None}
