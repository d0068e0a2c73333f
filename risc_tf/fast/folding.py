"""Fold inference-mode BatchNormalization into the convolution before it.

At inference a BatchNormalization layer is a fixed per-channel affine map,
``y = gamma * (x - mean) / sqrt(var + eps) + beta``. When ``x`` is the output
of a convolution ``conv(u, K) + b`` (as everywhere in a ResNet), the pair is one
convolution with kernel ``K * s`` and bias ``(b - mean) * s + beta``, where
``s = gamma / sqrt(var + eps)``. :func:`fold_batchnorm` builds that
convolution-only copy of a trained model: same outputs within float32
rounding, one elementwise pass fewer per convolution, and a graph that
TensorFlow fuses into convolution + bias (+ ReLU) kernels.

The copy is a snapshot for inference: it does not follow later training of the
original model, and it has no BatchNormalization to train.
"""

from __future__ import annotations

from collections.abc import Collection

import keras
import numpy as np

from risc_tf.fast.convert import Converter, replace_layers

__all__ = ["FoldedBatchNormalization", "batchnorm_folder", "batchnorm_pairs", "fold_arrays",
           "fold_batchnorm"]


@keras.saving.register_keras_serializable(package="risc_tf")
class FoldedBatchNormalization(keras.layers.Layer):
    """Where a BatchNormalization was before it was folded into the convolution feeding it.

    Passes its input through unchanged; it keeps the BatchNormalization's name
    and call signature so that the folded model's graph matches the original's.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, training=None, mask=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


def _producer(tensor) -> keras.Operation | None:
    history = getattr(tensor, "_keras_history", None)
    return None if history is None else history[0]


def _foldable_bn(layer) -> bool:
    if not isinstance(layer, keras.layers.BatchNormalization):
        return False
    axis = layer.axis if isinstance(layer.axis, int) else None
    return (
        axis in (-1, 3)
        and len(layer._inbound_nodes) == 1
        and not getattr(layer, "renorm", False)
    )


def _foldable_conv(layer) -> bool:
    return (
        isinstance(layer, keras.layers.Conv2D)
        and layer.data_format == "channels_last"
        and layer.groups == 1
        and layer.activation in (None, keras.activations.linear)
        and not getattr(layer, "lora_enabled", False)
        and len(layer._inbound_nodes) == 1
        and len(layer._outbound_nodes) == 1
    )


def batchnorm_pairs(model: keras.Model) -> dict[str, str]:
    """Which BatchNormalization layers of ``model`` fold into a convolution.

    Parameters
    ----------
    model : keras.Model
        A functional model (nested models are not searched).

    Returns
    -------
    dict
        ``{batchnorm layer name: convolution layer name}`` for every channels-last
        BatchNormalization whose only input is a channels-last ``Conv2D`` (or
        subclass) with no activation whose output feeds nothing else.
    """
    pairs = {}
    for layer in model.layers:
        if _foldable_bn(layer):
            conv = _producer(layer.input)
            if conv is not None and conv in model.layers and _foldable_conv(conv):
                pairs[layer.name] = conv.name
    return pairs


def fold_arrays(kernel, bias, gamma, beta, mean, variance, epsilon: float) -> list[np.ndarray]:
    """A convolution's ``[kernel, bias]`` with the BatchNormalization after it folded in.

    ``bias``, ``gamma`` and ``beta`` may be None (no bias, no scale, no centre).
    Computed in float64, returned in float32.
    """
    kernel = np.asarray(kernel, np.float64)
    filters = kernel.shape[-1]
    bias = np.zeros(filters) if bias is None else np.asarray(bias, np.float64)
    gamma = np.ones(filters) if gamma is None else np.asarray(gamma, np.float64)
    beta = np.zeros(filters) if beta is None else np.asarray(beta, np.float64)
    s = gamma / np.sqrt(np.asarray(variance, np.float64) + epsilon)
    return [(kernel * s).astype(np.float32),
            ((bias - np.asarray(mean, np.float64)) * s + beta).astype(np.float32)]


def _folded_weights(conv, bn) -> list[np.ndarray]:
    def value(variable):
        return keras.ops.convert_to_numpy(variable)

    return fold_arrays(value(conv.kernel), value(conv.bias) if conv.use_bias else None,
                       value(bn.gamma) if bn.scale else None,
                       value(bn.beta) if bn.center else None,
                       value(bn.moving_mean), value(bn.moving_variance), bn.epsilon)


def fold_batchnorm(model: keras.Model) -> keras.Model:
    """A copy of ``model`` for inference with BatchNormalization folded into the convolutions.

    Every pair listed by :func:`batchnorm_pairs` becomes one convolution (with a
    bias) followed by a pass-through :class:`FoldedBatchNormalization` that
    keeps the BatchNormalization's name; every other layer is copied with its
    weights. Layer names and order are unchanged, so GradCAM layer names and
    ``model_image_size`` apply to the copy as to the original.

    Parameters
    ----------
    model : keras.Model
        A built functional model (e.g. from :func:`risc_tf.build_rotnet` or
        :func:`risc_tf.build_classifier`, trained or loaded).

    Returns
    -------
    keras.Model
        A new model, equal to ``model(x, training=False)`` within float32
        rounding. It does not follow later changes to ``model``'s weights.

    Raises
    ------
    ValueError
        If ``model`` is not a functional model.

    Examples
    --------
    A pipeline for deployment, once the two models are trained:

    >>> import risc_tf
    >>> rotnet = risc_tf.build_rotnet(backbone="small")
    >>> classifier = risc_tf.build_classifier(2, backbone="small")
    >>> fast = risc_tf.RISCPipeline(
    ...     risc_tf.fold_batchnorm(rotnet), risc_tf.fold_batchnorm(classifier)
    ... )
    """
    if not isinstance(model, keras.Model) or not getattr(model, "inputs", None):
        raise ValueError(
            f"fold_batchnorm needs a built functional keras.Model; got {type(model).__name__}"
        )
    return replace_layers(model, batchnorm_folder(model), "fold_batchnorm")


def batchnorm_folder(model: keras.Model, skip: Collection[str] = ()) -> Converter:
    """The conversion :func:`fold_batchnorm` applies, as a converter for
    :func:`~risc_tf.fast.convert.replace_layers` (or a step of
    :func:`~risc_tf.fast.convert.chain`, so that loading a model can fold it in the same
    clone).

    Parameters
    ----------
    model : keras.Model
        The built model whose layers are converted: the folded weights are computed
        from its convolutions and BatchNormalization layers, found by name.
    skip : collection of str, optional
        BatchNormalization layers to leave alone (e.g. those another step converts).

    Returns
    -------
    callable
        ``convert(layer)``: a :class:`FoldedBatchNormalization` for each folded
        BatchNormalization, the convolution with a bias and the folded weights for
        each convolution feeding one, None for every other layer.
    """
    pairs = {bn: conv for bn, conv in batchnorm_pairs(model).items() if bn not in skip}
    convs = {conv: bn for bn, conv in pairs.items()}

    def convert(layer):
        if layer.name in pairs:
            return FoldedBatchNormalization(name=layer.name), []
        if layer.name in convs:
            config = {**layer.get_config(), "use_bias": True, "bias_initializer": "zeros"}
            weights = _folded_weights(model.get_layer(layer.name),
                                      model.get_layer(convs[layer.name]))
            return layer.__class__.from_config(config), weights
        return None

    return convert
