"""The RotNet and the classifier: one generic builder, two thin public functions.

Every model is a single flat functional graph::

    Input (S, S, 3) in [0, 1] -> input_normalization -> backbone (no top)
        -> GlobalAveragePooling2D -> head

so tf-keras-vis sees every convolution. The input normalisation that the
backbone's weights expect belongs to the model: it is its first layer, a
frozen ``Dense(3)`` acting on the colour channels (an exact affine map for
every mode of :data:`~risc_tf.backbones.NORMALIZATION_MODES`, e.g. ImageNet's
"caffe" channel flip and mean subtraction), saved with the model as a stock
Keras layer.

The classifier can start from a trained RotNet's backbone
(``build_classifier(..., weights=rotnet)``): the self-supervised
initialisation that the "self-supervised" in RISC stands for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import keras

from risc_tf.angles import DEFAULT_ANGLES, check_angles, check_resolution
from risc_tf.backbones import (
    BACKBONES,
    NORMALIZATION_MODES,
    check_backbone,
    check_backbone_weights,
    check_input_size,
    normalization_weights,
    small_backbone,
)
from risc_tf.fast import use_fast_conv
from risc_tf.heads import check_head
from risc_tf.validation import check_choice, check_fraction, check_int

__all__ = [
    "BACKBONES",
    "RotationOutput",
    "backbone_of",
    "build_classifier",
    "build_rotnet",
    "model_image_size",
    "normalization_weights",
    "rotnet_angles",
    "rotnet_head",
]

def _constructor(backbone: str) -> Callable:
    name = BACKBONES[backbone][0]
    return small_backbone if name is None else getattr(keras.applications, name)


@keras.saving.register_keras_serializable(package="risc_tf")
class RotationOutput(keras.layers.Dense):
    """The RotNet's last fully connected layer (softmax), which records its angles and head.

    Saved as a plain ``Dense`` layer (see :func:`risc_tf.save_model`), with the
    angles and the head beside it.

    Parameters
    ----------
    angles : sequence of float
        The rotation (degrees) that each output unit stands for.
    head : {"bins", "circular"}, default "bins"
        How the outputs are trained and read (:mod:`risc_tf.heads`).
    sigma : float, optional
        The circular head's soft-label width (degrees).
    """

    def __init__(self, angles: Sequence[float], head: str = "bins", sigma: float | None = None,
                 **kwargs):
        angles = check_angles(angles)
        kwargs.setdefault("activation", "softmax")
        kwargs.pop("units", None)
        super().__init__(units=len(angles), **kwargs)
        self.angles = angles
        self.head, self.sigma = check_head(head, angles, sigma)

    def get_config(self):
        config = super().get_config()
        config.pop("units", None)
        return {**config, "angles": list(self.angles), "head": self.head, "sigma": self.sigma}

    @staticmethod
    def config_from_dense(config: dict, angles: Sequence[float], head: dict) -> dict:
        """The config of the RotationOutput that a saved ``Dense`` layer's ``config`` stands
        for (risc_tf saves a RotNet's output as a plain ``Dense``), given the ``angles``
        and the ``head`` (``{"head": ..., "sigma": ...}``) its file records."""
        return {**{k: v for k, v in config.items() if k != "units"}, "angles": list(angles),
                **head}


def rotnet_angles(model: keras.Model) -> tuple[float, ...]:
    """The angle set a RotNet built by :func:`build_rotnet` predicts.

    Raises
    ------
    ValueError
        The model does not record angles (it is not a RotNet, or it was loaded
        with plain ``keras.models.load_model``: load it with
        :func:`risc_tf.load_model`, or give the angles explicitly).
    """
    last = model.layers[-1]
    if not isinstance(last, RotationOutput):
        raise ValueError(
            f"model {model.name!r} records no rotation angles (its last layer is "
            f"{type(last).__name__}, not RotationOutput): load saved RotNets with "
            "risc_tf.load_model, or pass angles= explicitly"
        )
    return last.angles


def rotnet_head(model: keras.Model) -> tuple[str, float | None]:
    """A RotNet's head and soft-label width, ``(head, sigma)`` (see :mod:`risc_tf.heads`).

    Raises
    ------
    ValueError
        As :func:`rotnet_angles`.
    """
    rotnet_angles(model)
    last = model.layers[-1]
    return last.head, last.sigma


def is_rotnet(model: keras.Model) -> bool:
    """Whether ``model`` is a RotNet built by risc_tf (it records its angles)."""
    return isinstance(model, keras.Model) and isinstance(model.layers[-1], RotationOutput)


def backbone_of(model: keras.Model) -> str | None:
    """The backbone name a risc_tf model was built on (from its name), or None."""
    for prefix in ("rotnet_", "classifier_"):
        if model.name.startswith(prefix) and model.name[len(prefix):] in BACKBONES:
            return model.name[len(prefix):]
    return None


def model_image_size(model: keras.Model) -> int:
    """Side of the square (S, S, 3) input a model expects."""
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) != 3 or shape[0] != shape[1] or shape[0] is None or shape[2] != 3:
        raise ValueError(f"model {model.name!r} must take (S, S, 3) images; got {shape}")
    return int(shape[0])


def _check_shape(input_shape, backbone: str) -> tuple[int, int, int]:
    try:
        shape = tuple(int(check_int("input_shape", s, 1)) for s in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 3 or shape[2] != 3 or shape[0] != shape[1] or shape[0] < 8:
        raise ValueError(
            f"input_shape must be (S, S, 3) with S >= 8 (grayscale is stacked to 3 "
            f"channels); got {input_shape!r}"
        )
    check_input_size(backbone, shape[0])
    return shape


def _check_weights(weights, backbone: str, shape: tuple, kind: str):
    if isinstance(weights, keras.Model):
        _check_rotnet_source(weights, backbone, shape, kind)
        return weights
    return check_backbone_weights(weights, backbone, rotnet_source=kind == "classifier")


def _check_rotnet_source(rotnet: keras.Model, backbone: str, shape: tuple, kind: str) -> None:
    if kind != "classifier":
        raise ValueError("weights= a model is only for build_classifier (RotNet initialisation)")
    if not is_rotnet(rotnet):
        raise ValueError(
            f"weights= must be a RotNet built by risc_tf.build_rotnet (or loaded with "
            f"risc_tf.load_model); model {rotnet.name!r} ends in "
            f"{type(rotnet.layers[-1]).__name__}, not RotationOutput"
        )
    source = (backbone_of(rotnet), model_image_size(rotnet))
    if source != (backbone, shape[0]):
        raise ValueError(
            f"weights= a RotNet with backbone {source[0]!r} and input {source[1]}x{source[1]}, "
            f"but the classifier has backbone {backbone!r} and input {shape[0]}x{shape[0]}: "
            "they must match"
        )


def _load_backbone_file(model: keras.Model, backbone: str, shape: tuple, path) -> None:
    """Load a weights file saved from the bare keras.applications backbone.

    Both the legacy ``.h5`` files that keras.applications distributes (e.g.
    ``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5``) and Keras 3
    ``.weights.h5`` files saved from ``ResNet50(include_top=False)`` work: the file
    is read into a standalone backbone, then copied layer by layer (by name).
    """
    reference = _constructor(backbone)(include_top=False, weights=None, input_shape=shape)
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


def _copy_backbone(model: keras.Model, rotnet: keras.Model, freeze: bool) -> None:
    """Copy the RotNet's normalisation and backbone weights (every layer up to the pooling)."""
    for layer in model.layers[1:]:  # [0] is the input
        if layer.name == "avg_pool":
            break
        layer.set_weights(rotnet.get_layer(layer.name).get_weights())
        if freeze and layer.name != "input_normalization":
            layer.trainable = False


def _build(
    head: Callable[[keras.KerasTensor], keras.KerasTensor],
    kind: str,
    input_shape,
    backbone: str,
    weights,
    normalization: str | None,
    fast_conv: bool,
    freeze_backbone: bool = False,
) -> keras.Model:
    check_backbone(backbone)
    shape = _check_shape(input_shape, backbone)
    weights = _check_weights(weights, backbone, shape, kind)
    if not isinstance(fast_conv, bool):
        raise ValueError(f"fast_conv must be True or False; got {fast_conv!r}")
    if not isinstance(freeze_backbone, bool):
        raise ValueError(f"freeze_backbone must be True or False; got {freeze_backbone!r}")
    if freeze_backbone and weights is None:
        raise ValueError(
            "freeze_backbone=True needs pretrained weights (a RotNet, imagenet or a file)"
        )
    if isinstance(weights, keras.Model):
        if normalization is not None:
            raise ValueError("normalization is taken from the RotNet given as weights; omit it")
    if normalization is None:
        normalization = "unit" if weights is None else BACKBONES[backbone][1]
    check_choice("normalization", normalization, NORMALIZATION_MODES)

    inputs = keras.Input(shape, name="image")
    norm = keras.layers.Dense(3, trainable=False, dtype="float32", name="input_normalization")
    base = _constructor(backbone)(
        include_top=False, weights="imagenet" if weights == "imagenet" else None,
        input_tensor=norm(inputs),
    )
    features = keras.layers.GlobalAveragePooling2D(name="avg_pool")(base.output)
    model = keras.Model(inputs, head(features), name=f"{kind}_{backbone}")
    if isinstance(weights, keras.Model):
        _copy_backbone(model, weights, freeze_backbone)
    else:
        norm.set_weights(list(normalization_weights(normalization)))
        if weights not in (None, "imagenet"):
            _load_backbone_file(model, backbone, shape, weights)
        if freeze_backbone:
            for layer in model.layers[2 : model.layers.index(model.get_layer("avg_pool"))]:
                layer.trainable = False  # [0] input, [1] input_normalization (never trained)
    return use_fast_conv(model) if fast_conv else model


def build_rotnet(
    input_shape: Sequence[int] = (32, 32, 3),
    *,
    angles: Sequence[float] = DEFAULT_ANGLES,
    head: str = "bins",
    sigma: float | None = None,
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
        Rotations (degrees) to classify; any set of distinct angles (evenly
        covering the circle for the circular head, e.g. ``angles_every(5)``).
    head : {"bins", "circular"}, default "bins"
        ``"bins"`` (the paper): one output per angle, trained on the angle applied.
        ``"circular"``: fine bins over the circle trained on uniformly random angles
        with circular-Gaussian soft labels, read as a continuous angle (see
        :mod:`risc_tf.heads`).
    sigma : float, optional
        The circular head's soft-label width in degrees (default: the bin width).
    backbone : str, default "resnet50"
        A name from :data:`~risc_tf.backbones.BACKBONES`; ``"small"`` is a fast
        CNN for tests and CPUs.
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
        :class:`risc_tf.fast.FastConv2D` / ``FastBatchNormalization`` (same
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
    head, sigma = check_head(head, angles, sigma)
    check_resolution(angles, _check_shape(input_shape, check_backbone(backbone))[0])
    try:
        units = tuple(check_int("hidden_units", u) for u in hidden_units)
    except (TypeError, ValueError):
        units = ()
    if len(units) != 2:
        raise ValueError(f"hidden_units must be two positive ints; got {hidden_units!r}")
    dropout = check_fraction("dropout", dropout)

    def top(x):
        for i, width in enumerate(units, start=1):
            x = keras.layers.Dropout(dropout, name=f"rot_dropout{i}")(x)
            x = keras.layers.Dense(width, activation="relu", name=f"rot_fc{i}")(x)
        return RotationOutput(angles, head, sigma, dtype="float32", name="rotation")(x)

    return _build(top, "rotnet", input_shape, backbone, weights, normalization, fast_conv)


def build_classifier(
    num_classes: int,
    input_shape: Sequence[int] = (32, 32, 3),
    *,
    backbone: str = "resnet50",
    weights: str | os.PathLike | keras.Model | None = None,
    freeze_backbone: bool = False,
    dropout: float = 0.0,
    normalization: str | None = None,
    fast_conv: bool = True,
) -> keras.Model:
    """The RISC classifier: backbone without top, global pooling, softmax over classes.

    Parameters
    ----------
    num_classes : int
        Number of classes (>= 2; binary tasks use a 2-way softmax).
    input_shape, backbone, normalization, fast_conv
        As in :func:`build_rotnet`.
    weights : None, "imagenet", path or keras.Model, default None
        As in :func:`build_rotnet`, or a trained RotNet (same backbone and input
        size): its input normalisation and backbone weights are copied into the
        classifier, which is then fine-tuned (self-supervised initialisation).
    freeze_backbone : bool, default False
        Keep the initialised backbone fixed and train the head only (a linear
        probe); needs ``weights``.
    dropout : float, default 0.0
        Dropout before the output layer.

    Returns
    -------
    keras.Model
        Uncompiled, output ``(N, num_classes)`` probabilities.

    Raises
    ------
    ValueError
        Bad arguments; ``weights=`` a model that is not a RotNet, or a RotNet of
        another backbone or input size (the message names both).

    Examples
    --------
    >>> clf = build_classifier(2, backbone="small")
    >>> clf.output_shape
    (None, 2)
    """
    num_classes = check_int("num_classes", num_classes, 2)
    dropout = check_fraction("dropout", dropout)

    def head(x):
        if dropout:
            x = keras.layers.Dropout(dropout, name="dropout")(x)
        return keras.layers.Dense(
            num_classes, activation="softmax", dtype="float32", name="predictions"
        )(x)

    return _build(head, "classifier", input_shape, backbone, weights, normalization, fast_conv,
                  freeze_backbone)
