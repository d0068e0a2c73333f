"""FastConv2D: same layer, weights and numbers as keras Conv2D; fast where it can be."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import risc_tf
from risc_tf.fast import (
    EIGEN_POLICY,
    ONEDNN_POLICY,
    FastBatchNormalization,
    FastConv2D,
    dense_conv_taps,
    fast_conv_plan,
    use_fast_conv,
)
from risc_tf.fast import conv as fastconv

# (input side or (height, width), channels in, filters, kernel, stride, padding,
#  what FastConv2D computes with ONEDNN_POLICY, with EIGEN_POLICY)
CASES = [
    (4, 5, 6, 1, 1, "valid", "tap", "tap"),  # 1x1: matmul
    (2, 5, 6, 1, 2, "valid", "tap", "tap"),  # strided 1x1 on a 2x2 map: slice + matmul
    (1, 5, 6, 1, 2, "same", "tap", "tap"),
    (4, 5, 6, 1, 2, "valid", None, "tap"),  # strided 1x1 on a 4x4 map
    (5, 5, 6, 1, 2, "valid", None, None),  # strided 1x1 on a larger map: stock
    (1, 5, 6, 3, 1, "same", "tap", "tap"),  # 3x3 on a 1x1 map: centre tap only
    (2, 5, 6, 3, 1, "same", None, "dense"),  # several taps on a 2x2 map
    (2, 5, 6, 3, 2, "same", None, "dense"),
    ((1, 4), 5, 6, 3, 1, "same", None, "dense"),  # pixel pairs no tap links
    ((2, 2), 5, 6, (2, 1), 1, "valid", None, "dense"),
    (3, 5, 6, 3, 1, "same", None, "flip"),  # several taps on a larger map: input gradient
    (8, 5, 6, 3, 1, "same", None, "flip"),  # by a forward conv with the flipped kernel
    ((4, 8), 5, 6, (3, 5), 1, "same", None, "flip"),
    (9, 5, 6, 3, 1, "same", None, None),  # map too large: stock
    (4, 5, 6, 2, 1, "same", None, None),  # even kernel, asymmetric padding: stock
    (4, 5, 6, 3, 1, "valid", None, None),
    (9, 3, 4, 7, 2, "valid", None, None),  # stock
]


@pytest.fixture(params=["onednn", "eigen"])
def policy(request, monkeypatch):
    """Run the test under each backend's rewrite policy, whatever this TF runs."""
    monkeypatch.setenv("RISC_TF_CONV_POLICY", request.param)
    return request.param


def _pair(side, cin, filters, k, s, padding, use_bias=True):
    hw = (side, side) if isinstance(side, int) else side
    stock = keras.layers.Conv2D(filters, k, strides=s, padding=padding, use_bias=use_bias)
    fast = FastConv2D(filters, k, strides=s, padding=padding, use_bias=use_bias)
    stock.build((None, *hw, cin))
    fast.build((None, *hw, cin))
    rng = np.random.default_rng(0)
    fast.set_weights([rng.normal(size=w.shape).astype("float32") for w in stock.get_weights()])
    stock.set_weights(fast.get_weights())
    return stock, fast


def _value_and_grads(fn, x, layer=None):
    layer = fn if layer is None else layer
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
        loss = tf.reduce_sum(y * tf.sin(y))
    return [y, *tape.gradient(loss, [x, *layer.trainable_variables])]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("use_bias", [True, False])
def test_outputs_and_gradients_equal_stock(case, use_bias, policy):
    side, cin, expected = case[0], case[1], case[6 if policy == "onednn" else 7]
    stock, fast = _pair(*case[:6], use_bias=use_bias)
    hw = (side, side) if isinstance(side, int) else side
    x = np.random.default_rng(1).normal(size=(3, *hw, cin)).astype("float32")
    plan = fast.rewrite_plan((1, *hw, cin))
    assert (plan and plan.kind) == expected
    for a, b in zip(_value_and_grads(stock, x), _value_and_grads(fast, x)):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-5)


def test_dense_taps_link_each_pixel_pair_to_its_kernel_tap():
    taps, oh, ow = dense_conv_taps((2, 2), (3, 3), (1, 1), "same")
    assert (oh, ow) == (2, 2)
    # output pixel (0, 0) sees input (0, 0) at the centre tap 4, input (1, 1) at tap 8
    np.testing.assert_array_equal(taps[:, 0], [4, 5, 7, 8])
    np.testing.assert_array_equal(taps[:, 3], [0, 1, 3, 4])
    taps, _, _ = dense_conv_taps((1, 4), (3, 3), (1, 1), "same")
    np.testing.assert_array_equal(taps[0], [4, 3, -1, -1])  # input 0 reaches outputs 0, 1
    assert dense_conv_taps((None, 2), (3, 3), (1, 1), "same") is None
    assert dense_conv_taps((2, 2), (3, 3), (1, 1), "valid") is None  # empty output


def test_policy_follows_the_cpu_kernels(monkeypatch):
    monkeypatch.delenv("RISC_TF_CONV_POLICY", raising=False)
    monkeypatch.setattr(fastconv, "onednn_enabled", lambda: False)
    assert fastconv.active_policy() == EIGEN_POLICY
    monkeypatch.setattr(fastconv, "onednn_enabled", lambda: True)
    assert fastconv.active_policy() == ONEDNN_POLICY
    monkeypatch.setenv("RISC_TF_CONV_POLICY", " Eigen ")
    assert fastconv.active_policy() == EIGEN_POLICY


def test_unknown_policy_name_is_refused(monkeypatch):
    monkeypatch.setenv("RISC_TF_CONV_POLICY", "mkl")
    with pytest.raises(ValueError, match="RISC_TF_CONV_POLICY.*'mkl'"):
        FastConv2D(2, 1)(tf.zeros((1, 2, 2, 3)))


@pytest.mark.slow
@pytest.mark.parametrize("flag, expected", [("0", "False"), ("1", "True")])
def test_onednn_detection_reads_tensorflow(flag, expected):
    code = "from risc_tf.fast import conv as fastconv; print(fastconv.onednn_enabled())"
    env = {"TF_ENABLE_ONEDNN_OPTS": flag, "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split()[-1] == expected


@pytest.mark.parametrize(
    "kwargs", [{"epsilon": 1.001e-5}, {"center": False, "scale": False, "momentum": 0.5}]
)
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_equals_stock(kwargs, training):
    shape = (3, 2, 2, 5)
    stock = keras.layers.BatchNormalization(**kwargs)
    fast = FastBatchNormalization(**kwargs)
    stock.build(shape)
    fast.build(shape)
    rng = np.random.default_rng(0)
    fast.set_weights([rng.random(w.shape).astype("float32") + 0.5 for w in stock.get_weights()])
    stock.set_weights(fast.get_weights())
    before = [w.copy() for w in fast.get_weights()]
    x = (3 * rng.normal(size=shape) + 1).astype("float32")
    for a, b in zip(
        _value_and_grads(lambda t: stock(t, training=training), x, stock),
        _value_and_grads(lambda t: fast(t, training=training), x, fast),
    ):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5)
    for a, b in zip(stock.get_weights(), fast.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)  # moving statistics too
    moved = any(not np.array_equal(w, old) for w, old in zip(fast.get_weights(), before))
    assert moved == training


@pytest.mark.parametrize("side, kernel, stride", [(2, 1, 2), (2, 3, 2), (2, 3, 1), (4, 3, 1)])
def test_unknown_batch_in_a_traced_function(side, kernel, stride, policy):
    stock, fast = _pair(side, 4, 3, kernel, stride, "same", use_bias=False)
    x = np.random.default_rng(2).normal(size=(5, side, side, 4)).astype("float32")
    spec = [tf.TensorSpec((None, side, side, 4))]
    traced = [tf.function(lambda t, f=f: _value_and_grads(f, t), input_signature=spec)
              for f in (stock, fast)]
    for a, b in zip(*(fn(x) for fn in traced)):
        # the same tolerance as the gradients above: float32 sums taken in another order
        # (seen here: 2 of 80 kernel gradients 1.5e-4 apart, relative)
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5)


def test_plan_only_for_single_tap_convolutions():
    assert fast_conv_plan((8, 8), (1, 1), (1, 1), "valid") == (0, 0, 0, 0, 8, 8)
    assert fast_conv_plan((1, 1), (3, 3), (1, 1), "same") == (1, 1, 0, 0, 1, 1)
    assert fast_conv_plan((2, 2), (3, 3), (1, 1), "same") is None
    assert fast_conv_plan((2, 2), (1, 1), (2, 2), "valid") == (0, 0, 0, 0, 1, 1)
    assert fast_conv_plan((None, 4), (1, 1), (1, 1), "valid") is None


def test_use_fast_conv_keeps_names_weights_and_outputs():
    model = risc_tf.build_classifier(3, input_shape=(16, 16, 3), backbone="small", fast_conv=False)
    fast = use_fast_conv(model)
    assert [type(layer) for layer in model.layers if type(layer) is keras.layers.Conv2D]
    convs = [layer for layer in fast.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs and all(type(layer) is FastConv2D for layer in convs)
    norms = [layer for layer in fast.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(type(layer) is FastBatchNormalization for layer in norms)
    assert [w.path for w in fast.weights] == [w.path for w in model.weights]
    x = np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(fast.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_a_copy_keeps_its_initializers_and_a_later_clone_draws_fresh_weights():
    # the copy is built with zeros initializers (its weights are set next); the
    # originals must come back, in the config and in what a clone of the copy draws
    model = risc_tf.build_classifier(3, input_shape=(16, 16, 3), backbone="small", fast_conv=False)
    fast = use_fast_conv(model)

    def initializers(m):
        return {layer.name: {k: v for k, v in layer.get_config().items()
                             if k.endswith("_initializer")} for layer in m.layers}

    assert initializers(fast) == initializers(model)
    conv = next(layer.name for layer in fast.layers if isinstance(layer, FastConv2D))
    assert fast.get_layer(conv).get_config()["kernel_initializer"]["class_name"] != "Zeros"
    for got, want in zip(fast.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(got, want)
    fresh = keras.models.clone_model(fast).get_layer(conv).kernel.numpy()
    assert np.abs(fresh).max() > 0
    assert not np.array_equal(fresh, fast.get_layer(conv).kernel.numpy())


def test_use_fast_conv_rejects_non_models():
    with pytest.raises(ValueError, match="keras.Model"):
        use_fast_conv(keras.layers.Dense(2))


def test_build_rejects_non_bool_fast_conv():
    with pytest.raises(ValueError, match="fast_conv"):
        risc_tf.build_rotnet(backbone="small", fast_conv="yes")


def test_saved_model_loads_as_fast_conv(tmp_path):
    model = risc_tf.build_rotnet(input_shape=(8, 8, 3), backbone="small")
    path = tmp_path / "rotnet.keras"
    model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    assert any(type(layer) is FastConv2D for layer in loaded.layers)
    x = np.random.default_rng(0).random((2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


@pytest.mark.slow
def test_resnet50_fast_equals_stock_and_keeps_layout(policy):
    """The layout, weight names and outputs/gradients of the real 32x32 ResNet50."""
    keras.utils.set_random_seed(0)
    stock = risc_tf.build_classifier(2, fast_conv=False)
    fast = use_fast_conv(stock)
    assert [layer.name for layer in fast.layers] == [layer.name for layer in stock.layers]
    assert [w.path for w in fast.weights] == [w.path for w in stock.weights]
    plans = {
        layer.name: layer.rewrite_plan(layer.input.shape)
        for layer in fast.layers
        if isinstance(layer, FastConv2D)
    }
    rewritten = {name: plan.kind for name, plan in plans.items() if plan is not None}
    assert rewritten["conv5_block1_2_conv"] == "tap" and "conv1_conv" not in rewritten
    if policy == "eigen":
        assert rewritten["conv4_block1_2_conv"] == "dense"  # 3x3 on a 2x2 map
        assert rewritten["conv4_block1_0_conv"] == "tap"  # strided 1x1 on a 4x4 map
        assert rewritten["conv3_block1_2_conv"] == "flip"  # 3x3 on a 4x4 map
        assert rewritten["conv2_block1_2_conv"] == "flip"  # 3x3 on an 8x8 map
    else:
        assert not {"conv4_block1_2_conv", "conv4_block1_0_conv", "conv3_block1_2_conv"} & set(
            rewritten
        )
    x = tf.constant(np.random.default_rng(0).random((8, 32, 32, 3)).astype("float32"))
    y = tf.constant([0, 1] * 4)

    def grads(model, training):
        with tf.GradientTape() as tape:
            out = model(x, training=training)
            loss = keras.losses.sparse_categorical_crossentropy(y, out)
        return [out, *tape.gradient(loss, model.trainable_variables)]

    # Inference-mode BatchNorm: every gradient is a well-conditioned function of
    # the weights. (In training mode, BatchNorm over 8 values of a 1x1 map
    # amplifies float32 rounding, and conv biases before BatchNorm have zero
    # gradient, so only the outputs are compared there.)
    names = ["output", *(w.path for w in stock.trainable_variables)]
    for name, a, b in zip(names, grads(stock, False), grads(fast, False)):
        error = float(tf.norm(a - b) / tf.norm(a))
        assert error < 1e-4, (name, error)
    a, b = grads(stock, True)[0], grads(fast, True)[0]
    assert float(tf.norm(a - b) / tf.norm(a)) < 1e-4
