import keras
import numpy as np
import pytest

from risc_tf.preprocessing import InputNormalization, check_images, preprocess_images

rng = np.random.default_rng(0)


@pytest.mark.parametrize(
    "shape, n, single",
    [
        ((28, 28), 1, True),
        ((28, 28, 1), 1, True),
        ((28, 28, 3), 1, True),
        ((5, 28, 28), 5, False),
        ((5, 28, 28, 1), 5, False),
        ((5, 28, 28, 3), 5, False),
    ],
)
def test_accepted_forms(shape, n, single):
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    batch, is_single = check_images(x)
    assert batch.ndim == 4 and len(batch) == n and is_single is single
    out = preprocess_images(x)
    assert out.shape == (n, 32, 32, 3) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_grayscale_is_stacked_and_uint8_scaled():
    x = np.full((2, 32, 32), 255, np.uint8)
    x[1] = 51
    out = preprocess_images(x)
    assert np.allclose(out[0], 1.0) and np.allclose(out[1], 0.2)
    assert np.array_equal(out[..., 0], out[..., 2])


def test_uint8_and_float_inputs_agree():
    x = rng.integers(0, 256, (3, 28, 28, 3), dtype=np.uint8)
    assert np.allclose(preprocess_images(x), preprocess_images(x / 255.0), atol=1e-6)


def test_no_resize_when_size_matches():
    x = rng.random((2, 16, 16, 3)).astype(np.float32)
    assert np.array_equal(preprocess_images(x, size=16), x)


@pytest.mark.parametrize(
    "x, message",
    [
        (np.zeros((0, 28, 28), np.uint8), "empty batch"),
        (np.zeros((2, 3, 28, 28, 1), np.uint8), "rank 5"),
        (np.zeros((28,), np.uint8), "rank 1"),
        (np.zeros((2, 28, 28, 2), np.uint8), "2 channels"),
        (np.zeros((2, 28, 28), np.int32), "dtype int32"),
        (np.linspace(0, 3, 2 * 28 * 28).reshape(2, 28, 28), r"\[0, 3\]"),
        (np.full((2, 28, 28), -0.5, np.float32), "must lie in"),
        (np.full((2, 28, 28), np.nan), "NaN or inf"),
        (np.full((2, 28, 28), np.inf), "NaN or inf"),
        (np.zeros((2, 2, 2), np.uint8), "at least 4x4"),
        (np.array([["a"] * 5] * 5), "dtype"),
    ],
)
def test_rejects_bad_inputs_with_a_message_naming_the_problem(x, message):
    with pytest.raises(ValueError, match=message):
        check_images(x)


def test_error_names_the_shape_received():
    with pytest.raises(ValueError, match=r"\(2, 28, 28, 5\)"):
        preprocess_images(np.zeros((2, 28, 28, 5), np.uint8))


def test_size_is_validated():
    with pytest.raises(ValueError, match="size"):
        preprocess_images(np.zeros((28, 28), np.uint8), size=0)


def test_caffe_normalisation_matches_keras_applications():
    x = rng.random((2, 8, 8, 3)).astype(np.float32)
    ours = InputNormalization("caffe")(x)
    ref = keras.applications.resnet50.preprocess_input(x * 255.0)
    assert np.allclose(keras.ops.convert_to_numpy(ours), ref, atol=1e-4)


@pytest.mark.parametrize("mode, lo, hi", [("unit", 0, 1), ("raw", 0, 255), ("tf", -1, 1)])
def test_normalisation_ranges(mode, lo, hi):
    x = np.array([[[[0.0, 0.5, 1.0]]]], np.float32)
    out = keras.ops.convert_to_numpy(InputNormalization(mode)(x))
    assert out.min() == pytest.approx(lo) and out.max() == pytest.approx(hi)


def test_normalisation_mode_is_validated_and_serialised():
    with pytest.raises(ValueError, match="mode must be one of"):
        InputNormalization("bgr")
    layer = InputNormalization("torch")
    clone = InputNormalization.from_config(layer.get_config())
    assert clone.mode == "torch"
