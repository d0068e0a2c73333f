"""A traced TensorFlow serving function as an ONNX model (the ``risc_tf[onnx]`` extra).

:mod:`risc_tf.export` builds the pipeline's serving graph; this module converts
it with `tf2onnx <https://github.com/onnx/tensorflow-onnx>`_ (and checks it
with ``onnx``), for onnxruntime and the other ONNX runtimes. Only what
tf2onnx cannot do alone lives here:

* **Captured constants.** The pipeline's rotation tables are tensors captured
  by the traced function; ``tf2onnx.convert.from_function`` lists every
  captured tensor as a model input. The graph is frozen with the signature's
  own inputs only, so the constants become initializers.
* **Antialiased resize.** ``tf.image.resize(..., antialias=True)`` (what the
  pipeline resizes with) is TensorFlow's ``ScaleAndTranslate`` op, which tf2onnx
  does not convert. ONNX ``Resize`` (opset 18 and later) with ``antialias=1``,
  ``exclude_outside=1`` and half-pixel coordinates computes the same triangle
  filter; :func:`_scale_and_translate` maps one to the other.

The opset is :data:`OPSET` (18, the first with an antialiasing ``Resize``).
Graph-side input checks (``tf.debugging.assert_*``) have no ONNX counterpart
and are dropped by the converter: an ONNX model trusts its input.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging

import numpy as np
import tensorflow as tf

__all__ = ["EXTRA", "OPSET", "check_converter", "to_onnx"]

#: ONNX opset of the exported models.
OPSET = 18
#: How to install the converter.
EXTRA = 'pip install "risc_tf[onnx]"'
_REQUIRES = ("tf2onnx", "onnx")


def check_converter() -> None:
    """Raise a clear ImportError when the ONNX converter is not installed (imports nothing).

    Raises
    ------
    ImportError
        tf2onnx or onnx is missing; the message names the ``risc_tf[onnx]`` extra.
    """
    missing = [name for name in _REQUIRES if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"format='onnx' needs {' and '.join(missing)}, not installed: "
                          f"{EXTRA}")


def _scale_and_translate(ctx, node, name, args):
    """tf2onnx handler: TensorFlow's antialiased resize as ONNX ``Resize`` (NHWC kept)."""
    from onnx import TensorProto

    kernel = node.get_attr_str("kernel_type")
    antialias = node.get_attr_value("antialias")
    translation = node.inputs[3]
    if kernel != "triangle" or not antialias or not translation.is_const() or np.any(
            translation.get_tensor_value(as_list=False)):
        raise ValueError(f"{node.name}: only tf.image.resize(..., 'bilinear', antialias=True) "
                         f"converts (kernel {kernel!r}, antialias {antialias})")
    images, size = node.input[0], node.input[1]
    nchw = ctx.make_node("Transpose", [images], {"perm": [0, 3, 1, 2]})
    shape = ctx.make_node("Shape", [nchw.output[0]])
    zero = ctx.make_const(f"{node.name}/zero", np.array([0], np.int64))
    two = ctx.make_const(f"{node.name}/two", np.array([2], np.int64))
    batch_channels = ctx.make_node("Slice", [shape.output[0], zero.output[0], two.output[0]])
    new_size = ctx.make_node("Cast", [size], {"to": TensorProto.INT64})
    sizes = ctx.make_node("Concat", [batch_channels.output[0], new_size.output[0]], {"axis": 0})
    empty = ctx.make_const(f"{node.name}/empty", np.array([], np.float32))
    resized = ctx.make_node(
        "Resize", [nchw.output[0], empty.output[0], empty.output[0], sizes.output[0]],
        {"mode": "linear", "antialias": 1, "exclude_outside": 1,
         "coordinate_transformation_mode": "half_pixel"})
    shapes, dtypes = node.output_shapes, node.output_dtypes
    ctx.remove_node(node.name)
    ctx.make_node("Transpose", resized.output, {"perm": [0, 2, 3, 1]}, name=node.name,
                  outputs=node.output, shapes=shapes, dtypes=dtypes)


@contextlib.contextmanager
def _quiet_converter():
    """tf2onnx's and TensorFlow's Python log lines (deprecations, progress) kept for errors."""
    loggers = [logging.getLogger(n) for n in ("tf2onnx", "tensorflow", "absl")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _name_dims(model, names) -> None:
    """Give the input's free dimensions names (tf2onnx calls them ``unk__N``), everywhere."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    rename = {d.dim_param: n for d, n in zip(dims, names) if d.dim_param}
    for value in (*model.graph.input, *model.graph.output, *model.graph.value_info):
        for d in value.type.tensor_type.shape.dim:
            if d.dim_param in rename:
                d.dim_param = rename[d.dim_param]


def to_onnx(fn, spec: tf.TensorSpec, *, dim_names: tuple[str, ...] = (),
            metadata: dict[str, str] | None = None):
    """Convert a serving function of one batch to a checked ONNX model.

    Parameters
    ----------
    fn : callable
        ``fn(images) -> dict`` of named output tensors, traceable by ``tf.function``.
    spec : tf.TensorSpec
        The input; its name is the ONNX input's name.
    dim_names : tuple of str, optional
        Names of the input's dimensions (those of free size), e.g. ``("batch", ...)``.
    metadata : dict of str, optional
        Written to the model's ``metadata_props`` (onnxruntime:
        ``session.get_modelmeta().custom_metadata_map``).

    Returns
    -------
    onnx.ModelProto
        Opset :data:`OPSET`; inputs and outputs named as ``spec`` and ``fn``'s keys.

    Raises
    ------
    ImportError
        The converter is missing (see :func:`check_converter`).
    ValueError
        The graph holds an op without an ONNX conversion (named).
    """
    check_converter()
    import onnx
    import tf2onnx

    concrete = tf.function(fn, autograph=False).get_concrete_function(spec)
    images = concrete.inputs[0].name  # the signature's input; captured tensors follow it
    outputs = {t.name: key for key, t in concrete.structured_outputs.items()}
    with _quiet_converter():
        graph_def = tf2onnx.tf_loader.from_function(concrete, [images], list(outputs))
        model, _ = tf2onnx.convert.from_graph_def(
            graph_def, name="risc_pipeline", input_names=[images], output_names=list(outputs),
            opset=OPSET, tensors_to_rename={images: spec.name, **outputs},
            custom_op_handlers={"ScaleAndTranslate": (_scale_and_translate, [])})
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as err:  # an op left unconverted
        raise ValueError(f"the serving graph does not convert to ONNX: "
                         f"{str(err).strip().splitlines()[0]}") from None
    _name_dims(model, dim_names)
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model
