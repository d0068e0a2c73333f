"""Export a whole RISCPipeline for serving: a TensorFlow SavedModel, or LiteRT (TFLite).

``format="tf_saved_model"`` writes, with Keras's ``keras.export.ExportArchive``,
one SavedModel that holds both models and the fused chain (input checks that a
graph can do, grayscale/RGBA to RGB, resize to the model input, fill, RotNet,
counter-rotation, classifier). Two signatures take a batch of any size and any
image size, channels 1, 3 or 4:

* ``serving_default``: float32 in [0, 1];
* ``serving_uint8``: uint8 in [0, 255].

Both return ``probabilities`` ``(N, C)``, ``class_index`` ``(N,)``,
``class_name`` ``(N,)`` (strings), ``class_probability``, ``rotation``
(degrees) and ``rotation_confidence``. The SavedModel loads with
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
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import tensorflow as tf

from risc_tf.angles import is_quarter_turn_set
from risc_tf.atomic import temporary_folder
from risc_tf.preprocessing import to_model_input
from risc_tf.resample import MAX_TABLE_SIDE
from risc_tf.saving import to_plain_keras
from risc_tf.validation import MIN_SIDE, check_choice

__all__ = ["FORMATS", "export_pipeline"]

FORMATS = ("tf_saved_model", "litert")


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
                                  to_plain_keras(pipe.classifier))


def _outputs(pipe, x: tf.Tensor) -> dict:
    """The serving outputs of the pipeline's own fused graph on model-input images."""
    out = pipe.forward(x, "details")
    proba = out[:, :len(pipe.classes_)]
    index = tf.argmax(proba, axis=1)
    return {
        "probabilities": proba,
        "class_index": index,
        "class_name": tf.gather(tf.constant(pipe.classes_.tolist()), index),
        "class_probability": tf.reduce_max(proba, axis=1),
        "rotation": out[:, -2],  # the pipeline's read_rotation: its angle and confidence
        "rotation_confidence": out[:, -1],
    }


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


def _litert(pipe, path: Path) -> None:
    if not is_quarter_turn_set(pipe.angles) and pipe.image_size > MAX_TABLE_SIDE:
        raise ValueError(
            f"a LiteRT export of the angle set {pipe.angles} needs input images of at most "
            f"{MAX_TABLE_SIDE}x{MAX_TABLE_SIDE} (its counter-rotation becomes a precomputed "
            f"gather); this pipeline's input is {pipe.image_size}x{pipe.image_size}"
        )
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


def export_pipeline(pipe, path: str | os.PathLike, *, format: str = "tf_saved_model",
                    overwrite: bool = False) -> Path:
    """Export a :class:`~risc_tf.RISCPipeline` for serving.

    Parameters
    ----------
    pipe : RISCPipeline
        Any object with the pipeline's ``forward``, ``get_config`` and ``from_config``
        (this module sits below :mod:`risc_tf.pipeline` and does not import it).
    path : path
        A new folder (SavedModel) or a new ``.tflite`` file (LiteRT).
    format : {"tf_saved_model", "litert"}, default "tf_saved_model"
        See the module docs.
    overwrite : bool, default False
        Replace an existing export at ``path``.

    Returns
    -------
    Path
        Written to a temporary name first and moved into place.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is off, or it is not an earlier export
        (never replaced).
    ValueError
        An unknown format, or a LiteRT path not ending in ``.tflite``.

    Examples
    --------
    >>> pipe.export("serving/risc/1")  # doctest: +SKIP
    >>> tf.saved_model.load("serving/risc/1").signatures["serving_uint8"]  # doctest: +SKIP
    """
    check_choice("format", format, FORMATS)
    path = Path(path)
    if format == "litert" and path.suffix != ".tflite":
        raise ValueError(f"a LiteRT export is a .tflite file; got {str(path)!r}")
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"{path} exists; choose a new path or pass overwrite=True")
        is_export = (path.is_file() and path.suffix == ".tflite") or (
            path.is_dir() and (path / "saved_model.pb").is_file())
        if not is_export:
            raise FileExistsError(f"{path} exists and is not an export (no saved_model.pb, not "
                                  "a .tflite file); it is left alone")
    with temporary_folder(path) as tmp:
        target = tmp / path.name
        if format == "tf_saved_model":
            _saved_model(pipe, target)
        else:
            _litert(pipe, target)
        if path.exists():  # the old export aside until the new one is in place
            old = tmp / f"{path.name}.old"
            os.replace(path, old)
            try:
                os.replace(target, path)
            except OSError:
                os.replace(old, path)
                raise
        else:
            os.replace(target, path)
    return path
