"""The heatmap figures: grids of image and heatmap panels (the paper's Fig. 4 and Fig. 5).

* :func:`classifier_rotation_figure` -- Fig. 4: an image at each test rotation,
  the classifier's heatmap and prediction.
* :func:`rotnet_rotation_figure` -- Fig. 5: the same for the RotNet.
* :func:`risc_figure` -- RISC at work: rotated input, the RotNet's heatmap, the
  classifier's heatmap before correction, the corrected image and the
  classifier's heatmap after correction.
* :func:`layer_figure` -- the same target explained at several layers, side by side.

Every function draws a :class:`matplotlib.figure.Figure` (not registered with
pyplot, so nothing is shown and no global state changes) and returns it; given
``path``, it is also written as PNG by :func:`risc_tf.figures.save_figure`, the
one writer of every figure risc_tf draws.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import keras
import numpy as np
from matplotlib.figure import Figure

from risc_tf.angles import DEFAULT_ANGLES, check_angles
from risc_tf.explain.cam import CAM, layer_heatmaps, model_input, predict_proba, rotation_targets
from risc_tf.explain.layers import stage_layers
from risc_tf.explain.overlays import overlay, to_rgb
from risc_tf.figures import save_figure
from risc_tf.models import rotnet_angles
from risc_tf.rotation import rotate

__all__ = [
    "classifier_rotation_figure",
    "layer_figure",
    "risc_figure",
    "rotnet_rotation_figure",
]

ClassNames = Mapping | Sequence[str] | None
_CELL = 1.45  # inches per panel


def _class_name(names: ClassNames, index: int) -> str:
    if names is None:
        return f"class {index}"
    if isinstance(names, Mapping):
        return str(names.get(str(index), names.get(index, index)))
    return str(names[index])


def _row_names(labels, names: ClassNames, n: int) -> list[str]:
    if labels is None:
        return [f"image {i}" for i in range(n)]
    labels = np.ravel(labels)
    if len(labels) != n:
        raise ValueError(f"labels must hold one class per image ({n}); got {len(labels)}")
    return [f"true: {_class_name(names, int(t))}" for t in labels]


def _grid(rows: int, cols: int, title: str | None) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(_CELL * cols, _CELL * rows + (0.35 if title else 0.0)),
                 layout="constrained")
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False))
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    return fig, axes


def _panel(ax, image: np.ndarray, title: str, ylabel: str | None = None) -> None:
    ax.imshow(image, interpolation="nearest")
    ax.set_title(title, fontsize=7)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=7)


def _finish(fig: Figure, path) -> Figure:
    if path is not None:
        save_figure(fig, path)
    return fig


def _rotation_figure(
    model: keras.Model, images, *, angles, describe: Callable[[np.ndarray], str],
    cam: CAM, title: str, path, labels=None, class_names: ClassNames = None,
) -> Figure:
    """Shared body of Fig. 4 and Fig. 5: rows = (image, heatmap) per image, cols = angles."""
    angles = check_angles(angles)
    x, _, _ = model_input(model, images, fill=cam.fill)
    n, r = len(x), len(angles)
    every = rotate(np.repeat(x.numpy(), r, axis=0), np.tile(angles, n), cam.fill).numpy()
    proba = predict_proba(model, every)
    maps = cam(every)
    shown = overlay(every, maps)
    rows = _row_names(labels, class_names, n)
    fig, axes = _grid(2 * n, r, title)
    for i in range(n):
        for j, angle in enumerate(angles):
            k = i * r + j
            _panel(axes[2 * i, j], to_rgb(every[k])[0], f"rotated {angle:g}°",
                   rows[i] if j == 0 else None)
            _panel(axes[2 * i + 1, j], shown[k], describe(proba[k]),
                   cam.method if j == 0 else None)
    return _finish(fig, path)


def classifier_rotation_figure(
    classifier: keras.Model,
    images,
    *,
    angles: Sequence[float] = DEFAULT_ANGLES,
    class_names: ClassNames = None,
    labels=None,
    method: str = "gradcam",
    layer: str | None = None,
    max_n: int | None = None,
    title: str | None = None,
    path: str | os.PathLike | None = None,
    fill: str = "constant",
) -> Figure:
    """Fig. 4: each image at each test rotation, with the classifier's heatmap and prediction.

    Parameters
    ----------
    classifier : keras.Model
        The upright-trained classifier.
    images : array_like
        One image or a few (any form :func:`risc_tf.check_images` accepts), upright.
    angles : sequence of float, default (0, 90, 180, 270)
        Test rotations (degrees, counter-clockwise), one column each.
    class_names : mapping or sequence, optional
        Class names by index (e.g. ``dataset_info(flag)["label"]``).
    labels : sequence of int, optional
        True classes, shown as row labels.
    method, layer, max_n, fill
        As in :class:`~risc_tf.explain.CAM`; the predicted class is explained.
    title : str, optional
        Figure title.
    path : path, optional
        Save the figure there as PNG.

    Returns
    -------
    matplotlib.figure.Figure
        Two rows per image (rotated image; heatmap titled with the predicted
        class and its probability), one column per angle.

    Examples
    --------
    >>> classifier_rotation_figure(clf, x_test[0], path="fig4.png")  # doctest: +SKIP
    """
    cam = CAM(classifier, method=method, layer=layer, max_n=max_n, fill=fill)

    def describe(p):
        return f"{_class_name(class_names, int(p.argmax()))} ({p.max():.2f})"

    title = title or f"Classifier {method} at {cam.layer.name}"
    return _rotation_figure(classifier, images, angles=angles, describe=describe, cam=cam,
                            title=title, path=path, labels=labels, class_names=class_names)


def rotnet_rotation_figure(
    rotnet: keras.Model,
    images,
    *,
    angles: Sequence[float] | None = None,
    method: str = "gradcam",
    layer: str | None = None,
    max_n: int | None = None,
    title: str | None = None,
    path: str | os.PathLike | None = None,
    fill: str = "constant",
) -> Figure:
    """Fig. 5: each image at each rotation, with the RotNet's heatmap and predicted angle.

    Parameters
    ----------
    rotnet : keras.Model
        From :func:`risc_tf.build_rotnet`.
    images : array_like
        One image or a few, upright.
    angles : sequence of float, optional
        Rotations to show; the RotNet's own angle set by default.
    method, layer, max_n, title, path, fill
        As in :func:`classifier_rotation_figure`; the predicted rotation is explained.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> rotnet_rotation_figure(pipe.rotnet, x_test[:2], path="fig5.png")  # doctest: +SKIP
    """
    table = rotnet_angles(rotnet)
    cam = CAM(rotnet, method=method, layer=layer, max_n=max_n, fill=fill)

    def describe(p):
        return f"pred {table[int(p.argmax())]:g}° ({p.max():.2f})"

    title = title or f"RotNet {method} at {cam.layer.name}"
    return _rotation_figure(rotnet, images, angles=table if angles is None else angles,
                            describe=describe, cam=cam, title=title, path=path)


def risc_figure(
    pipeline,
    images,
    *,
    rotate_by=None,
    class_names: ClassNames = None,
    labels=None,
    method: str = "gradcam",
    layer: str | None = None,
    rotnet_layer: str | None = None,
    max_n: int | None = None,
    title: str | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """RISC at work: one row per image, heatmaps before and after rotation correction.

    Columns: rotated input; the RotNet's heatmap for its predicted angle; the
    classifier's heatmap on the rotated input; the corrected (counter-rotated)
    image; the classifier's heatmap on it.

    Parameters
    ----------
    pipeline : risc_tf.RISCPipeline
        Supplies the RotNet, the classifier and the correction (most likely angle).
    images : array_like
        Images in any accepted form.
    rotate_by : float or sequence of float, optional
        Rotate the images by these angles (degrees, one or one per image) first;
        None: the images are shown as given (already rotated).
    class_names : mapping or sequence, optional
        Class names by index.
    labels : sequence of int, optional
        True classes, shown in the row label.
    method, max_n
        As in :class:`~risc_tf.explain.CAM`, for both models.
    layer, rotnet_layer : str, optional
        Classifier and RotNet layers (defaults: :func:`~risc_tf.explain.default_layer`).
    title, path
        Figure title; save as PNG there.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> risc_figure(pipe, x_test[:3], rotate_by=[90, 180, 270], path="risc.png")  # doctest: +SKIP
    """
    x, _, _ = model_input(pipeline.classifier, images, fill=pipeline.fill)
    if rotate_by is not None:
        x = rotate(x, np.broadcast_to(np.asarray(rotate_by, np.float32), (len(x),)),
                   pipeline.fill)
    x = x.numpy()
    predicted, rot_proba = pipeline.predict_rotation(x, return_proba=True)
    corrected = pipeline.correct(x)
    options = dict(method=method, max_n=max_n, fill=pipeline.fill)
    clf_cam = CAM(pipeline.classifier, layer=layer, **options)
    rot_cam = CAM(pipeline.rotnet, layer=rotnet_layer, **options)
    before_p, after_p = predict_proba(pipeline.classifier, x), predict_proba(
        pipeline.classifier, corrected)
    columns = [
        (x, None, lambda i: "input" + (f" (rot {np.ravel(rotate_by)[i % np.size(rotate_by)]:g}°)"
                                       if rotate_by is not None else "")),
        (x, rot_cam(x, rotation_targets(pipeline.rotnet, predicted, len(x))),
         lambda i: f"RotNet: {predicted[i]:g}° ({rot_proba[i].max():.2f})"),
        (x, clf_cam(x, before_p.argmax(1)),
         lambda i: f"before: {_class_name(class_names, before_p[i].argmax())}"
                   f" ({before_p[i].max():.2f})"),
        (corrected, None, lambda i: f"corrected by {0.0 - predicted[i]:g}°"),
        (corrected, clf_cam(corrected, after_p.argmax(1)),
         lambda i: f"after: {_class_name(class_names, after_p[i].argmax())}"
                   f" ({after_p[i].max():.2f})"),
    ]
    rows = _row_names(labels, class_names, len(x))
    fig, axes = _grid(len(x), len(columns), title or f"RISC, {method}: "
                      f"RotNet at {rot_cam.layer.name}, classifier at {clf_cam.layer.name}")
    for j, (imgs, maps, text) in enumerate(columns):
        shown = to_rgb(imgs) if maps is None else overlay(imgs, maps)
        for i in range(len(x)):
            _panel(axes[i, j], shown[i], text(i), rows[i] if j == 0 else None)
    return _finish(fig, path)


def layer_figure(
    model: keras.Model,
    images,
    *,
    layers: Sequence[str] | None = None,
    targets=None,
    method: str = "gradcam",
    max_n: int | None = None,
    title: str | None = None,
    path: str | os.PathLike | None = None,
    fill: str = "constant",
) -> Figure:
    """The same target explained at several layers: one row per image, one column per layer.

    Parameters
    ----------
    model : keras.Model
        A classifier or a RotNet.
    images : array_like
        Images in any accepted form.
    layers : sequence of str, optional
        Layer names; default: every stage output
        (:func:`~risc_tf.explain.stage_layers`), shallow to deep.
    targets : int, sequence of int or None
        Output units to explain; None: the predicted ones.
    method, max_n, title, path, fill
        As in :func:`classifier_rotation_figure`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> layer_figure(clf, x_test[:3], path="layers.png")  # doctest: +SKIP
    """
    if layers is None:
        layers = [layer.name for layer in stage_layers(model)]
    maps = layer_heatmaps(model, images, layers, targets=targets, method=method, max_n=max_n,
                          fill=fill)
    rgb = to_rgb(images)
    fig, axes = _grid(len(rgb), len(maps) + 1, title or f"{model.name}: {method} by layer")
    for i in range(len(rgb)):
        _panel(axes[i, 0], rgb[i], "input", f"image {i}")
        for j, (name, m) in enumerate(maps.items(), start=1):
            side = model.get_layer(name).output.shape[1:3]
            _panel(axes[i, j], overlay(rgb[i], m.reshape(len(rgb), *m.shape[-2:])[i]),
                   f"{name}\n{side[0]}x{side[1]}")
    return _finish(fig, path)
