"""Read a ``.keras`` file written by risc_tf straight into risc_tf's layers: one build.

``keras.models.load_model`` builds the file's stock layers and draws random
initial weights that the file's weights then replace; risc_tf then had to clone
the model to give it its fast layers, its RotNet output and, for inference,
BatchNorm folded into the convolutions. Here the file's model config is
rewritten first, layer by layer, into what :func:`risc_tf.saving.load_model`
returns (:func:`convert_layer_configs`, with zeros initializers), the model is
built once from it (``keras.saving.deserialize_keras_object``), and each layer
gets the file's weights, folded where asked, and then its own initializers back.

The weights are read from the archive's ``model.weights.h5`` as Keras lays them
out and reads them back: ``layers/<key>/vars/<index>``, where a layer's key is
its class name in snake case, numbered in the order of the config's layers
(``conv2d``, ``conv2d_1``, ...), and the index follows the layer's weights. A
file this module cannot read exactly (a nested model, a layer whose weights are
missing or of another count or shape) gives None, and
:func:`risc_tf.saving.load_model` takes Keras's own loader and a clone instead:
slower, the same model.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections import Counter
from collections.abc import Collection
from pathlib import Path

import keras
import numpy as np

from risc_tf.fast import FastBatchNormalization, FastConv2D, FoldedBatchNormalization
from risc_tf.fast.folding import fold_arrays
from risc_tf.models import RotationOutput

__all__ = ["batchnorm_config_pairs", "convert_layer_configs", "load_archive", "weight_groups"]

_ZEROS = {"module": "keras.initializers", "class_name": "Zeros", "config": {},
          "registered_name": None}
_FAST = {"Conv2D": FastConv2D, "BatchNormalization": FastBatchNormalization}


def _as(cls: type, layer: dict, config: dict) -> dict:
    """``layer`` (a layer's serialized form) as a layer of class ``cls`` with ``config``."""
    return {**layer, "module": cls.__module__, "class_name": cls.__name__,
            "registered_name": keras.saving.get_registered_name(cls), "config": config}


def _sources(layer: dict) -> list[str]:
    """Names of the layers whose outputs a serialized layer takes (all its calls)."""
    names = []

    def walk(value):
        if isinstance(value, dict):
            if value.get("class_name") == "__keras_tensor__":
                names.append(value["config"]["keras_history"][0])
            else:
                for item in value.values():
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(layer.get("inbound_nodes", []))
    return names


def _names(refs) -> set[str]:
    """Layer names in a functional config's ``output_layers`` (``[name, node, index]``
    entries, nested in lists or dicts)."""
    if isinstance(refs, dict):
        refs = list(refs.values())
    if isinstance(refs, list) and len(refs) == 3 and isinstance(refs[0], str):
        return {refs[0]}
    return set().union(*map(_names, refs)) if isinstance(refs, list) else set()


def batchnorm_config_pairs(model_config: dict) -> dict[str, str]:
    """:func:`risc_tf.fast.batchnorm_pairs` read from a functional model's config.

    Stock ``Conv2D`` and ``BatchNormalization`` layers only (what risc_tf's files
    hold); the same conditions: a channels-last BatchNormalization called once,
    on the output of a channels-last, ungrouped ``Conv2D`` with no activation that
    is called once and feeds nothing else (no other layer, no model output).
    """
    layers = {layer["config"]["name"]: layer for layer in model_config["layers"]}
    uses = Counter(name for layer in layers.values() for name in _sources(layer))
    outputs = _names(model_config.get("output_layers", []))
    pairs = {}
    for name, layer in layers.items():
        config = layer["config"]
        if layer["class_name"] != "BatchNormalization" or config.get("axis") not in (-1, 3) \
                or len(layer.get("inbound_nodes", [])) != 1:
            continue
        source = _sources(layer)
        conv = layers.get(source[0]) if len(source) == 1 else None
        if conv is None or conv["class_name"] != "Conv2D":
            continue
        c = conv["config"]
        if c.get("data_format") == "channels_last" and c.get("groups", 1) == 1 \
                and c.get("activation") in (None, "linear") and not c.get("lora_rank") \
                and len(conv.get("inbound_nodes", [])) == 1 and uses[conv["config"]["name"]] == 1 \
                and conv["config"]["name"] not in outputs:
            pairs[name] = conv["config"]["name"]
    return pairs


def convert_layer_configs(model_config: dict, *, fast_conv: bool, angles, head: dict,
                          folded: Collection[str], fold: dict[str, str]) -> dict:
    """The model config with each layer as :func:`risc_tf.saving.load_model` returns it.

    ``folded`` names BatchNorm layers the file holds as identities (already
    folded), ``fold`` the pairs to fold now (BatchNorm -> convolution); a RotNet's
    last ``Dense`` becomes a :class:`~risc_tf.models.RotationOutput` with
    ``angles`` and ``head``; with ``fast_conv`` the other convolutions and
    BatchNorms become the fast layers. Every initializer is zeros (the weights
    are all set afterwards; :func:`load_archive` puts the originals back).
    """
    layers = model_config["layers"]
    last = layers[-1]["config"]["name"]
    convs = set(fold.values())
    out = []
    for layer in layers:
        config = {key: (_ZEROS if key.endswith("_initializer") and value is not None else value)
                  for key, value in layer["config"].items()}
        name, kind = config["name"], layer["class_name"]
        if name in folded or name in fold:
            layer = _as(FoldedBatchNormalization, layer, {"name": name})
        elif angles and name == last and kind == "Dense":
            layer = _as(RotationOutput, layer, RotationOutput.config_from_dense(config, angles,
                                                                                 head))
        else:
            if name in convs:
                config["use_bias"] = True
            cls = _FAST.get(kind) if fast_conv and layer.get("module") == "keras.layers" else None
            layer = _as(cls, layer, config) if cls else {**layer, "config": config}
        out.append(layer)
    return {**model_config, "layers": out}


def _snake_case(name: str) -> str:
    """Keras's ``to_snake_case`` (``keras.src.utils.naming``): how it names a layer in the
    weights file."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def weight_groups(model_config: dict) -> dict[str, str]:
    """Layer name -> its group in the weights file (``layers/<key>/vars``), as Keras's
    saver numbers them: class names in snake case, in the config's order."""
    used: Counter = Counter()
    groups = {}
    for layer in model_config["layers"]:
        key = _snake_case(layer["class_name"])
        groups[layer["config"]["name"]] = f"layers/{key}_{used[key]}/vars" if used[key] \
            else f"layers/{key}/vars"
        used[key] += 1
    return groups


class _Weights:
    """The file's weights of each layer, by layer name; folded for the convolutions in
    ``fold``."""

    def __init__(self, store, model_config: dict, fold: dict[str, str]):
        self.store, self.groups = store, weight_groups(model_config)
        self.configs = {la["config"]["name"]: la["config"] for la in model_config["layers"]}
        self.bn_of = {conv: bn for bn, conv in fold.items()}

    def stored(self, name: str) -> list[np.ndarray] | None:
        group = self.store.get(self.groups.get(name, "-"))
        return None if group is None else [np.asarray(group[str(i)]) for i in range(len(group))]

    def __getitem__(self, name: str) -> list[np.ndarray] | None:
        values = self.stored(name)
        if values is None or name not in self.bn_of:
            return values
        bn = self.configs[self.bn_of[name]]
        stats = self.stored(self.bn_of[name])
        if stats is None or len(stats) != 2 + bool(bn.get("scale")) + bool(bn.get("center")):
            return None
        gamma = stats.pop(0) if bn.get("scale") else None
        beta = stats.pop(0) if bn.get("center") else None
        return fold_arrays(values[0], values[1] if len(values) > 1 else None, gamma, beta,
                           stats[0], stats[1], bn["epsilon"])


def load_archive(path: str | Path, meta: dict, *, fast_conv: bool = True,
                 fold_batchnorm: bool = False) -> keras.Model | None:
    """The model in a risc_tf ``.keras`` file, built once; None when this module cannot
    read the file exactly (the caller then takes Keras's loader).

    Parameters
    ----------
    path : path of a ``.keras`` file with risc_tf's metadata ``meta``
    fast_conv, fold_batchnorm : bool
        As :func:`risc_tf.saving.load_model`.
    """
    import h5py

    with zipfile.ZipFile(path) as archive:
        spec = json.loads(archive.read("config.json"))
        weights = archive.read("model.weights.h5") if "model.weights.h5" in \
            archive.namelist() else None
    config = spec.get("config", {})
    if spec.get("class_name") != "Functional" or weights is None or any(
            layer.get("class_name") in ("Functional", "Sequential", "Model")
            for layer in config.get("layers", [])):
        return None
    angles = meta.get("angles")
    head = meta.get("rotnet_head") or {"head": "bins", "sigma": None}
    folded = set(meta.get("folded_batchnorm") or ())
    fold = {bn: conv for bn, conv in batchnorm_config_pairs(config).items()
            if bn not in folded} if fold_batchnorm else {}
    layers = convert_layer_configs(config, fast_conv=fast_conv, angles=angles, head=head,
                                   folded=folded, fold=fold)
    model = keras.saving.deserialize_keras_object(
        {**spec, "compile_config": None, "config": layers})
    with h5py.File(io.BytesIO(weights), "r") as store:
        stored = _Weights(store, config, fold)
        for layer in model.layers:
            if not layer.weights:
                continue
            values = stored[layer.name]
            if values is None or [v.shape for v in values] != \
                    [tuple(w.shape) for w in layer.weights]:
                return None
            layer.set_weights(values)
            for key, value in stored.configs[layer.name].items():
                if key.endswith("_initializer") and value is not None and hasattr(layer, key):
                    setattr(layer, key, keras.initializers.get(value))
    return model
