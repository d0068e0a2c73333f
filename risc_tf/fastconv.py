"""Conv2D and BatchNormalization layers that train fast on CPU at 32x32 inputs.

At a 32x32 input, ResNet50's stages 3-5 run on 4x4, 2x2 and 1x1 feature maps.
There TensorFlow's CPU convolution kernels (forward and, above all, the two
backprop kernels) cost far more than the arithmetic: a 1x1 convolution is just
a matrix product over ``N * H * W`` pixels, and a 3x3 "same" convolution of a
1x1 map only ever touches the kernel's centre tap. :class:`FastConv2D` computes
exactly those cases as one ``tf.matmul`` (after a strided slice for strided 1x1
convolutions), so autodiff gives matmul gradients, and hands every other case
to the stock Keras convolution. Which cases to rewrite was decided by
measurement (``benchmarks/bench_training.py`` and ``docs/performance.md``):
patches + matmul for 3x3 convolutions on 2x2 to 8x8 maps was *slower* here
than the stock kernels, so those stay stock.

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

import keras
import tensorflow as tf

__all__ = ["FastBatchNormalization", "FastConv2D", "fast_conv_plan", "use_fast_conv"]


#: Strided 1x1 convolutions go through the matmul only on maps of at most this
#: many pixels: on 4x4 and 8x8 maps the strided slice cost as much as it saved
#: (measured; see docs/performance.md), on 2x2 maps the matmul was clearly faster.
_MAX_STRIDED_PIXELS = 4


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TF "same" padding for one axis: (pad_before, pad_after, output_size)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


def fast_conv_plan(
    input_hw: tuple[int | None, int | None],
    kernel_size: tuple[int, int],
    strides: tuple[int, int],
    padding: str,
) -> tuple[int, int, int, int, int, int] | None:
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
    tuple or None
        ``(tap_row, tap_col, first_row, first_col, out_h, out_w)``: use kernel tap
        ``(tap_row, tap_col)`` on ``x[:, first_row::stride_h, first_col::stride_w]``
        cropped to ``(out_h, out_w)``; None when no single tap covers it.
    """
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
    return rows[0], cols[0], rows[0] - top, cols[0] - left, oh, ow


@keras.saving.register_keras_serializable(package="risc_tf")
class FastConv2D(keras.layers.Conv2D):
    """:class:`keras.layers.Conv2D` that computes single-tap convolutions as a matmul.

    Same arguments, weights and results as :class:`keras.layers.Conv2D`. When the
    convolution (channels last, no dilation, one group, static input height and
    width) reduces to one kernel tap (see :func:`fast_conv_plan`) and, if strided,
    its input has at most 2x2 pixels, the layer computes
    ``x[:, r0::s, c0::s, :] @ kernel[i, j] + bias``; matmul and its gradients are
    faster on CPU than TensorFlow's convolution kernels there. Any other case
    runs the stock layer.

    Examples
    --------
    >>> layer = FastConv2D(8, 1, strides=2)
    >>> tuple(layer(tf.zeros((2, 2, 2, 3))).shape)
    (2, 1, 1, 8)
    """

    def _plan(self, inputs):
        if (
            self.data_format != "channels_last"
            or tuple(self.dilation_rate) != (1, 1)
            or self.groups != 1
            or self.lora_enabled
        ):
            return None
        h, w = inputs.shape[1], inputs.shape[2]
        if max(self.strides) > 1 and (h is None or w is None or h * w > _MAX_STRIDED_PIXELS):
            return None
        return fast_conv_plan((h, w), tuple(self.kernel_size), tuple(self.strides), self.padding)

    def call(self, inputs):
        plan = self._plan(inputs)
        if plan is None:
            return super().call(inputs)
        i, j, r0, c0, oh, ow = plan
        sh, sw = self.strides
        x = inputs
        if (r0, c0, sh, sw) != (0, 0, 1, 1) or (oh, ow) != tuple(inputs.shape[1:3]):
            x = x[:, r0 : r0 + (oh - 1) * sh + 1 : sh, c0 : c0 + (ow - 1) * sw + 1 : sw, :]
        kernel = self.kernel
        # a reshape, not a slice, where possible: a slice's gradient copies the kernel
        tap = tf.reshape(kernel, kernel.shape[2:]) if kernel.shape[:2] == (1, 1) else kernel[i, j]
        y = tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), tap)
        if self.use_bias:  # on the 2-D product, so that Grappler fuses MatMul + BiasAdd
            y = tf.nn.bias_add(y, self.bias)
        y = tf.reshape(y, [tf.shape(inputs)[0], oh, ow, self.filters])
        return y if self.activation is None else self.activation(y)


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
