"""FastConv2D: Conv2D that computes convolutions of tiny feature maps as matrix products.

At a 32x32 input, ResNet50's stages 3-5 run on 4x4, 2x2 and 1x1 feature maps,
where TensorFlow's CPU convolution kernels (above all the two backprop kernels)
cost far more than their arithmetic. :class:`FastConv2D` computes the cases
where a matmul is exact and cheaper as a matmul, so autodiff gives matmul
gradients, and hands every other case to the stock Keras convolution. Which
cases it rewrites is a :class:`ConvPolicy` chosen per CPU backend
(:func:`active_policy`: TensorFlow's oneDNN kernels, the x86 Linux default, or
its Eigen kernels); the shape arithmetic and the plans live in
:mod:`risc_tf.fast.plans`. The measurements behind each policy are in
docs/performance.md.

:class:`FastConv2D` is a :class:`keras.layers.Conv2D` subclass with the same
constructor, config, weights and weight names: ImageNet or saved weights load
unchanged, ``isinstance(layer, keras.layers.Conv2D)`` holds (e.g. for
tf-keras-vis), and the outputs equal the stock layer's within float32 rounding.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import keras
import numpy as np
import tensorflow as tf

from risc_tf.fast.plans import (
    DensePlan,
    FlipPlan,
    TapPlan,
    conv_flipped_input_grad,
    dense_conv_taps,
    fast_conv_plan,
    flip_grad_applies,
)

__all__ = [
    "EIGEN_POLICY",
    "ONEDNN_POLICY",
    "POLICIES",
    "ConvPolicy",
    "FastConv2D",
    "active_policy",
    "onednn_enabled",
]


@dataclasses.dataclass(frozen=True)
class ConvPolicy:
    """Which convolutions :class:`FastConv2D` rewrites (all others run stock).

    Parameters
    ----------
    max_strided_pixels : int
        Strided single-tap convolutions become slice + matmul only on input maps
        of at most this many pixels (single-tap stride-1 ones always do).
    max_dense_pixels : int
        Multi-tap convolutions of input maps of at most this many pixels become
        one dense matmul (:func:`dense_conv_taps`); 0 turns this off.
    max_flip_pixels : int
        Other stride-1 "same" convolutions with odd kernels of input maps of at
        most this many pixels run stock forward but get their input gradient
        from a forward convolution (:func:`conv_flipped_input_grad`); 0 turns
        this off.
    """

    max_strided_pixels: int
    max_dense_pixels: int
    max_flip_pixels: int


#: With oneDNN: single taps only (strided ones on maps of at most 2x2 pixels).
ONEDNN_POLICY = ConvPolicy(max_strided_pixels=4, max_dense_pixels=0, max_flip_pixels=0)
#: With Eigen: also strided 1x1 convolutions on 4x4 maps, dense matmuls on maps
#: of at most 2x2 pixels, flipped-kernel input gradients up to 8x8.
EIGEN_POLICY = ConvPolicy(max_strided_pixels=16, max_dense_pixels=4, max_flip_pixels=64)


@functools.lru_cache(maxsize=1)
def onednn_enabled() -> bool:
    """Whether this TensorFlow runs its oneDNN CPU kernels (fixed at TF import)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # pragma: no cover - private module moved: assume the x86 default
        return True
    return bool(_pywrap_util_port.IsMklEnabled())


#: Names accepted by the ``RISC_TF_CONV_POLICY`` environment variable.
POLICIES = {"onednn": ONEDNN_POLICY, "eigen": EIGEN_POLICY}


def active_policy() -> ConvPolicy:
    """The :class:`ConvPolicy` for this process's CPU kernels (oneDNN or Eigen).

    The environment variable ``RISC_TF_CONV_POLICY`` (``onednn`` or ``eigen``)
    overrides the choice, e.g. to compare the two. It is read whenever a layer
    is traced, so set it before the model's first call.

    Raises
    ------
    ValueError
        If ``RISC_TF_CONV_POLICY`` is set to another name.
    """
    name = os.environ.get("RISC_TF_CONV_POLICY", "").strip().lower()
    if not name:
        return ONEDNN_POLICY if onednn_enabled() else EIGEN_POLICY
    if name not in POLICIES:
        raise ValueError(
            f"RISC_TF_CONV_POLICY must be one of {sorted(POLICIES)} or unset; got {name!r}"
        )
    return POLICIES[name]


@keras.saving.register_keras_serializable(package="risc_tf")
class FastConv2D(keras.layers.Conv2D):
    """:class:`keras.layers.Conv2D` that computes convolutions of tiny maps as a matmul.

    Same arguments, weights and results as :class:`keras.layers.Conv2D`. For a
    channels-last convolution with no dilation, one group and a static input
    height and width, following :func:`active_policy`:

    - if it reduces to one kernel tap (see :func:`fast_conv_plan`) and, when
      strided, its input is small enough, the layer computes
      ``x[:, r0::s, c0::s, :] @ kernel[i, j] + bias``;
    - else, if its input map is small enough, it computes ``flatten(x) @ K +
      bias`` with ``K`` the kernel unrolled over every pixel pair
      (:func:`dense_conv_taps`), built by one ``tf.gather``;
    - else, for a stride-1 "same" convolution with an odd kernel of a small
      enough map, the stock forward convolution with the input gradient
      computed as a forward convolution with the flipped kernel.

    Matmuls and their gradients are faster on CPU than TensorFlow's convolution
    kernels there. Any other case runs the stock layer.

    Examples
    --------
    >>> layer = FastConv2D(8, 1, strides=2)
    >>> tuple(layer(tf.zeros((2, 2, 2, 3))).shape)
    (2, 1, 1, 8)
    """

    def rewrite_plan(self, input_shape) -> TapPlan | DensePlan | FlipPlan | None:
        """How this layer computes a convolution of inputs of ``input_shape`` (None: stock).

        The plan's ``kind`` is ``"tap"``, ``"dense"`` or ``"flip"`` (see the class docs).
        """
        if (
            self.data_format != "channels_last"
            or tuple(self.dilation_rate) != (1, 1)
            or self.groups != 1
            or self.lora_enabled
        ):
            return None
        hw = (input_shape[1], input_shape[2])
        if None in hw:
            return None
        geometry = (hw, tuple(self.kernel_size), tuple(self.strides), self.padding)
        policy, pixels = active_policy(), hw[0] * hw[1]
        tap = fast_conv_plan(*geometry)
        if tap is not None and (max(self.strides) == 1 or pixels <= policy.max_strided_pixels):
            return tap
        if tap is None and pixels <= policy.max_dense_pixels:
            return dense_conv_taps(*geometry)
        if pixels <= policy.max_flip_pixels and flip_grad_applies(*geometry[1:]):
            return FlipPlan()
        return None

    def call(self, inputs):
        plan = self.rewrite_plan(inputs.shape)
        if plan is None:
            return super().call(inputs)
        if isinstance(plan, FlipPlan):
            y = self._add_bias(conv_flipped_input_grad(inputs, tf.convert_to_tensor(self.kernel)))
        elif isinstance(plan, TapPlan):
            y = self._tap_matmul(inputs, plan)
        else:
            y = self._dense_matmul(inputs, plan)
        return y if self.activation is None else self.activation(y)

    def _add_bias(self, y):
        # the matmul paths add it on their 2-D product, so that Grappler fuses MatMul + BiasAdd
        return tf.nn.bias_add(y, self.bias) if self.use_bias else y

    def _tap_matmul(self, inputs, plan: TapPlan):
        i, j, r0, c0, oh, ow = plan
        sh, sw = self.strides
        x = inputs
        if (r0, c0, sh, sw) != (0, 0, 1, 1) or (oh, ow) != tuple(inputs.shape[1:3]):
            x = x[:, r0 : r0 + (oh - 1) * sh + 1 : sh, c0 : c0 + (ow - 1) * sw + 1 : sw, :]
        (kh, kw), kernel = self.kernel_size, self.kernel
        # a reshape (1x1) or a gather, not a slice: a slice's gradient (StridedSliceGrad)
        # is slower than a gather's in writing the full kernel-sized gradient
        if kh * kw == 1:
            tap = tf.reshape(kernel, kernel.shape[2:])
        else:
            tap = tf.gather(tf.reshape(kernel, [kh * kw, *kernel.shape[2:]]), i * kw + j)
        y = self._add_bias(tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), tap))
        return tf.reshape(y, [tf.shape(inputs)[0], oh, ow, self.filters])

    def _dense_matmul(self, inputs, plan: DensePlan):
        taps, oh, ow = plan
        (kh, kw), cin, f = self.kernel_size, inputs.shape[-1], self.filters
        kernel = tf.reshape(self.kernel, [kh * kw, cin, f])
        if (taps < 0).any():  # pixel pairs no tap links: a zero block
            kernel = tf.concat([kernel, tf.zeros([1, cin, f], kernel.dtype)], 0)
            taps = np.where(taps < 0, kh * kw, taps)
        blocks = tf.gather(kernel, taps)  # (in pixels, out pixels, cin, f)
        matrix = tf.reshape(tf.transpose(blocks, [0, 2, 1, 3]), [-1, oh * ow * f])
        y = tf.matmul(tf.reshape(inputs, [-1, matrix.shape[0]]), matrix)
        y = self._add_bias(tf.reshape(y, [-1, f]))
        return tf.reshape(y, [tf.shape(inputs)[0], oh, ow, f])
