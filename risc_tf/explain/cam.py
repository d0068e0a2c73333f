"""Class activation maps (Grad-CAM, Grad-CAM++, Score-CAM) on tf-keras-vis.

:class:`CAM` wraps one tf-keras-vis method for one model and one layer. Calling
it on images (any form :func:`risc_tf.check_images` accepts) runs

``check_images -> to_model_input -> tf-keras-vis at the layer's resolution ->
bilinear resize to the input's (H, W) -> per-image min-max to [0, 1]``

so heatmaps line up with the images as they were given (e.g. 28x28 MedMNIST
images shown to a 32x32 model give 28x28 heatmaps).

Scores are taken on the **logits**: when the model ends in a softmax ``Dense``
(every risc_tf classifier and RotNet), tf-keras-vis sees a view of the model
whose last layer shares that ``Dense``'s weights without the softmax (what
tf-keras-vis' ``ReplaceToLinear`` does, without cloning the model). Grad-CAM
then uses the class logit, Grad-CAM++ its exponential, and Score-CAM the
softmax of the masked inputs' logits, as in the three papers (see References
of :class:`CAM`).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from tf_keras_vis.utils.scores import CategoricalScore

from risc_tf.angles import check_fill, match_angles
from risc_tf.explain.layers import resolve_layer
from risc_tf.explain.methods import engine
from risc_tf.inputs import run_in_batches
from risc_tf.models import model_image_size, rotnet_angles
from risc_tf.preprocessing import check_images, to_model_input
from risc_tf.rotation import apply_fill
from risc_tf.validation import check_int, check_optional_int

__all__ = [
    "CAM",
    "classifier_heatmaps",
    "layer_heatmaps",
    "logit_model",
    "model_input",
    "normalize_maps",
    "predict_proba",
    "resize_maps",
    "rotation_targets",
    "rotnet_heatmaps",
    "target_score",
]

# -- small utilities ---------------------------------------------------------------
class _Logits(keras.layers.Layer):
    """The logits of a softmax ``Dense`` layer, sharing its weights."""

    def __init__(self, dense: keras.layers.Dense, **kwargs):
        super().__init__(**kwargs)
        self.dense = dense

    def call(self, x):
        out = keras.ops.matmul(x, self.dense.kernel)
        return out + self.dense.bias if self.dense.use_bias else out


def logit_model(model: keras.Model) -> keras.Model:
    """A view of ``model`` that outputs logits when it ends in a softmax ``Dense`` layer.

    The view shares every weight with ``model`` (nothing is copied). Models that
    end otherwise are returned unchanged.
    """
    last = model.layers[-1]
    if isinstance(last, keras.layers.Dense) and last.activation is keras.activations.softmax:
        return keras.Model(model.inputs, _Logits(last, name="logits")(last.input))
    return model


def target_score(targets: Sequence[int]) -> CategoricalScore:
    """The tf-keras-vis score of output unit ``targets[i]`` for image ``i``."""
    return CategoricalScore([int(t) for t in targets])


def model_input(model: keras.Model, images, *,
                fill: str = "constant") -> tuple[tf.Tensor, bool, tuple[int, int]]:
    """Validate images and convert them to ``model``'s input (with the models' ``fill``).

    Returns
    -------
    x : tf.Tensor
        float32 ``(N, S, S, 3)`` in [0, 1].
    single : bool
        The input was one image.
    size : (int, int)
        The input images' ``(H, W)``.
    """
    batch, single = check_images(images)
    x = apply_fill(to_model_input(batch, model_image_size(model)), fill)
    return x, single, tuple(batch.shape[1:3])


def predict_proba(model: keras.Model, images, *, batch_size: int = 256) -> np.ndarray:
    """``model``'s output ``(N, K)`` on images in any accepted form (``(K,)`` for one image)."""
    x, single, _ = model_input(model, images)
    out = run_in_batches(lambda batch: model(batch, training=False), x.numpy(), batch_size)
    return out[0] if single else out


def resize_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of ``(N, h, w)`` maps to ``(N, *size)`` (pixel centres aligned)."""
    maps = np.asarray(maps, np.float32)
    if maps.shape[1:3] == tuple(size):
        return maps
    return tf.image.resize(maps[..., None], size, method="bilinear").numpy()[..., 0]


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """Scale each ``(h, w)`` map of ``(N, h, w)`` to [0, 1]; a constant map becomes 0."""
    maps = np.asarray(maps, np.float32)
    lo = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - lo
    return np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1.0), 0.0).astype(np.float32)


def _check_targets(targets, n: int, units: int, what: str) -> np.ndarray:
    t = np.asarray(targets)
    if t.ndim == 0:
        t = np.full(n, t)
    if t.ndim != 1 or len(t) != n or not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"{what} must be an int or {n} ints (one per image); got {targets!r}")
    if t.min() < 0 or t.max() >= units:
        raise ValueError(f"{what} must lie in [0, {units}); got {targets!r}")
    return t.astype(np.int64)


def rotation_targets(rotnet: keras.Model, angles, n: int) -> np.ndarray:
    """Output units of a RotNet for rotations given in degrees (one, or one per image).

    Raises
    ------
    ValueError
        An angle that is not in the RotNet's angle set (modulo 360).
    """
    given = np.atleast_1d(np.asarray(angles, np.float64))
    if given.ndim != 1 or len(given) not in (1, n):
        raise ValueError(f"angle must be one angle or {n} angles (one per image); got {angles!r}")
    index = match_angles(given, rotnet_angles(rotnet))
    if np.any(index < 0):
        raise ValueError(
            f"angle {given[index < 0].tolist()} not in the RotNet's angle set "
            f"{rotnet_angles(rotnet)}"
        )
    return np.broadcast_to(index, (n,)).astype(np.int64)


# -- the CAM object ----------------------------------------------------------------
class CAM:
    """One CAM method for one model at one layer.

    Parameters
    ----------
    model : keras.Model
        A risc_tf classifier or RotNet (any flat functional image model works).
    method : {"gradcam", "gradcam++", "scorecam"}, default "gradcam"
    layer : str or None
        Feature layer name; None for :func:`~risc_tf.explain.layers.default_layer`.
        Used as named (never swapped for the convolution before it).
    max_n : int, optional
        Score-CAM only: keep the ``max_n`` channels with the largest spatial
        variance (Faster-Score-CAM [4]_); values above the layer's channel count
        mean all channels. None: every channel.
    batch_size : int, default 32
        Images per tf-keras-vis call (Score-CAM runs ``batch_size * channels``
        masked images per call).
    fill : {"constant", "reflect", "circle"}, default "constant"
        The fill the model was trained with (``"circle"`` masks every image, as
        the pipeline does).

    References
    ----------
    .. [1] R. R. Selvaraju et al., "Grad-CAM: Visual Explanations from Deep
       Networks via Gradient-based Localization", ICCV 2017.
    .. [2] A. Chattopadhay et al., "Grad-CAM++: Generalized Gradient-Based Visual
       Explanations for Deep Convolutional Networks", WACV 2018.
    .. [3] H. Wang et al., "Score-CAM: Score-Weighted Visual Explanations for
       Convolutional Neural Networks", CVPR Workshops 2020.
    .. [4] Faster-Score-CAM (the ``max_n`` variant): the tabayashi0117/Score-CAM
       repository, as implemented by tf-keras-vis' ``Scorecam(max_N=...)``.

    Examples
    --------
    >>> cam = CAM(build_classifier(2, backbone="small"), method="gradcam++")  # doctest: +SKIP
    >>> cam(np.zeros((5, 28, 28), np.uint8)).shape  # doctest: +SKIP
    (5, 28, 28)
    """

    def __init__(
        self,
        model: keras.Model,
        *,
        method: str = "gradcam",
        layer: str | None = None,
        max_n: int | None = None,
        batch_size: int = 32,
        fill: str = "constant",
    ):
        make_engine = engine(method)  # validates the name first
        if max_n is not None and method != "scorecam":
            raise ValueError(f"max_n is a Score-CAM option; method {method!r} takes no max_n")
        max_n = check_optional_int("max_n", max_n)
        batch_size = check_int("batch_size", batch_size)
        self.model, self.method, self.batch_size = model, method, batch_size
        self.fill = check_fill(fill)
        self.layer = resolve_layer(model, layer)
        shape = tuple(self.layer.output.shape[1:])
        self.max_n = None if max_n is None else min(max_n, int(shape[-1]))
        if min(shape[:2]) == 1:
            warnings.warn(
                f"layer {self.layer.name!r} has a {shape[0]}x{shape[1]} output: its CAM is one "
                "number per image, so the heatmap is constant (all 0). Choose a larger layer "
                "(see risc_tf.explain.stage_layers).",
                UserWarning,
                stacklevel=2,
            )
        view = logit_model(model)
        if view is model:  # a view of our own: the caller's model is never modified
            view = keras.Model(model.inputs, model.outputs)
        # Score-CAM calls view.predict() without verbose=; keep its progress bars quiet.
        view.predict = functools.partial(view.predict, verbose=0)
        self._engine = make_engine(view, clone=False)

    def __repr__(self) -> str:
        return (f"CAM(model={self.model.name!r}, method={self.method!r}, "
                f"layer={self.layer.name!r}, max_n={self.max_n})")

    def raw(self, x: tf.Tensor, targets: np.ndarray) -> np.ndarray:
        """Unnormalised non-negative maps ``(N, h, w)`` at the layer's resolution.

        ``x`` is model input (float32 ``(N, S, S, 3)``), ``targets`` the output
        unit explained for each image.
        """
        options = dict(penultimate_layer=self.layer, seek_penultimate_conv_layer=False,
                       expand_cam=False, normalize_cam=False)
        if self.method == "scorecam":
            options.update(max_N=self.max_n, batch_size=self.batch_size)

        def maps(chunk: tf.Tensor, units: tf.Tensor) -> np.ndarray:
            cam = self._engine(target_score(units), chunk, **options)
            return np.asarray(cam, np.float32).reshape(len(chunk), *cam.shape[-2:])

        return run_in_batches(maps, (x, np.asarray(targets)), self.batch_size)

    def __call__(self, images, targets=None) -> np.ndarray:
        """Heatmaps of images in any accepted form.

        Parameters
        ----------
        images : array_like
            Any form :func:`risc_tf.check_images` accepts.
        targets : int, sequence of int or None
            Output unit to explain (one for all images, or one per image); None
            explains each image's predicted unit.

        Returns
        -------
        np.ndarray
            float32 ``(N, H, W)`` in [0, 1] at the images' own resolution
            (``(H, W)`` for a single image).
        """
        x, single, size = model_input(self.model, images, fill=self.fill)
        units = int(self.model.output_shape[-1])
        if targets is None:
            targets = predict_proba(self.model, x).argmax(axis=1)
        targets = _check_targets(targets, len(x), units, "targets")
        maps = normalize_maps(resize_maps(self.raw(x, targets), size))
        return maps[0] if single else maps


# -- public one-call functions --------------------------------------------------------
def classifier_heatmaps(
    classifier: keras.Model,
    images,
    *,
    class_index=None,
    method: str = "gradcam",
    layer: str | None = None,
    max_n: int | None = None,
    batch_size: int = 32,
    fill: str = "constant",
) -> np.ndarray:
    """Where a classifier looks: CAM heatmaps for the predicted or a given class.

    Parameters
    ----------
    classifier : keras.Model
        From :func:`risc_tf.build_classifier` (or any softmax image classifier).
    images : array_like
        Any form :func:`risc_tf.check_images` accepts.
    class_index : int, sequence of int or None
        Class to explain, for all images or per image; None: the predicted class.
    method, layer, max_n, batch_size, fill
        As in :class:`CAM`.

    Returns
    -------
    np.ndarray
        float32 ``(N, H, W)`` in [0, 1] at the images' resolution (``(H, W)`` for one image).

    Examples
    --------
    >>> maps = classifier_heatmaps(clf, x_test[:8], method="scorecam", max_n=16)  # doctest: +SKIP
    >>> maps.shape, float(maps.min()) >= 0, float(maps.max()) <= 1  # doctest: +SKIP
    ((8, 28, 28), True, True)
    """
    cam = CAM(classifier, method=method, layer=layer, max_n=max_n, batch_size=batch_size,
              fill=fill)
    return cam(images, class_index)


def rotnet_heatmaps(
    rotnet: keras.Model,
    images,
    *,
    angle=None,
    method: str = "gradcam",
    layer: str | None = None,
    max_n: int | None = None,
    batch_size: int = 32,
    fill: str = "constant",
) -> np.ndarray:
    """Where a RotNet looks: CAM heatmaps for the predicted or a given rotation.

    Parameters
    ----------
    rotnet : keras.Model
        From :func:`risc_tf.build_rotnet` (its angles are read from its last layer).
    images : array_like
        Any form :func:`risc_tf.check_images` accepts.
    angle : float, sequence of float or None
        Rotation (degrees, from the RotNet's angle set) to explain, for all
        images or per image; None: the predicted rotation.
    method, layer, max_n, batch_size, fill
        As in :class:`CAM`.

    Returns
    -------
    np.ndarray
        float32 ``(N, H, W)`` in [0, 1] (``(H, W)`` for one image).

    Examples
    --------
    >>> rotnet_heatmaps(rotnet, x[:4], angle=90).shape  # doctest: +SKIP
    (4, 28, 28)
    """
    cam = CAM(rotnet, method=method, layer=layer, max_n=max_n, batch_size=batch_size, fill=fill)
    if angle is None:
        return cam(images)
    n = len(check_images(images)[0])
    return cam(images, rotation_targets(rotnet, angle, n))


def layer_heatmaps(
    model: keras.Model,
    images,
    layers: Sequence[str],
    *,
    targets=None,
    method: str = "gradcam",
    max_n: int | None = None,
    batch_size: int = 32,
    fill: str = "constant",
) -> dict[str, np.ndarray]:
    """Heatmaps of the same targets at several layers, ``{layer name: (N, H, W)}``.

    Parameters
    ----------
    model : keras.Model
        A classifier or a RotNet.
    images : array_like
        Any form :func:`risc_tf.check_images` accepts.
    layers : sequence of str
        Layer names (e.g. those of :func:`~risc_tf.explain.stage_layers`); all
        are validated before any work is done. Layers with a 1x1 output are
        allowed here without a warning (their maps are all 0).
    targets : int, sequence of int or None
        Output units as in :meth:`CAM.__call__`; None: the predicted ones,
        computed once (on the images as the model sees them, ``fill`` applied)
        for all layers.
    method, max_n, batch_size, fill
        As in :class:`CAM`.

    Returns
    -------
    dict of str to np.ndarray
        float32 ``(N, H, W)`` maps in [0, 1] per layer, in the order given
        (``(H, W)`` for one image).

    Raises
    ------
    ValueError
        A layer that cannot be explained (see
        :func:`~risc_tf.explain.resolve_layer`), or a bad option or target.

    Examples
    --------
    >>> maps = layer_heatmaps(clf, x[:2], ["block2_relu2", "block3_relu2"])  # doctest: +SKIP
    >>> {name: m.shape for name, m in maps.items()}  # doctest: +SKIP
    {'block2_relu2': (2, 28, 28), 'block3_relu2': (2, 28, 28)}
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 1x1 layers are shown on purpose
        cams = [CAM(model, method=method, layer=name, max_n=max_n, batch_size=batch_size,
                    fill=fill) for name in layers]
    if targets is None:  # predicted on what the model sees, as CAM.__call__ does
        x, _, _ = model_input(model, images, fill=fill)
        targets = predict_proba(model, x).argmax(axis=1)
    return {cam.layer.name: cam(images, targets) for cam in cams}
