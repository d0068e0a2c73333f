"""Input normalisation: the one place where images become model input.

Every image that reaches a risc_tf model goes through two steps:

1. :func:`check_images` validates a numpy batch once, at the boundary (shape,
   dtype, value range, NaN/inf), and returns it as a rank-4 array.
2. :func:`to_model_input` turns a validated batch into float32
   ``(N, size, size, 3)`` in ``[0, 1]`` (grayscale stacked to RGB, bilinear
   resize). It is pure TensorFlow, so tf.data pipelines and the fused
   :class:`~risc_tf.RISCPipeline` graph call the very same code.

Backbone-specific normalisation (e.g. ResNet50's ImageNet "caffe" mode) is
*not* done here: it is the first layer of every model built by risc_tf
(:class:`InputNormalization`), so it is saved with the model and is identical at
training and at predict time.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

__all__ = [
    "NORMALIZATION_MODES",
    "InputNormalization",
    "check_images",
    "preprocess_images",
    "to_model_input",
]

#: Modes of :class:`InputNormalization`. ``"unit"`` feeds [0, 1] images as they
#: are (models trained from scratch); ``"raw"`` scales to [0, 255] (backbones
#: such as EfficientNet that normalise internally); ``"caffe"``, ``"tf"`` and
#: ``"torch"`` are keras.applications' ImageNet ``preprocess_input`` modes.
NORMALIZATION_MODES = ("unit", "raw", "caffe", "tf", "torch")

_MIN_SIDE = 4


def check_images(images, name: str = "images") -> tuple[np.ndarray, bool]:
    """Validate an image array and return it as a rank-4 batch.

    Accepted forms: ``(H, W)`` (one grayscale image), ``(H, W, 1|3)`` (one
    image), ``(N, H, W)``, ``(N, H, W, 1)`` and ``(N, H, W, 3)``. A rank-3 array
    whose last axis is 1 or 3 is read as one image, any other rank-3 array as a
    batch of grayscale images. Values are uint8 in [0, 255] or floating point in
    [0, 1].

    Parameters
    ----------
    images : array_like
        The images.
    name : str
        How to call the argument in error messages.

    Returns
    -------
    batch : np.ndarray
        Rank-4 ``(N, H, W, C)`` view of the input (C is 1 or 3), dtype unchanged.
    single : bool
        True when the input was one image (callers return one result).

    Raises
    ------
    ValueError
        Empty batch, wrong rank or channel count, too small, float values outside
        [0, 1], NaN or inf, or an unsupported dtype.
    """
    if isinstance(images, tf.Tensor):
        images = images.numpy()
    x = np.asarray(images)
    if x.dtype == object or not (
        x.dtype == np.uint8 or np.issubdtype(x.dtype, np.floating)
    ):
        raise ValueError(
            f"{name} must be uint8 in [0, 255] or float in [0, 1]; got dtype {x.dtype} "
            f"with shape {x.shape}"
        )
    single = False
    if x.ndim == 2:
        x, single = x[None, :, :, None], True
    elif x.ndim == 3 and x.shape[-1] in (1, 3):
        x, single = x[None], True
    elif x.ndim == 3:
        x = x[..., None]
    elif x.ndim != 4:
        raise ValueError(
            f"{name} must have shape (H, W), (H, W, C), (N, H, W) or (N, H, W, C); "
            f"got rank {x.ndim} with shape {x.shape}"
        )
    if x.shape[-1] not in (1, 3):
        raise ValueError(
            f"{name} must have 1 or 3 channels; got shape {np.shape(images)} "
            f"({x.shape[-1]} channels)"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {np.shape(images)})")
    if min(x.shape[1], x.shape[2]) < _MIN_SIDE:
        raise ValueError(
            f"{name} must be at least {_MIN_SIDE}x{_MIN_SIDE} pixels; got shape "
            f"{np.shape(images)}"
        )
    if x.dtype != np.uint8:
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} contains NaN or inf (shape {np.shape(images)})")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"float {name} must lie in [0, 1]; got values in [{lo:g}, {hi:g}] "
                f"(dtype {x.dtype}). Divide uint8-range floats by 255."
            )
    return x, single


def to_model_input(images: tf.Tensor, size: int | None = 32) -> tf.Tensor:
    """Convert a rank-4 uint8/float batch to float32 ``(N, size, size, 3)`` in [0, 1].

    Pure TensorFlow (usable inside ``tf.data`` and ``tf.function``); the input is
    assumed to have passed :func:`check_images`. ``size=None`` keeps the images'
    own height and width (for display).
    """
    x = tf.convert_to_tensor(images)
    if x.dtype == tf.uint8:
        x = tf.cast(x, tf.float32) / 255.0
    else:
        x = tf.cast(x, tf.float32)
    if x.shape[-1] == 1:
        x = tf.image.grayscale_to_rgb(x)
    if size is not None and (x.shape[1] != size or x.shape[2] != size):
        x = tf.image.resize(x, (size, size), method="bilinear", antialias=True)
        x = tf.clip_by_value(x, 0.0, 1.0)
    return x


def preprocess_images(images, size: int = 32) -> np.ndarray:
    """Validate images and return the model-ready float32 batch.

    Parameters
    ----------
    images : array_like
        Any form accepted by :func:`check_images`.
    size : int, default 32
        Side of the square model input (32 as in the RISC paper).

    Returns
    -------
    np.ndarray
        float32 ``(N, size, size, 3)`` in [0, 1] (N = 1 for a single image).

    Examples
    --------
    >>> import numpy as np
    >>> preprocess_images(np.zeros((28, 28), np.uint8)).shape
    (1, 32, 32, 3)
    """
    if not isinstance(size, (int, np.integer)) or size < _MIN_SIDE:
        raise ValueError(f"size must be an int >= {_MIN_SIDE}; got {size!r}")
    x, _ = check_images(images)
    return to_model_input(x, int(size)).numpy()


@keras.saving.register_keras_serializable(package="risc_tf")
class InputNormalization(keras.layers.Layer):
    """Map [0, 1] RGB input to what a backbone expects.

    The first layer of every risc_tf model: the normalisation follows the
    backbone and its weights and is saved with the model.

    Parameters
    ----------
    mode : {"unit", "raw", "caffe", "tf", "torch"}
        See :data:`NORMALIZATION_MODES`.
    """

    def __init__(self, mode: str = "unit", **kwargs):
        super().__init__(**kwargs)
        if mode not in NORMALIZATION_MODES:
            raise ValueError(
                f"mode must be one of {NORMALIZATION_MODES}; got {mode!r}"
            )
        self.mode = mode

    def call(self, inputs):
        if self.mode == "unit":
            return inputs
        x = inputs * 255.0
        if self.mode == "raw":
            return x
        return keras.applications.imagenet_utils.preprocess_input(x, mode=self.mode)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
