"""Which layer a class activation map is computed at: candidates, default, validation.

A CAM is computed on the output of one layer, a spatial feature map
``(N, h, w, C)``. In risc_tf's flat functional models (see :mod:`risc_tf.models`)
the candidates are the layers after the first convolution whose output is such
a map: convolutions, and also BatchNorm, activations, residual additions and
pooling layers (a ResNet block's output ``conv3_block4_out`` is an
``Activation`` layer). Padding layers and everything before the first
convolution (the input and its ``input_normalization`` layer) are not.

The named layer is used as it is: tf-keras-vis would otherwise replace a
non-convolution layer (such as ``conv3_block4_out``) with the last ``Conv2D``
before it (``conv3_block4_3_conv``, before its BatchNorm, residual addition and
ReLU); risc_tf always passes ``seek_penultimate_conv_layer=False``.

Default layer: the deepest candidate whose map is at least
:data:`DEFAULT_MIN_SIDE` pixels on its shorter side. The last feature map is
not a good default at the RISC input size: ResNet50 on 32x32 images ends in a
1x1 map (``conv5_block3_out``), whose Grad-CAM is one number, i.e. a constant
heatmap. Defaults at 32x32 input:

========== ===================== ==========
backbone   default layer          map size
========== ===================== ==========
resnet50   ``conv3_block4_out``   4x4
small      ``block3_relu2``       8x8
========== ===================== ==========
"""

from __future__ import annotations

import keras

from risc_tf.validation import check_int

__all__ = [
    "DEFAULT_MIN_SIDE",
    "default_layer",
    "feature_layers",
    "resolve_layer",
    "stage_layers",
]

#: Smallest side (in feature-map pixels) of the default CAM layer.
DEFAULT_MIN_SIDE = 4

_CONV_TYPES = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
               keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D,
               keras.layers.Conv2DTranspose)
_PADDING_TYPES = (keras.layers.ZeroPadding2D, keras.layers.Cropping2D)


def _is_map(layer: keras.layers.Layer) -> bool:
    shape = getattr(layer.output, "shape", None)
    return shape is not None and len(shape) == 4


def feature_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Layers a CAM can be computed at, in graph order.

    Parameters
    ----------
    model : keras.Model
        A flat functional model (as built by :func:`risc_tf.build_classifier`
        and :func:`risc_tf.build_rotnet`).

    Returns
    -------
    list of keras.layers.Layer
        Layers after the first convolution with a ``(N, h, w, C)`` output,
        padding layers excepted.

    Examples
    --------
    >>> from risc_tf import build_classifier
    >>> [l.name for l in feature_layers(build_classifier(2, backbone="small"))][:3]
    ['block1_conv1', 'block1_bn1', 'block1_relu1']
    """
    layers = list(model.layers)
    first = next((i for i, layer in enumerate(layers) if isinstance(layer, _CONV_TYPES)), None)
    if first is None:
        raise ValueError(f"model {model.name!r} has no convolution layer to compute a CAM at")
    return [
        layer for layer in layers[first:]
        if _is_map(layer) and not isinstance(layer, _PADDING_TYPES)
    ]


def stage_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The last feature layer at each spatial resolution, shallow to deep.

    These are the stage outputs a layer comparison shows, e.g. for ResNet50 at
    32x32: ``conv1_relu`` (16x16), ``conv2_block3_out`` (8x8),
    ``conv3_block4_out`` (4x4), ``conv4_block6_out`` (2x2) and
    ``conv5_block3_out`` (1x1).

    Examples
    --------
    >>> from risc_tf import build_classifier
    >>> [l.name for l in stage_layers(build_classifier(2, backbone="small"))]
    ['block1_relu2', 'block2_relu2', 'block3_relu2']
    """
    out: list[keras.layers.Layer] = []
    for layer in feature_layers(model):
        if out and tuple(out[-1].output.shape[1:3]) == tuple(layer.output.shape[1:3]):
            out[-1] = layer
        else:
            out.append(layer)
    return out


def default_layer(model: keras.Model, *,
                  min_side: int = DEFAULT_MIN_SIDE) -> keras.layers.Layer:
    """The deepest feature layer whose map is at least ``min_side`` on its shorter side.

    Parameters
    ----------
    model : keras.Model
        A flat functional model.
    min_side : int, default 4
        Smallest acceptable map side. When no layer is that large (tiny inputs),
        the largest map is used.

    Returns
    -------
    keras.layers.Layer

    Raises
    ------
    ValueError
        ``min_side`` is not an int >= 1.

    Examples
    --------
    >>> from risc_tf import build_classifier
    >>> default_layer(build_classifier(2)).name  # ResNet50 at 32x32
    'conv3_block4_out'
    """
    min_side = check_int("min_side", min_side)
    stages = stage_layers(model)
    large = [layer for layer in stages if min(layer.output.shape[1:3]) >= min_side]
    return large[-1] if large else stages[0]


def resolve_layer(model: keras.Model, layer: str | keras.layers.Layer | None) -> keras.layers.Layer:
    """Validate a layer choice and return the layer (the default when ``layer`` is None).

    Parameters
    ----------
    model : keras.Model
        A flat functional model.
    layer : str, keras.layers.Layer or None
        A layer name (or the layer itself) from :func:`feature_layers`, or None
        for :func:`default_layer`.

    Returns
    -------
    keras.layers.Layer

    Raises
    ------
    ValueError
        The name is not a layer of the model, or the layer does not output a
        spatial feature map after a convolution (e.g. a Dense layer, the global
        pooling, the input or the input normalisation).

    Examples
    --------
    >>> from risc_tf import build_classifier
    >>> resolve_layer(build_classifier(2, backbone="small"), "block2_relu2").name
    'block2_relu2'
    """
    if layer is None:
        return default_layer(model)
    candidates = feature_layers(model)
    stages = ", ".join(repr(s.name) for s in stage_layers(model))
    if isinstance(layer, keras.layers.Layer):
        name = layer.name
    elif isinstance(layer, str):
        name = layer
    else:
        raise ValueError(f"layer must be a layer name, a keras layer or None; got {layer!r}")
    names = {c.name: c for c in candidates}
    if name in names and (not isinstance(layer, keras.layers.Layer) or names[name] is layer):
        return names[name]
    try:
        found = model.get_layer(name)
    except ValueError:
        raise ValueError(
            f"model {model.name!r} has no layer named {name!r}; stage outputs are {stages}"
        ) from None
    if isinstance(layer, keras.layers.Layer) and found is not layer:
        raise ValueError(f"layer {name!r} is not a layer of model {model.name!r}")
    shape = tuple(getattr(found.output, "shape", ()))
    why = (
        "a padding layer" if isinstance(found, _PADDING_TYPES)
        else "before the first convolution" if _is_map(found)
        else f"its output {shape} is not a spatial feature map (N, h, w, C)"
    )
    raise ValueError(
        f"layer {name!r} ({type(found).__name__}) of model {model.name!r} is not a "
        f"convolutional feature layer: {why}. Stage outputs are {stages}"
    )
