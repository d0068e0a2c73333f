"""Conv2D and BatchNormalization layers that train fast on CPU at 32x32 inputs.

At a 32x32 input, ResNet50's stages 3-5 run on 4x4, 2x2 and 1x1 feature maps.
There TensorFlow's CPU convolution kernels (forward and, above all, the two
backprop kernels) cost far more than the arithmetic: a 1x1 convolution is just
a matrix product over ``N * H * W`` pixels, and a 3x3 "same" convolution of a
1x1 map only ever touches the kernel's centre tap. :class:`FastConv2D` computes
exactly those cases as one ``tf.matmul`` (after a strided slice for strided 1x1
convolutions), so autodiff gives matmul gradients, and hands every other case
to the stock Keras convolution.

How slow the stock kernels are depends on which CPU kernels TensorFlow runs.
With oneDNN (the default on x86 Linux) the stock gradients are merely slowish;
with TensorFlow's own Eigen kernels (``TF_ENABLE_ONEDNN_OPTS=0``, and builds
without oneDNN) a convolution gradient on a 1x1 or 2x2 map costs 50-100x its
forward pass. So the layer follows a :class:`ConvPolicy` chosen by the backend
(:func:`active_policy`): with Eigen it also rewrites strided 1x1 convolutions
on 4x4 maps, and computes multi-tap convolutions of maps of at most 2x2 pixels
(the 3x3 convolutions of ResNet50's stage 4) as one "dense" matmul against the
kernel unrolled over every input/output pixel pair (:func:`dense_conv_taps`),
and gives the 3x3 convolutions of 4x4 and 8x8 maps an input gradient computed
as a forward convolution with the flipped kernel
(:func:`~risc_tf.convplans.conv_flipped_input_grad`). The shape arithmetic
lives in :mod:`risc_tf.convplans`. Which cases to rewrite was decided by
measurement (``benchmarks/`` and ``docs/performance.md``): patches + matmul for
3x3 convolutions on 4x4 and 8x8 maps was no faster than the stock kernels on
either backend.

:class:`FastBatchNormalization` runs batch normalisation as TensorFlow's one
fused kernel instead of Keras's ten-odd elementwise ops (and their gradients),
which cost as much as a stage's convolutions here. :func:`use_fast_conv` swaps
both into a built model; ``risc_tf.build_rotnet`` / ``build_classifier`` do it
by default (``fast_conv=True``).

:class:`FastConv2D` is a :class:`keras.layers.Conv2D` subclass with the same
constructor, config, weights and weight names, so ImageNet or saved weights
load unchanged, ``isinstance(layer, keras.layers.Conv2D)`` still holds (e.g.
for tf-keras-vis), and the outputs equal the stock layer's within float32
rounding; likewise :class:`FastBatchNormalization`. Both are registered
(``risc_tf>FastConv2D``, ``risc_tf>FastBatchNormalization``): a saved model
loads with plain ``keras.models.load_model`` once ``risc_tf`` is imported, as
for risc_tf's other layers (``RISCPipeline.load`` always imports it).
"""

from __future__ import annotations

import dataclasses
import functools
import os

import keras
import numpy as np
import tensorflow as tf

from risc_tf.convplans import (
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
    "FastBatchNormalization",
    "FastConv2D",
    "active_policy",
    "dense_conv_taps",
    "fast_conv_plan",
    "onednn_enabled",
    "use_fast_conv",
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


#: With oneDNN: strided 1x1 convolutions on 4x4 and 8x8 maps and 3x3 ones on
#: 2x2 to 8x8 maps were no faster rewritten (measured; see docs/performance.md).
ONEDNN_POLICY = ConvPolicy(max_strided_pixels=4, max_dense_pixels=0, max_flip_pixels=0)
#: With Eigen: stock gradients of 3x3 convolutions on 2x2 maps and of strided
#: 1x1 ones on 4x4 maps cost 5-7x the rewritten ones (on 8x8 maps, no gain);
#: 3x3 ones on 4x4 / 8x8 maps train about 2x / slightly faster with the
#: flipped-kernel input gradient.
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

    def _plan(self, inputs) -> tuple[str, tuple | None] | None:
        """("tap", fast_conv_plan), ("dense", dense_conv_taps), ("flip", None) or None."""
        if (
            self.data_format != "channels_last"
            or tuple(self.dilation_rate) != (1, 1)
            or self.groups != 1
            or self.lora_enabled
        ):
            return None
        hw = (inputs.shape[1], inputs.shape[2])
        if None in hw:
            return None
        geometry = (hw, tuple(self.kernel_size), tuple(self.strides), self.padding)
        policy, pixels = active_policy(), hw[0] * hw[1]
        tap = fast_conv_plan(*geometry)
        if tap is not None and (max(self.strides) == 1 or pixels <= policy.max_strided_pixels):
            return "tap", tap
        if tap is None and pixels <= policy.max_dense_pixels:
            dense = dense_conv_taps(*geometry)
            return None if dense is None else ("dense", dense)
        if pixels <= policy.max_flip_pixels and flip_grad_applies(*geometry[1:]):
            return "flip", None
        return None

    def call(self, inputs):
        plan = self._plan(inputs)
        if plan is None:
            return super().call(inputs)
        kind, plan = plan
        if kind == "flip":
            y = self._add_bias(conv_flipped_input_grad(inputs, tf.convert_to_tensor(self.kernel)))
        elif kind == "tap":
            y = self._tap_matmul(inputs, plan)
        else:
            y = self._dense_matmul(inputs, plan)
        return y if self.activation is None else self.activation(y)

    def _add_bias(self, y):
        # the matmul paths add it on their 2-D product, so that Grappler fuses MatMul + BiasAdd
        return tf.nn.bias_add(y, self.bias) if self.use_bias else y

    def _tap_matmul(self, inputs, plan):
        i, j, r0, c0, oh, ow = plan
        sh, sw = self.strides
        x = inputs
        if (r0, c0, sh, sw) != (0, 0, 1, 1) or (oh, ow) != tuple(inputs.shape[1:3]):
            x = x[:, r0 : r0 + (oh - 1) * sh + 1 : sh, c0 : c0 + (ow - 1) * sw + 1 : sw, :]
        (kh, kw), kernel = self.kernel_size, self.kernel
        # a reshape (1x1) or a gather, not a slice: a slice's gradient (StridedSliceGrad)
        # is 2x slower than a gather's in writing the full kernel-sized gradient
        if kh * kw == 1:
            tap = tf.reshape(kernel, kernel.shape[2:])
        else:
            tap = tf.gather(tf.reshape(kernel, [kh * kw, *kernel.shape[2:]]), i * kw + j)
        y = self._add_bias(tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), tap))
        return tf.reshape(y, [tf.shape(inputs)[0], oh, ow, self.filters])

    def _dense_matmul(self, inputs, plan):
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


@keras.saving.register_keras_serializable(package="risc_tf")
class FastBatchNormalization(keras.layers.BatchNormalization):
    """:class:`keras.layers.BatchNormalization` computed by one fused kernel.

    Keras computes training-mode batch normalisation from about ten elementwise
    ops (moments, then normalise), and autodiff doubles them; on CPU that costs
    more than the convolutions of a 32x32 ResNet50 stage. For the common case
    (4-D float32 input, channels-last axis, no mask, no renorm, not
    synchronised) this layer runs TensorFlow's ``FusedBatchNormV3`` instead, with
    the same formula, the same moving-statistics update (momentum, biased batch
    variance) and the same weights; inference (moving statistics) also uses the
    fused kernel. Every other case runs the stock layer.
    """

    def _fusable(self, inputs, mask) -> bool:
        return bool(
            mask is None
            and not self.renorm
            and not self.synchronized
            and len(inputs.shape) == 4
            and self.axis in (3, -1)
            and inputs.dtype == tf.float32
            and self.compute_dtype == "float32"
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        gamma = self.gamma if self.scale else tf.ones([channels])
        beta = self.beta if self.center else tf.zeros([channels])
        learning = bool(training and self.trainable)
        empty = tf.constant([], tf.float32)
        y, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=inputs,
            scale=tf.convert_to_tensor(gamma),
            offset=tf.convert_to_tensor(beta),
            mean=empty if learning else tf.convert_to_tensor(self.moving_mean),
            variance=empty if learning else tf.convert_to_tensor(self.moving_variance),
            epsilon=self.epsilon,
            data_format="NHWC",
            is_training=learning,
        )
        if not learning:
            return y
        # The kernel returns the unbiased (Bessel-corrected) batch variance; Keras
        # tracks the biased one.
        count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:3]), tf.float32)
        variance = variance * tf.maximum(count - 1.0, 0.0) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
        )
        return y


_FAST = {keras.layers.Conv2D: FastConv2D, keras.layers.BatchNormalization: FastBatchNormalization}


def use_fast_conv(model: keras.Model) -> keras.Model:
    """A copy of a model with its Conv2D / BatchNormalization layers made fast.

    Every layer whose type is exactly :class:`keras.layers.Conv2D` becomes a
    :class:`FastConv2D`, and every exact :class:`keras.layers.BatchNormalization`
    a :class:`FastBatchNormalization`; other layers (subclasses included) are
    cloned as they are. Layer names, order, configs and weights are kept
    (weights are copied), so the copy computes the same function and
    saves/loads the same weight names.

    Parameters
    ----------
    model : keras.Model
        A functional or sequential model (subclassed models cannot be cloned).

    Returns
    -------
    keras.Model
        The converted copy (the input model is unchanged).
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"use_fast_conv needs a keras.Model; got {type(model).__name__}")

    def convert(layer):
        cls = _FAST.get(type(layer), layer.__class__)
        return cls.from_config(layer.get_config())

    try:
        fast = keras.models.clone_model(model, clone_function=convert)
    except ValueError as err:
        raise ValueError(
            f"use_fast_conv needs a functional or sequential model; cloning {model.name!r} "
            f"failed: {err}"
        ) from err
    fast.set_weights(model.get_weights())
    return fast
