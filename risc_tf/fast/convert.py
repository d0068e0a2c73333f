"""Swap a built model's layers for others that compute the same function.

:func:`use_fast_conv` gives the copy that trains fast on CPU (the builders call
it by default); :func:`use_stock_layers` gives the copy made of stock Keras
convolution and BatchNorm layers. Both keep every layer's name, place, config
and weights. :func:`replace_layers` is the one cloning routine behind them
(and behind :func:`risc_tf.save_model`'s plain-Keras copy).

A clone's layers are built with zeros in place of their initializers, which are
put back once the weights are copied: drawing random values that the copy
overwrites took about a quarter of loading a ResNet50 pipeline here (5.2 -> 3.9 s).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from risc_tf.fast.batchnorm import FastBatchNormalization
from risc_tf.fast.conv import FastConv2D

__all__ = ["chain", "fast_layers", "replace_layers", "use_fast_conv", "use_stock_layers"]

_FAST = {keras.layers.Conv2D: FastConv2D, keras.layers.BatchNormalization: FastBatchNormalization}
_STOCK = {fast: stock for stock, fast in _FAST.items()}

#: ``convert(layer)`` returns None (keep the layer's kind) or ``(new layer, its
#: weights)`` (None weights: the old layer's). The new layer must keep the name.
Converter = Callable[[keras.layers.Layer], "tuple[keras.layers.Layer, list | None] | None"]


def replace_layers(model: keras.Model, convert: Converter, what: str = "replace_layers"):
    """A clone of a functional or sequential model with some layers replaced.

    Layers that ``convert`` leaves alone are rebuilt from their config; every
    layer gets its weights (its own, or those ``convert`` gives). Input
    layers are kept as they are.

    Raises
    ------
    ValueError
        ``model`` is not a keras.Model, or cannot be cloned (a subclassed model).
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"{what} needs a keras.Model; got {type(model).__name__}")
    weights: dict[str, list[np.ndarray]] = {}
    initializers: dict[str, dict] = {}

    def clone(layer):
        out = convert(layer)
        if out is None:
            out = (layer.__class__.from_config(layer.get_config()), None)
        new, values = out
        weights[new.name] = layer.get_weights() if values is None else values
        if weights[new.name]:
            initializers[new.name] = _zero_initializers(new)
        return new

    try:
        copy = keras.models.clone_model(model, clone_function=clone)
    except ValueError as err:
        raise ValueError(
            f"{what} needs a functional or sequential model; cloning {model.name!r} "
            f"failed: {err}"
        ) from err
    for layer in copy.layers:
        if weights.get(layer.name):
            layer.set_weights(weights[layer.name])
        for attr, initializer in initializers.get(layer.name, {}).items():
            setattr(layer, attr, initializer)
    return copy


def _zero_initializers(layer: keras.layers.Layer) -> dict:
    """Give ``layer`` zeros initializers until its weights are set; returns the originals.

    Only for a layer not yet built whose every weight is then set (``set_weights``
    checks the count), so no zero is ever seen; the originals go back afterwards, and
    the layer's config and any later clone of it are unchanged.
    """
    originals = {attr: value for attr, value in vars(layer).items()
                 if attr.endswith("_initializer")
                 and isinstance(value, keras.initializers.Initializer)}
    for attr in originals:
        setattr(layer, attr, keras.initializers.Zeros())
    return originals


def chain(*converters: Converter) -> Converter:
    """One converter that applies each of ``converters`` in turn to the layer the one
    before made, so that several conversions cost one clone of the model.

    A step that returns None keeps the layer it got; the weights are the last ones a
    step gave explicitly, else the original layer's.
    """
    def convert(layer):
        current, weights, changed = layer, None, False
        for step in converters:
            out = step(current)
            if out is not None:
                current, values = out
                changed = True
                if values is not None:
                    weights = values
        return (current, weights) if changed else None

    return convert


def _swap(table: dict) -> Converter:
    def convert(layer):
        cls = table.get(type(layer))
        return None if cls is None else (cls.from_config(layer.get_config()), None)

    return convert


#: The converter of :func:`use_fast_conv` (to :func:`chain` with others).
fast_layers: Converter = _swap(_FAST)


def use_fast_conv(model: keras.Model) -> keras.Model:
    """A copy of a model with its Conv2D / BatchNormalization layers made fast.

    Every layer whose type is exactly :class:`keras.layers.Conv2D` becomes a
    :class:`~risc_tf.fast.FastConv2D`, every exact
    :class:`keras.layers.BatchNormalization` a
    :class:`~risc_tf.fast.FastBatchNormalization`; other layers are cloned as
    they are. Layer names, order, configs (``trainable`` included) and weights
    are kept, so the copy computes the same function and saves the same weight names.

    Parameters
    ----------
    model : keras.Model
        A functional or sequential model (subclassed models cannot be cloned).

    Returns
    -------
    keras.Model
        The converted copy (``model`` is unchanged).
    """
    return replace_layers(model, fast_layers, "use_fast_conv")


def use_stock_layers(model: keras.Model) -> keras.Model:
    """The inverse of :func:`use_fast_conv`: the same model with stock Keras layers only."""
    return replace_layers(model, _swap(_STOCK), "use_stock_layers")
