"""Heatmaps drawn over images: RGB uint8 arrays for figures and files."""

from __future__ import annotations

import matplotlib
import numpy as np

from risc_tf.explain.cam import resize_maps
from risc_tf.preprocessing import check_images, to_model_input

__all__ = ["overlay", "to_rgb"]


def to_rgb(images) -> np.ndarray:
    """Images in any accepted form as float32 RGB ``(N, H, W, 3)`` in [0, 1], for display.

    Unlike the model input the images keep their size.
    """
    x, _ = check_images(images)
    return to_model_input(x, size=None).numpy()


def overlay(images, heatmaps, *, alpha: float = 0.45, cmap: str = "jet") -> np.ndarray:
    """Blend heatmaps, coloured with a matplotlib colormap, over images.

    Parameters
    ----------
    images : array_like
        Any form :func:`risc_tf.check_images` accepts (uint8 or [0, 1] floats,
        grayscale or RGB, one image or a batch).
    heatmaps : array_like
        ``(N, h, w)`` (or ``(h, w)`` for one image) in [0, 1]; resized
        bilinearly when ``(h, w)`` differs from the images' size.
    alpha : float, default 0.45
        Weight of the heatmap colour (0: image only, 1: heatmap only).
    cmap : str, default "jet"
        A matplotlib colormap name.

    Returns
    -------
    np.ndarray
        uint8 RGB ``(N, H, W, 3)`` (``(H, W, 3)`` for one image).

    Raises
    ------
    ValueError
        Mismatched image and heatmap counts, heatmaps outside [0, 1] or not 2D
        maps, ``alpha`` outside [0, 1], or an unknown colormap.

    Examples
    --------
    >>> import numpy as np
    >>> overlay(np.zeros((2, 28, 28), np.uint8), np.ones((2, 28, 28))).shape
    (2, 28, 28, 3)
    """
    x, single = check_images(images)
    rgb = to_rgb(x)
    h = np.asarray(heatmaps, np.float32)
    if h.ndim == 2:
        h = h[None]
    if h.ndim != 3 or len(h) != len(rgb):
        raise ValueError(
            f"heatmaps must be (N, h, w) with N = {len(rgb)} images; got shape "
            f"{np.shape(heatmaps)}"
        )
    if not np.all(np.isfinite(h)) or h.min() < 0.0 or h.max() > 1.0:
        raise ValueError(
            f"heatmaps must lie in [0, 1]; got values in [{np.nanmin(h):g}, {np.nanmax(h):g}]"
        )
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1]; got {alpha!r}")
    try:
        colormap = matplotlib.colormaps[cmap]
    except KeyError:
        raise ValueError(f"unknown matplotlib colormap {cmap!r}") from None
    h = np.clip(resize_maps(h, rgb.shape[1:3]), 0.0, 1.0)
    colour = colormap(h)[..., :3].astype(np.float32)
    out = np.round(255.0 * ((1.0 - alpha) * rgb + alpha * colour)).astype(np.uint8)
    return out[0] if single else out
