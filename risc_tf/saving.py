"""Saving and loading risc_tf models as plain Keras files.

:func:`save_model` writes a ``.keras`` file made of stock Keras layers only
(the fast layers become ``Conv2D`` / ``BatchNormalization``, the RotNet's
angle output a ``Dense``, a folded BatchNorm an identity ``BatchNormalization``), so that
``keras.models.load_model(path)`` works in a process that has never imported
risc_tf. What Keras has no place for (the RotNet's angles, the backbone, the
library version) travels inside the same file as an extra zip entry,
``risc_tf.json``, which Keras ignores; :func:`load_model` reads it back and
returns the model as risc_tf built it (angles recorded, fast layers on), built
once from the file's config rewritten for risc_tf's layers (:mod:`risc_tf.archive`).

Models saved by risc_tf 0.1 (custom ``InputNormalization`` and
``RotationOutput`` layers, no metadata entry) still load with :func:`load_model`.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import keras
import numpy as np

from risc_tf.archive import load_archive
from risc_tf.atomic import atomic_output, make_parent
from risc_tf.fast import FastBatchNormalization, FastConv2D, FoldedBatchNormalization
from risc_tf.fast.convert import chain, fast_layers, replace_layers
from risc_tf.fast.folding import batchnorm_folder
from risc_tf.heads import HEADS
from risc_tf.models import (
    RotationOutput,
    backbone_of,
    is_rotnet,
    model_image_size,
    normalization_weights,
)

__all__ = ["METADATA_ENTRY", "load_model", "read_metadata", "save_model", "to_plain_keras"]

#: Name of the zip entry that holds risc_tf's metadata inside a ``.keras`` file.
METADATA_ENTRY = "risc_tf.json"
_FORMAT = 1
_EPS = 1e-3  # identity BatchNorm: variance 1 - eps, so that (x - 0) / sqrt(var + eps) = x


@keras.saving.register_keras_serializable(package="risc_tf")
class InputNormalization(keras.layers.Layer):
    """The input normalisation layer of risc_tf 0.1 models, kept so that their files load.

    New models use a frozen ``Dense(3)`` (see :mod:`risc_tf.models`).
    """

    def __init__(self, mode: str = "unit", **kwargs):
        super().__init__(**kwargs)
        normalization_weights(mode)  # validates
        self.mode = mode

    def call(self, inputs):
        w, b = normalization_weights(self.mode)
        return keras.ops.matmul(inputs, w) + b

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def _plain_layer(layer):
    kind = type(layer)
    if kind in (FastConv2D, FastBatchNormalization):
        return kind.__mro__[1].from_config(layer.get_config()), None
    if isinstance(layer, RotationOutput):
        config = layer.get_config()
        for key in ("angles", "head", "sigma"):
            config.pop(key, None)
        return keras.layers.Dense.from_config({**config, "units": len(layer.angles)}), None
    if isinstance(layer, InputNormalization):
        dense = keras.layers.Dense(3, trainable=False, dtype="float32", name=layer.name)
        return dense, list(normalization_weights(layer.mode))
    if isinstance(layer, FoldedBatchNormalization):  # an identity BatchNorm (same call signature)
        identity = keras.layers.BatchNormalization(center=False, scale=False, epsilon=_EPS,
                                                   name=layer.name)
        channels = layer.input.shape[-1]
        return identity, [np.zeros(channels, np.float32), np.full(channels, 1.0 - _EPS,
                                                                  np.float32)]
    return None


def to_plain_keras(model: keras.Model) -> keras.Model:
    """A copy of a risc_tf model made of stock Keras layers only (same outputs, no optimizer)."""
    copy = replace_layers(model, _plain_layer, "to_plain_keras")
    return keras.Model(copy.inputs, copy.outputs, name=copy.name)  # uncompiled


def _metadata(model: keras.Model) -> dict:
    from risc_tf._version import __version__

    return {
        "format": _FORMAT,
        "library": "risc_tf",
        "version": __version__,
        "kind": "rotnet" if is_rotnet(model) else "classifier",
        "backbone": backbone_of(model),
        "input_size": model_image_size(model),
        "angles": list(model.layers[-1].angles) if is_rotnet(model) else None,
        "rotnet_head": ({"head": model.layers[-1].head, "sigma": model.layers[-1].sigma}
                        if is_rotnet(model) else None),
        "folded_batchnorm": [la.name for la in model.layers
                             if isinstance(la, FoldedBatchNormalization)],
        "keras": keras.__version__,
    }


def save_model(model: keras.Model, path: str | os.PathLike, overwrite: bool = True) -> Path:
    """Save a risc_tf model as a plain ``.keras`` file (no optimizer state).

    Parameters
    ----------
    model : keras.Model
        A RotNet or classifier (fast layers, folded copies and risc_tf 0.1
        models included).
    path : path ending in ".keras"
    overwrite : bool, default True
        Replace an existing file; False raises FileExistsError instead.

    Returns
    -------
    Path
        The file, written to a temporary name first and moved into place, so an
        interrupted save leaves no partial file.

    Examples
    --------
    >>> save_model(rotnet, "rotnet.keras")  # doctest: +SKIP
    >>> keras.models.load_model("rotnet.keras")  # works without risc_tf  # doctest: +SKIP
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"path must end in .keras; got {str(path)!r}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    if path.is_dir():
        raise FileExistsError(f"{path} is a folder")
    make_parent(path)
    meta = _metadata(model)
    plain = to_plain_keras(model)
    with atomic_output(path, keep_suffix=True) as tmp:
        plain.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(METADATA_ENTRY, json.dumps(meta, indent=2))
    return path


def read_metadata(path: str | os.PathLike) -> dict | None:
    """risc_tf's metadata stored in a ``.keras`` file (None for files without it)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if METADATA_ENTRY not in archive.namelist():
                return None
            return json.loads(archive.read(METADATA_ENTRY))
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable .keras file: {err}") from err


def _restorer(model: keras.Model, angles, head: dict, folded: set[str]):
    """The converter that brings back the RotNet's angle output and the folded BatchNorm
    markers from plain layers."""
    last = model.layers[-1].name

    def convert(layer):
        if angles and layer.name == last and isinstance(layer, keras.layers.Dense):
            config = RotationOutput.config_from_dense(layer.get_config(), angles, head)
            return RotationOutput.from_config(config), None
        if layer.name in folded:
            return FoldedBatchNormalization(name=layer.name), []
        return None

    return convert


def load_model(path: str | os.PathLike, fast_conv: bool = True,
               fold_batchnorm: bool = False) -> keras.Model:
    """Load a model written by :func:`save_model` (or by risc_tf 0.1) as risc_tf built it.

    Parameters
    ----------
    path : path of a ``.keras`` file
    fast_conv : bool, default True
        Give the model risc_tf's fast CPU layers (as the builders do).
    fold_batchnorm : bool, default False
        Load an inference copy, BatchNormalization folded into the convolutions
        (:func:`risc_tf.fold_batchnorm`, in the same build: no extra cost): the same
        outputs within float32 rounding, faster, but no BatchNormalization left to
        train.

    Returns
    -------
    keras.Model
        A RotNet records its angles again (:func:`risc_tf.rotnet_angles`).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is not a loadable Keras model (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    meta = read_metadata(path)
    if meta is not None:  # a file risc_tf wrote: built once, straight into risc_tf's layers
        try:
            model = load_archive(path, meta, fast_conv=fast_conv, fold_batchnorm=fold_batchnorm)
        except Exception:  # a file it cannot read: Keras's loader below reads it, or says
            model = None  # what is wrong with it (the tests hold both ways equal on good files)
        if model is not None:
            return model
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as err:  # Keras raises many kinds for bad files
        raise ValueError(f"could not load the model in {path}: {err}") from err
    legacy_angles = list(model.layers[-1].angles) if is_rotnet(model) else None
    folded = {la.name for la in model.layers if isinstance(la, FoldedBatchNormalization)}
    angles = (meta or {}).get("angles") or legacy_angles
    head = (meta or {}).get("rotnet_head") or {"head": "bins", "sigma": None}
    if head.get("head") not in HEADS:
        raise ValueError(f"{path} holds a RotNet with a {head.get('head')!r} head, which this "
                         f"risc_tf does not know (it knows {', '.join(HEADS)}); a newer "
                         "risc_tf wrote it")
    folded |= set((meta or {}).get("folded_batchnorm") or ())
    # plain layers (files of risc_tf 0.1 hold others), then the RotNet's output and the
    # folded markers, then the folding asked for, then the fast layers: one clone for all
    steps = [_plain_layer, _restorer(model, angles, head, folded)]
    if fold_batchnorm:
        steps.append(batchnorm_folder(model, skip=folded))
    return replace_layers(model, chain(*steps, *([fast_layers] if fast_conv else [])),
                          "load_model")
