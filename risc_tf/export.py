"""Export a whole RISCPipeline for serving: a TensorFlow SavedModel, LiteRT (TFLite) or ONNX.

``format="tf_saved_model"`` writes, with Keras's ``keras.export.ExportArchive``,
one SavedModel that holds both models and the fused chain (input checks that a
graph can do, grayscale/RGBA to RGB, resize to the model input, fill, RotNet,
counter-rotation, classifier). Two signatures take a batch of any size and any
image size, channels 1, 3 or 4:

* ``serving_default``: float32 in [0, 1];
* ``serving_uint8``: uint8 in [0, 255].

Both return ``probabilities`` ``(N, C)`` (calibrated by the pipeline's
temperatures), ``class_index`` ``(N,)``, ``class_name`` ``(N,)`` (strings),
``class_probability``, ``rotation`` (degrees: the RotNet's angle, continuous for a
circular head), ``rotation_confidence``, ``review`` (the pipeline's review
thresholds, and its out-of-distribution flag, applied in the graph) and, for a
pipeline with a detector, ``ood_score``. The SavedModel loads with
``tf.saved_model.load`` (or TensorFlow Serving) without risc_tf installed.

``format="litert"`` writes a ``.tflite`` flat buffer whose one signature takes
float32 ``(N, S, S, 3)`` at the model's input size (resize and grayscale
stacking belong to the device's image pipeline) and returns the same numbers
(class names are in the pipeline's ``risc_pipeline.json``). Every angle set
converts with TensorFlow Lite builtin ops only: the pipeline undoes quarter
turns with reversals and transposes, and any other fixed angle with a
precomputed bilinear gather (:func:`risc_tf.resample.rotation_tables`, for
inputs up to 64x64), so no interpolation op (which would need the Select
TensorFlow ops and the Flex delegate) is left in the graph.

``format="onnx"`` writes a ``.onnx`` file (opset 18, converted by tf2onnx, the
``risc_tf[onnx]`` extra; see :mod:`risc_tf.export_onnx`) of the same fused
chain as the SavedModel's ``serving_default``: one input ``images``, float32
``(N, H, W, C)`` in [0, 1] of any batch and image size, channels 1, 3 or 4,
and the same outputs (``class_name`` a string tensor). Class names, angles,
mode, fill and input size are also in the model's metadata. The graph checks
nothing (ONNX has no assertion): values outside [0, 1] or images under 4x4
give meaningless answers, not errors. Like LiteRT, it undoes angles other than
quarter turns with the precomputed gathers, so such angle sets need inputs of
at most 64x64.

Exports are written under a temporary name and swapped into place
(:func:`risc_tf.atomic.swap_into_place`): a failure leaves the old export or
the new one. :func:`check_export_path` refuses a path or format before any
work (the command line calls it before loading the pipeline).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import tensorflow as tf

from risc_tf.angles import is_quarter_turn_set
from risc_tf.atomic import swap_into_place, temporary_folder
from risc_tf.corrections import for_mode
from risc_tf.export_onnx import check_converter, to_onnx
from risc_tf.preprocessing import to_model_input
from risc_tf.resample import MAX_TABLE_SIDE
from risc_tf.saving import to_plain_keras
from risc_tf.validation import MIN_SIDE, check_choice

__all__ = ["FORMATS", "check_export_path", "export_pipeline"]

FORMATS = ("tf_saved_model", "litert", "onnx")
#: The file suffix of the formats that write one file (a SavedModel is a folder).
SUFFIXES = {"litert": ".tflite", "onnx": ".onnx"}


def _serving_input(raw: tf.Tensor, size: int, scale: float) -> tf.Tensor:
    """Check a batch in the graph (what a graph can check), then the pipeline's conversion."""
    x = tf.cast(raw, tf.float32) * scale
    shape = tf.shape(x)
    checks = [
        tf.debugging.assert_greater_equal(tf.reduce_min(shape[1:3]), MIN_SIDE,
                                          message=f"images must be at least {MIN_SIDE}x{MIN_SIDE}"),
        tf.debugging.assert_equal(tf.reduce_any(tf.equal(shape[3], [1, 3, 4])), True,
                                  message="images must have 1, 3 or 4 channels (last axis)"),
        tf.debugging.assert_greater_equal(tf.reduce_min(x), 0.0,
                                          message="float images must lie in [0, 1]"),
        tf.debugging.assert_less_equal(tf.reduce_max(x), 1.0,
                                       message="float images must lie in [0, 1]"),
    ]
    with tf.control_dependencies(checks):
        return to_model_input(tf.identity(x), size)


def _serving_pipeline(pipe):
    """A copy of the pipeline on plain Keras models (nothing of risc_tf in the graph)."""
    return type(pipe).from_config(pipe.get_config(), to_plain_keras(pipe.rotnet),
                                  to_plain_keras(pipe.classifier), ood=pipe.ood)


def _outputs(pipe, x: tf.Tensor) -> dict:
    """The serving outputs of the pipeline's own fused graph on model-input images."""
    out = pipe.forward(x, "details")
    proba = out[:, :len(pipe.classes_)]
    index = tf.argmax(proba, axis=1)
    # the pipeline's read_rotation (angle, confidence) and out-of-distribution score
    angle, confidence, score = out[:, -3], out[:, -2], out[:, -1]
    class_probability = tf.reduce_max(proba, axis=1)
    review = (confidence < pipe.min_rotation_confidence) | \
        (class_probability < pipe.min_class_probability)
    outputs = {
        "probabilities": proba,
        "class_index": index,
        "class_name": tf.gather(tf.constant(pipe.classes_.tolist()), index),
        "class_probability": class_probability,
        "rotation": angle,
        "rotation_confidence": confidence,
    }
    if pipe.ood is not None:
        outputs["ood_score"] = score
        review = review | (score > pipe.ood.threshold)
    outputs["review"] = review
    return outputs


def _saved_model(pipe, path: Path) -> None:
    serving = _serving_pipeline(pipe)
    size = serving.image_size
    archive = keras.export.ExportArchive()
    archive.track(serving.rotnet)
    archive.track(serving.classifier)
    for name, dtype, scale in (("serving_default", tf.float32, 1.0),
                               ("serving_uint8", tf.uint8, 1.0 / 255.0)):
        archive.add_endpoint(
            name, lambda images, s=scale: _outputs(serving, _serving_input(images, size, s)),
            input_signature=[tf.TensorSpec((None, None, None, None), dtype, name="images")],
        )
    archive.write_out(str(path), verbose=False)


def _check_gathers(pipe, what: str) -> None:
    """Formats without an interpolating image transform need the precomputed rotation tables
    (a correction by the angle set's bins; a continuous angle computes its taps in the graph)."""
    tables = for_mode(pipe.mode).angle is None and not is_quarter_turn_set(pipe.angles)
    if tables and pipe.image_size > MAX_TABLE_SIDE:
        raise ValueError(
            f"{what} export of the angle set {pipe.angles} needs input images of at most "
            f"{MAX_TABLE_SIDE}x{MAX_TABLE_SIDE} (its counter-rotation becomes a precomputed "
            f"gather); this pipeline's input is {pipe.image_size}x{pipe.image_size}"
        )


def _litert(pipe, path: Path) -> None:
    _check_gathers(pipe, "a LiteRT")
    serving = _serving_pipeline(pipe)
    size = serving.image_size

    def serve(images):
        out = _outputs(serving, images)
        out.pop("class_name")  # strings: in risc_pipeline.json instead
        return out

    archive = keras.export.ExportArchive()
    archive.track(serving.rotnet)
    archive.track(serving.classifier)
    archive.add_endpoint("serving_default", serve, input_signature=[
        tf.TensorSpec((None, size, size, 3), tf.float32, name="images")])
    saved = path.with_suffix(".savedmodel")
    archive.write_out(str(saved), verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), ["serving_default"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    path.write_bytes(converter.convert())


def _onnx(pipe, path: Path) -> None:
    from risc_tf._version import __version__

    _check_gathers(pipe, "an ONNX")
    serving = _serving_pipeline(pipe)
    size = serving.image_size
    metadata = {"class_names": json.dumps(serving.classes_.tolist()),
                "angles": json.dumps(list(serving.angles)), "mode": serving.mode,
                "head": serving.head, "sigma": json.dumps(serving.sigma),
                "fill": serving.fill, "input_size": str(size), "risc_tf": __version__}
    model = to_onnx(lambda images: _outputs(serving, _serving_input(images, size, 1.0)),
                    tf.TensorSpec((None, None, None, None), tf.float32, name="images"),
                    dim_names=("batch", "height", "width", "channels"), metadata=metadata)
    path.write_bytes(model.SerializeToString())


def _is_export(path: Path) -> bool:
    return (path.is_file() and path.suffix in SUFFIXES.values()) or (
        path.is_dir() and (path / "saved_model.pb").is_file())


def check_export_path(path: str | os.PathLike, *, format: str = "tf_saved_model",
                      overwrite: bool = False) -> Path:
    """Check an export's path and format before any work; what :func:`export_pipeline` refuses.

    Parameters
    ----------
    path : path
        A new folder (SavedModel), ``.tflite`` file (LiteRT) or ``.onnx`` file (ONNX).
    format : {"tf_saved_model", "litert", "onnx"}, default "tf_saved_model"
    overwrite : bool, default False
        Whether an earlier export at ``path`` may be replaced.

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        An unknown format, or a path without the format's suffix.
    FileExistsError
        ``path`` exists and ``overwrite`` is off, or it is not an earlier export
        (never replaced).
    ImportError
        ``format="onnx"`` without the converter (the message names the
        ``risc_tf[onnx]`` extra).
    """
    check_choice("format", format, FORMATS)
    path = Path(path)
    suffix = SUFFIXES.get(format)
    if suffix and path.suffix != suffix:
        raise ValueError(f"path must end in {suffix} for format={format!r}; got {str(path)!r}")
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"path {path} exists; choose a new path or pass overwrite=True "
                                  "to replace an earlier export")
        if not _is_export(path):
            raise FileExistsError(f"path {path} exists and is not an export (no saved_model.pb, "
                                  "not a .tflite or .onnx file); it is left alone")
    if format == "onnx":
        check_converter()
    return path


def export_pipeline(pipe, path: str | os.PathLike, *, format: str = "tf_saved_model",
                    overwrite: bool = False) -> Path:
    """Export a :class:`~risc_tf.RISCPipeline` for serving.

    Parameters
    ----------
    pipe : RISCPipeline
        Any object with the pipeline's ``forward``, ``get_config`` and ``from_config``
        (this module sits below :mod:`risc_tf.pipeline` and does not import it).
    path : path
        A new folder (SavedModel), a new ``.tflite`` file (LiteRT) or a new
        ``.onnx`` file (ONNX).
    format : {"tf_saved_model", "litert", "onnx"}, default "tf_saved_model"
        See the module docs. ``"onnx"`` needs the ``risc_tf[onnx]`` extra.
    overwrite : bool, default False
        Replace an existing export at ``path``.

    Returns
    -------
    Path
        Written to a temporary name first and swapped into place.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is off, or it is not an earlier export
        (never replaced).
    ValueError
        An unknown format, a path without the format's suffix, or a graph the
        format cannot hold (named).
    ImportError
        ``format="onnx"`` without its converter: ``pip install "risc_tf[onnx]"``.

    Examples
    --------
    >>> pipe.export("serving/risc/1")  # doctest: +SKIP
    >>> tf.saved_model.load("serving/risc/1").signatures["serving_uint8"]  # doctest: +SKIP
    >>> pipe.export("risc.onnx", format="onnx")  # doctest: +SKIP
    """
    path = check_export_path(path, format=format, overwrite=overwrite)
    write = {"tf_saved_model": _saved_model, "litert": _litert, "onnx": _onnx}[format]
    with temporary_folder(path) as tmp:
        target = tmp / path.name
        write(pipe, target)
        swap_into_place(target, path)
    return path
