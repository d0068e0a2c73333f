"""Convolutions of tiny feature maps, rewritten as matrix products.

The arithmetic behind :class:`risc_tf.fast.FastConv2D`, as plain functions
of static shapes and tensors, and the three plans they give (one small typed
value each: :class:`TapPlan`, :class:`DensePlan`, :class:`FlipPlan`):

- :func:`fast_conv_plan`: when a convolution is one kernel tap (every 1x1
  convolution; a 3x3 "same" convolution of a 1x1 map), i.e. a matmul;
- :func:`dense_conv_taps`: a convolution of a tiny map as one dense matrix,
  block by block the kernel tap linking each input pixel to each output pixel;
- :func:`conv_flipped_input_grad`: a stride-1 "same" convolution whose input
  gradient is computed as a forward convolution with the flipped kernel.

Pixel positions are flattened row-major throughout.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
import tensorflow as tf

__all__ = [
    "DensePlan",
    "FlipPlan",
    "TapPlan",
    "conv_flipped_input_grad",
    "dense_conv_taps",
    "fast_conv_plan",
    "flip_grad_applies",
]


class TapPlan(NamedTuple):
    """A convolution that is one kernel tap: ``x[:, r0::sh, c0::sw] @ kernel[tap_row, tap_col]``."""

    tap_row: int
    tap_col: int
    first_row: int
    first_col: int
    out_h: int
    out_w: int
    kind = "tap"


class DensePlan(NamedTuple):
    """A convolution of a tiny map as one dense matmul; ``taps[p, o]`` links pixel pairs."""

    taps: np.ndarray
    out_h: int
    out_w: int
    kind = "dense"


@dataclasses.dataclass(frozen=True)
class FlipPlan:
    """The stock forward convolution with the flipped-kernel input gradient."""

    kind = "flip"


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TF "same" padding for one axis: (pad_before, pad_after, output_size)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


def _geometry(input_hw, kernel_size, strides, padding):
    """(pad_top, pad_left, out_h, out_w) of a convolution, or None if unknown/empty."""
    (h, w), (kh, kw), (sh, sw) = input_hw, kernel_size, strides
    if h is None or w is None:
        return None
    if padding == "same":
        (top, _, oh), (left, _, ow) = _same_padding(h, kh, sh), _same_padding(w, kw, sw)
    elif padding == "valid":
        top = left = 0
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    else:
        return None
    if oh < 1 or ow < 1:
        return None
    return top, left, oh, ow


def fast_conv_plan(
    input_hw: tuple[int | None, int | None],
    kernel_size: tuple[int, int],
    strides: tuple[int, int],
    padding: str,
) -> TapPlan | None:
    """Whether a convolution reduces to one matmul, and how.

    A convolution reduces to a single matrix product when exactly one kernel tap
    ever meets real (unpadded) input: every 1x1 convolution, and e.g. a 3x3
    "same" convolution of a 1x1 map.

    Parameters
    ----------
    input_hw : (int or None, int or None)
        Static input height and width (None: unknown, never rewritten).
    kernel_size, strides : pairs of int
    padding : {"valid", "same"}

    Returns
    -------
    TapPlan or None
        ``(tap_row, tap_col, first_row, first_col, out_h, out_w)``: use kernel tap
        ``(tap_row, tap_col)`` on ``x[:, first_row::stride_h, first_col::stride_w]``
        cropped to ``(out_h, out_w)``; None when no single tap covers it.
    """
    geometry = _geometry(input_hw, kernel_size, strides, padding)
    if geometry is None:
        return None
    (h, w), (kh, kw), (sh, sw) = input_hw, kernel_size, strides
    top, left, oh, ow = geometry

    def live(k, pad, size, stride, out):
        # taps whose every output position reads real input (none reads padding)
        return [t for t in range(k) if all(0 <= t - pad + o * stride < size for o in range(out))]

    def touched(k, pad, size, stride, out):
        # taps that read real input at one output position at least
        return [t for t in range(k) if any(0 <= t - pad + o * stride < size for o in range(out))]

    rows, cols = touched(kh, top, h, sh, oh), touched(kw, left, w, sw, ow)
    if len(rows) != 1 or len(cols) != 1:
        return None
    if rows != live(kh, top, h, sh, oh) or cols != live(kw, left, w, sw, ow):
        return None
    return TapPlan(rows[0], cols[0], rows[0] - top, cols[0] - left, oh, ow)


def dense_conv_taps(
    input_hw: tuple[int | None, int | None],
    kernel_size: tuple[int, int],
    strides: tuple[int, int],
    padding: str,
) -> DensePlan | None:
    """A convolution as one dense matrix: which kernel tap links each pixel pair.

    A convolution of an ``H x W x C`` map is a linear map from ``H*W*C`` to
    ``OH*OW*F`` numbers whose ``(input pixel, output pixel)`` block is one
    kernel tap (or zero). On tiny maps that matrix is small and dense (for a 3x3
    "same" convolution of a 2x2 map every pixel pair uses a tap), so one matmul
    computes the convolution with no wasted products.

    Parameters
    ----------
    input_hw, kernel_size, strides, padding
        As for :func:`fast_conv_plan`.

    Returns
    -------
    DensePlan or None
        ``(taps, out_h, out_w)``:
        ``taps[p, o]`` is the flat kernel tap ``row * kw + col`` that input pixel
        ``p`` meets at output pixel ``o`` (pixels flattened row-major), or -1 if
        none; None when the input size is unknown or the output empty.

    Examples
    --------
    >>> dense_conv_taps((1, 2), (1, 3), (1, 1), "same")[0].tolist()
    [[1, 0], [2, 1]]
    """
    geometry = _geometry(input_hw, kernel_size, strides, padding)
    if geometry is None:
        return None
    (h, w), (kh, kw), (sh, sw) = input_hw, kernel_size, strides
    top, left, oh, ow = geometry
    row = np.arange(h)[:, None] - np.arange(oh)[None, :] * sh + top  # (h, oh) tap rows
    col = np.arange(w)[:, None] - np.arange(ow)[None, :] * sw + left  # (w, ow) tap cols
    row, col = row[:, None, :, None], col[None, :, None, :]  # (h, w, oh, ow) by broadcasting
    valid = (row >= 0) & (row < kh) & (col >= 0) & (col < kw)
    taps = np.where(valid, row * kw + col, -1)
    return DensePlan(taps.reshape(h * w, oh * ow).astype(np.int32), oh, ow)


def flip_grad_applies(
    kernel_size: tuple[int, int], strides: tuple[int, int], padding: str
) -> bool:
    """Whether :func:`conv_flipped_input_grad` computes this convolution exactly.

    It needs stride 1 and "same" padding with odd kernel sides, so that the
    padding is symmetric and the transposed convolution is a "same" convolution
    with the flipped kernel.
    """
    return (
        tuple(strides) == (1, 1) and padding == "same" and all(k % 2 == 1 for k in kernel_size)
    )


@tf.autograph.experimental.do_not_convert
@tf.custom_gradient
def conv_flipped_input_grad(x: tf.Tensor, kernel: tf.Tensor):
    """``tf.nn.conv2d(x, kernel, 1, "SAME")`` with a faster input gradient on tiny maps.

    For a stride-1 "same" convolution with an odd kernel (see
    :func:`flip_grad_applies`), the gradient with respect to the input is the
    "same" convolution of the output gradient with the kernel flipped in space
    and with its channel axes swapped. TensorFlow's own (Eigen) CPU kernel for
    that gradient is several times slower than a forward convolution on tiny
    maps (measured in docs/performance.md). The kernel gradient
    is TensorFlow's usual one. Values equal the stock gradients up to float32
    rounding.

    Parameters
    ----------
    x : tf.Tensor
        ``(N, H, W, C)`` input.
    kernel : tf.Tensor
        ``(kh, kw, C, F)`` kernel, odd ``kh`` and ``kw``.

    Returns
    -------
    tf.Tensor
        ``(N, H, W, F)`` output.
    """
    y = tf.nn.conv2d(x, kernel, 1, "SAME")

    def grad(dy):
        flipped = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])
        dx = tf.nn.conv2d(dy, flipped, 1, "SAME")
        dk = tf.raw_ops.Conv2DBackpropFilter(
            input=x, filter_sizes=tf.shape(kernel), out_backprop=dy, strides=[1, 1, 1, 1],
            padding="SAME",
        )
        return dx, dk

    return y, grad
