"""The RotNet and the classifier: one generic builder, two thin public functions.

Every model is a single flat functional graph::

    Input (S, S, 3) in [0, 1] -> InputNormalization(mode) -> backbone (no top)
        -> GlobalAveragePooling2D -> head

so tf-keras-vis sees every convolution, and the input normalisation that the
backbone's weights expect is part of the saved model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import keras

from risc_tf.fastconv import use_fast_conv
from risc_tf.preprocessing import NORMALIZATION_MODES, InputNormalization
from risc_tf.rotation import DEFAULT_ANGLES, check_angles

__all__ = [
    "BACKBONES",
    "RotationOutput",
    "build_classifier",
    "build_rotnet",
    "model_image_size",
    "rotnet_angles",
    "save_for_inference",
]


def _small_backbone(include_top=False, weights=None, input_tensor=None, input_shape=None):
    """A small VGG-style CNN (about 0.3 M parameters) for tests and quick CPU runs."""
    if weights not in (None,):
        raise ValueError('the "small" backbone has no pretrained weights; use weights=None')
    inputs = input_tensor if input_tensor is not None else keras.Input(input_shape)
    x = inputs
    for block, filters in enumerate((32, 64, 128), start=1):
        for i in (1, 2):
            x = keras.layers.Conv2D(
                filters, 3, padding="same", use_bias=False, name=f"block{block}_conv{i}"
            )(x)
            x = keras.layers.BatchNormalization(name=f"block{block}_bn{i}")(x)
            x = keras.layers.Activation("relu", name=f"block{block}_relu{i}")(x)
        if block < 3:
            x = keras.layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    source = keras.utils.get_source_inputs(inputs) if input_tensor is not None else inputs
    return keras.Model(source, x, name="small")


_apps = keras.applications
#: backbone name -> (constructor with the keras.applications signature,
#: normalisation its ImageNet weights expect).
BACKBONES: dict[str, tuple[Callable, str]] = {
    "resnet50": (_apps.ResNet50, "caffe"),
    "resnet101": (_apps.ResNet101, "caffe"),
    "resnet152": (_apps.ResNet152, "caffe"),
    "resnet50v2": (_apps.ResNet50V2, "tf"),
    "vgg16": (_apps.VGG16, "caffe"),
    "vgg19": (_apps.VGG19, "caffe"),
    "mobilenetv2": (_apps.MobileNetV2, "tf"),
    "densenet121": (_apps.DenseNet121, "torch"),
    "efficientnetb0": (_apps.EfficientNetB0, "raw"),
    "small": (_small_backbone, "unit"),
}


@keras.saving.register_keras_serializable(package="risc_tf")
class RotationOutput(keras.layers.Dense):
    """The RotNet's last fully connected layer (softmax), which records its angles.

    Parameters
    ----------
    angles : sequence of float
        The rotation (degrees) that each output unit stands for.
    """

    def __init__(self, angles: Sequence[float], **kwargs):
        angles = check_angles(angles)
        kwargs.setdefault("activation", "softmax")
        kwargs.pop("units", None)
        super().__init__(units=len(angles), **kwargs)
        self.angles = angles

    def get_config(self):
        config = super().get_config()
        config.pop("units", None)
        return {**config, "angles": list(self.angles)}


def rotnet_angles(model: keras.Model) -> tuple[float, ...]:
    """The angle set a RotNet built by :func:`build_rotnet` predicts."""
    last = model.layers[-1]
    if not isinstance(last, RotationOutput):
        raise ValueError(
            f"model {model.name!r} is not a RotNet built by risc_tf (its last layer is "
            f"{type(last).__name__}, not RotationOutput); pass angles= explicitly"
        )
    return last.angles


def save_for_inference(model: keras.Model, path: str | os.PathLike) -> None:
    """Save a model in Keras format without its optimizer state.

    A compiled Adam-trained ResNet50 would otherwise carry two extra copies of
    its weights (about 3x the file size). The saved graph and weights are the
    model's own; reload with ``keras.models.load_model`` (after ``import risc_tf``).
    """
    keras.Model(model.inputs, model.outputs, name=model.name).save(path)


def model_image_size(model: keras.Model) -> int:
    """Side of the square (S, S, 3) input a model expects."""
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) != 3 or shape[0] != shape[1] or shape[0] is None or shape[2] != 3:
        raise ValueError(f"model {model.name!r} must take (S, S, 3) images; got {shape}")
    return int(shape[0])


def _check_common(input_shape, backbone, weights, normalization) -> tuple[tuple, str]:
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[2] != 3 or shape[0] != shape[1] or shape[0] < 8:
        raise ValueError(
            f"input_shape must be (S, S, 3) with S >= 8 (grayscale is stacked to 3 "
            f"channels); got {input_shape}"
        )
    if backbone != "small" and shape[0] < 32:
        raise ValueError(f"backbone {backbone!r} needs inputs of at least 32x32; got {shape}")
    if weights is not None and weights != "imagenet":
        if not isinstance(weights, (str, os.PathLike)) or not Path(weights).is_file():
            raise ValueError(
                f'weights must be None, "imagenet" or the path of a weights file; '
                f"{weights!r} is not an existing file"
            )
    if weights == "imagenet" and backbone == "small":
        raise ValueError('the "small" backbone has no ImageNet weights; use weights=None')
    if normalization is None:
        normalization = "unit" if weights is None else BACKBONES[backbone][1]
    if normalization not in NORMALIZATION_MODES:
        raise ValueError(
            f"normalization must be one of {NORMALIZATION_MODES} or None; got {normalization!r}"
        )
    return shape, normalization


def _load_backbone_weights(model: keras.Model, backbone: str, shape: tuple, path) -> None:
    """Load a weights file saved from the bare keras.applications backbone.

    Both the legacy ``.h5`` files that keras.applications distributes (e.g.
    ``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5``) and Keras 3
    ``.weights.h5`` files saved from ``ResNet50(include_top=False)`` work: the file
    is read into a standalone backbone, then copied layer by layer (by name).
    """
    reference = BACKBONES[backbone][0](include_top=False, weights=None, input_shape=shape)
    try:
        reference.load_weights(str(path))
    except Exception as err:
        raise ValueError(
            f"could not load weights file {path} into a bare {backbone!r} backbone with "
            f"input {shape}: {err}"
        ) from err
    for layer in reference.layers:
        if layer.weights:
            model.get_layer(layer.name).set_weights(layer.get_weights())


def _build(
    head: Callable[[keras.KerasTensor], keras.KerasTensor],
    name: str,
    input_shape,
    backbone: str,
    weights,
    normalization: str | None,
    fast_conv: bool,
) -> keras.Model:
    if not isinstance(fast_conv, bool):
        raise ValueError(f"fast_conv must be True or False; got {fast_conv!r}")
    shape, normalization = _check_common(input_shape, backbone, weights, normalization)
    inputs = keras.Input(shape, name="image")
    x = InputNormalization(normalization, name="input_normalization")(inputs)
    constructor = BACKBONES[backbone][0]
    base = constructor(
        include_top=False,
        weights="imagenet" if weights == "imagenet" else None,
        input_tensor=x,
    )
    features = keras.layers.GlobalAveragePooling2D(name="avg_pool")(base.output)
    model = keras.Model(inputs, head(features), name=f"{name}_{backbone}")
    if weights not in (None, "imagenet"):
        _load_backbone_weights(model, backbone, shape, weights)
    return use_fast_conv(model) if fast_conv else model


def build_rotnet(
    input_shape: Sequence[int] = (32, 32, 3),
    angles: Sequence[float] = DEFAULT_ANGLES,
    backbone: str = "resnet50",
    weights: str | os.PathLike | None = None,
    hidden_units: Sequence[int] = (512, 256),
    dropout: float = 0.3,
    normalization: str | None = None,
    fast_conv: bool = True,
) -> keras.Model:
    """The RISC RotNet: backbone without top, three fully connected layers, softmax over angles.

    Parameters
    ----------
    input_shape : (S, S, 3), default (32, 32, 3)
        Model input; images are float in [0, 1] (see :func:`risc_tf.preprocess_images`).
    angles : sequence of float, default (0, 90, 180, 270)
        Rotations (degrees) to classify; any set of distinct angles.
    backbone : str, default "resnet50"
        A name from :data:`BACKBONES`; ``"small"`` is a fast CNN for tests and CPUs.
    weights : None, "imagenet" or path, default None
        Backbone initialisation. A path names a weights file of the bare
        keras.applications backbone (``include_top=False``).
    hidden_units : pair of int, default (512, 256)
        Widths of the first two fully connected layers (the third is the output).
    dropout : float, default 0.3
        Dropout before each hidden fully connected layer.
    normalization : str, optional
        Override the input normalisation (default: ``"unit"`` without weights, the
        backbone's ImageNet mode with weights).
    fast_conv : bool, default True
        Build the Conv2D and BatchNormalization layers as
        :class:`risc_tf.fastconv.FastConv2D` / ``FastBatchNormalization`` (same
        layers, names, weights and outputs; faster on CPU at small inputs, see
        docs/performance.md). False gives the stock Keras layers.

    Returns
    -------
    keras.Model
        Uncompiled, output ``(N, len(angles))`` probabilities.

    Examples
    --------
    >>> rotnet = build_rotnet(backbone="small")
    >>> rotnet.output_shape
    (None, 4)
    """
    angles = check_angles(angles)
    units = tuple(hidden_units)
    if len(units) != 2 or not all(isinstance(u, int) and u > 0 for u in units):
        raise ValueError(f"hidden_units must be two positive ints; got {hidden_units!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1); got {dropout!r}")

    def head(x):
        for i, width in enumerate(units, start=1):
            x = keras.layers.Dropout(dropout, name=f"rot_dropout{i}")(x)
            x = keras.layers.Dense(width, activation="relu", name=f"rot_fc{i}")(x)
        return RotationOutput(angles, name="rotation")(x)

    return _build(head, "rotnet", input_shape, backbone, weights, normalization, fast_conv)


def build_classifier(
    num_classes: int,
    input_shape: Sequence[int] = (32, 32, 3),
    backbone: str = "resnet50",
    weights: str | os.PathLike | None = None,
    dropout: float = 0.0,
    normalization: str | None = None,
    fast_conv: bool = True,
) -> keras.Model:
    """The RISC classifier: backbone without top, global pooling, softmax over classes.

    Parameters
    ----------
    num_classes : int
        Number of classes (>= 2; binary tasks use a 2-way softmax).
    input_shape, backbone, weights, normalization, fast_conv
        As in :func:`build_rotnet`.
    dropout : float, default 0.0
        Dropout before the output layer.

    Returns
    -------
    keras.Model
        Uncompiled, output ``(N, num_classes)`` probabilities.

    Examples
    --------
    >>> clf = build_classifier(2, backbone="small")
    >>> clf.output_shape
    (None, 2)
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2; got {num_classes!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1); got {dropout!r}")

    def head(x):
        if dropout:
            x = keras.layers.Dropout(dropout, name="dropout")(x)
        return keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)

    return _build(head, "classifier", input_shape, backbone, weights, normalization, fast_conv)
