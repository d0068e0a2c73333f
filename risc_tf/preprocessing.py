"""Input normalisation: the one place where images become model input.

Every image that reaches a risc_tf model goes through two steps:

1. :func:`check_images` validates an array batch once, at the boundary (shape,
   layout, dtype, value range, NaN/inf), and returns it as a rank-4 array.
2. :func:`to_model_input` turns a validated batch into float32
   ``(N, size, size, 3)`` in ``[0, 1]``. It is pure TensorFlow, so tf.data
   pipelines and the fused :class:`~risc_tf.RISCPipeline` graph call the very
   same code.

Conventions:

* **Values.** uint8 is read as [0, 255]; uint16 as [0, 65535] (the full range of
  the type: a 12-bit X-ray stored in 16 bits looks dark; stretch it first if
  that matters); other integer types must hold values in [0, 255]; floats must
  lie in [0, 1].
* **Channels.** 1 (grayscale, stacked to RGB), 3 (RGB) or 4 (RGBA: composited
  over black, i.e. colour times alpha, so transparent areas become background).
* **Layout.** Channels last. ``(H, W)`` and ``(H, W, C)`` with C in 1, 3, 4 are
  one image; ``(N, H, W)`` and ``(N, H, W, C)`` are batches. A ``(3, H, W)``
  array is a batch of three grayscale images (with a warning that a
  channels-first image must be moved to ``(H, W, 3)``); a ``(N, C, H, W)``
  array is refused with the same hint.
* **Size.** Images are resized (bilinear, antialiased) to the model's square
  input. A non-square image is stretched to square, as MedMNIST's own
  preprocessing resized its sources; crop or pad it first to keep its aspect
  ratio.

Backbone-specific normalisation (e.g. ResNet50's ImageNet "caffe" mode) is not
done here: it is the first layer of every model (see :mod:`risc_tf.models`).
"""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf

from risc_tf.validation import MIN_SIDE, check_int

__all__ = ["check_images", "preprocess_images", "to_model_input"]

_CHANNELS = (1, 3, 4)
_LAYOUTS = "(H, W), (H, W, C), (N, H, W) or (N, H, W, C) with C in 1, 3, 4 (RGBA)"


def _as_array(images, name: str) -> np.ndarray:
    if isinstance(images, (tf.Tensor, tf.Variable)):
        return images.numpy()
    if isinstance(images, tf.data.Dataset):
        raise ValueError(
            f"{name} is a tf.data.Dataset: RISCPipeline.predict streams datasets; "
            "array functions need arrays"
        )
    try:
        return np.asarray(images)
    except ValueError:  # ragged nested lists
        raise ValueError(
            f"{name} must be one array of same-sized images; got a ragged sequence. "
            "RISCPipeline.predict takes a list of differently sized images."
        ) from None


def _check_dtype(x: np.ndarray, name: str) -> np.ndarray:
    if x.dtype in (np.uint8, np.uint16):
        return x
    if np.issubdtype(x.dtype, np.integer):
        lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
        if lo < 0 or hi > 255:
            raise ValueError(
                f"{name} of dtype {x.dtype} must hold values in [0, 255]; got [{lo}, {hi}]. "
                "uint16 images are read as [0, 65535]; floats must lie in [0, 1]."
            )
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.floating):
        if x.size and not np.all(np.isfinite(x)):
            raise ValueError(f"{name} contains NaN or inf (shape {x.shape})")
        lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"float {name} must lie in [0, 1]; got values in [{lo:g}, {hi:g}] "
                f"(dtype {x.dtype}). Divide uint8-range floats by 255."
            )
        return x
    raise ValueError(
        f"{name} must be uint8, uint16, another integer type in [0, 255] or float in "
        f"[0, 1]; got dtype {x.dtype} with shape {x.shape}"
    )


def _to_rank4(x: np.ndarray, name: str, warn_layout: bool) -> tuple[np.ndarray, bool]:
    shape = x.shape
    if x.ndim == 2:
        return x[None, :, :, None], True
    if x.ndim == 3 and shape[-1] in _CHANNELS:
        return x[None], True
    if x.ndim == 3:
        if warn_layout and shape[0] == 3 and shape[1] > 4 and shape[2] > 4:
            warnings.warn(
                f"{name} of shape {shape} are read as a batch of {shape[0]} grayscale "
                f"{shape[1]}x{shape[2]} images; a channels-first colour image must be "
                "passed as (H, W, C): np.moveaxis(image, 0, -1)",
                UserWarning,
                stacklevel=4,
            )
        return x[..., None], False
    if x.ndim == 4 and shape[-1] in _CHANNELS:
        return x, False
    if x.ndim == 4 and shape[1] in _CHANNELS:
        raise ValueError(
            f"{name} of shape {shape} look channels-first (N, C, H, W); risc_tf takes "
            "channels last: np.moveaxis(images, 1, -1)"
        )
    if x.ndim == 4:
        raise ValueError(
            f"{name} must have 1, 3 or 4 channels (last axis); got shape {shape} "
            f"({shape[-1]} channels)"
        )
    raise ValueError(f"{name} must have shape {_LAYOUTS}; got rank {x.ndim} with shape {shape}")


def check_images(images, name: str = "images",
                 warn_layout: bool = True) -> tuple[np.ndarray, bool]:
    """Validate an image array and return it as a rank-4 batch.

    Parameters
    ----------
    images : array_like or tf.Tensor
        One image or a batch of same-sized images; see the module docs for the
        accepted layouts, dtypes and value ranges.
    name : str
        How to call the argument in error messages.
    warn_layout : bool, default True
        Warn when a ``(3, H, W)`` array may be one channels-first image (off for
        the batches of a stream, whose size may well be 3).

    Returns
    -------
    batch : np.ndarray
        Rank-4 ``(N, H, W, C)`` (C in 1, 3, 4), dtype uint8, uint16 or float
        (other integer types become uint8).
    single : bool
        True when the input was one image (callers return one result).

    Raises
    ------
    ValueError
        Empty batch, ragged input, wrong rank or channel count (with a hint for
        channels-first arrays), images smaller than 4x4, values out of range,
        NaN or inf, or an unsupported dtype.

    Examples
    --------
    >>> check_images(np.zeros((28, 28, 4), np.uint8))[0].shape  # one RGBA image
    (1, 28, 28, 4)
    """
    x = _check_dtype(_as_array(images, name), name)
    x, single = _to_rank4(x, name, warn_layout)
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {np.shape(images)})")
    if min(x.shape[1], x.shape[2]) < MIN_SIDE:
        raise ValueError(
            f"{name} must be at least {MIN_SIDE}x{MIN_SIDE} pixels; got shape {np.shape(images)}"
        )
    return x, single


def _to_rgb(x: tf.Tensor) -> tf.Tensor:
    """1, 3 or 4 channels to RGB: grayscale stacked, RGBA composited over black."""
    convert = {1: lambda: tf.tile(x[..., :1], [1, 1, 1, 3]), 3: lambda: x[..., :3],
               4: lambda: x[..., :3] * x[..., 3:4]}
    channels = x.shape[-1]
    if channels is not None:
        return convert[channels]()
    # known only when the graph runs (a serving signature): the same three conversions as
    # one gather and a product, no branch (a switch has no ONNX counterpart)
    count = tf.shape(x)[-1]
    rgb = tf.gather(x, tf.minimum(tf.range(3), count - 1), axis=-1)  # 1: (0, 0, 0); 3, 4: (0, 1, 2)
    alpha = tf.where(tf.equal(count, 4), x[..., -1:], tf.ones_like(x[..., :1]))
    return tf.ensure_shape(rgb * alpha, [None, None, None, 3])


def to_model_input(images: tf.Tensor, size: int | None = 32) -> tf.Tensor:
    """Convert a rank-4 batch to float32 ``(N, size, size, 3)`` in [0, 1].

    Pure TensorFlow (usable inside ``tf.data`` and ``tf.function``, with static or
    dynamic image size and channel count); the input is assumed to have passed
    :func:`check_images`. Images already at ``size`` are not resampled.
    ``size=None`` keeps the images' own height and width (for display).
    """
    x = tf.convert_to_tensor(images)
    if x.dtype == tf.uint8:
        x = tf.cast(x, tf.float32) / 255.0
    elif x.dtype == tf.uint16:
        x = tf.cast(x, tf.float32) / 65535.0
    else:
        x = tf.cast(x, tf.float32)
    x = _to_rgb(x)
    if size is None or (x.shape[1] == size and x.shape[2] == size):
        return x

    def resize():
        y = tf.image.resize(x, (size, size), method="bilinear", antialias=True)
        return tf.clip_by_value(y, 0.0, 1.0)

    if x.shape[1] is not None and x.shape[2] is not None:
        return resize()
    same = tf.logical_and(tf.equal(tf.shape(x)[1], size), tf.equal(tf.shape(x)[2], size))
    return tf.ensure_shape(tf.cond(same, lambda: x, resize), [None, size, size, 3])


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
    size = check_int("size", size, MIN_SIDE)
    x, _ = check_images(images)
    return to_model_input(x, size).numpy()
