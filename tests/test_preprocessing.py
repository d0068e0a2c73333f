import warnings

import numpy as np
import pytest
import tensorflow as tf

from risc_tf.preprocessing import check_images, preprocess_images

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
        ((28, 28, 4), 1, True),  # one RGBA image, not 28 images
        ((5, 28, 28, 4), 5, False),
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
        (np.full((2, 28, 28), 256, np.int32), r"int32 must hold values in \[0, 255\]"),
        (np.full((2, 28, 28), -1, np.int16), r"values in \[0, 255\]"),
        (np.zeros((2, 28, 28), bool), "dtype bool"),
        (np.zeros((2, 3, 28, 28), np.float32), r"channels-first \(N, C, H, W\)"),
        ([np.zeros((28, 28)), np.zeros((20, 20))], "ragged"),
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


def test_value_conventions_of_every_dtype():
    x8 = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)
    reference = preprocess_images(x8)
    np.testing.assert_allclose(preprocess_images(x8.astype(np.uint16) * 257), reference,
                               atol=1e-6)  # uint16: by its range
    for dtype in (np.int16, np.int32, np.int64, np.uint32):  # other ints: 0-255 values
        np.testing.assert_allclose(preprocess_images(x8.astype(dtype)), reference, atol=1e-6)
    np.testing.assert_allclose(preprocess_images(tf.constant(x8)), reference, atol=1e-6)
    np.testing.assert_allclose(preprocess_images(x8.tolist()), reference, atol=1e-6)


def test_rgba_is_composited_over_black():
    rgb = rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)
    alpha = np.full((28, 28, 1), 255, np.uint8)
    alpha[:14] = 0
    out = preprocess_images(np.concatenate([rgb, alpha], -1), size=28)[0]
    np.testing.assert_allclose(out[14:], rgb[14:] / 255.0, atol=1e-6)
    assert np.all(out[:14] == 0)


def test_channels_first_image_gets_a_warning_naming_the_layout():
    with pytest.warns(UserWarning, match=r"np.moveaxis\(image, 0, -1\)"):
        batch, single = check_images(np.zeros((3, 28, 28), np.uint8))
    assert batch.shape == (3, 28, 28, 1) and not single
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_images(np.zeros((4, 28, 28), np.uint8))  # a batch of 4: no warning


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_channel_count_known_only_at_run_time_converts_as_when_known(channels):
    """A serving signature's channel count is free: gathered and masked, no branch (what an
    ONNX export can hold), with the same result as the static conversions."""
    from risc_tf.preprocessing import to_model_input

    x = np.random.default_rng(channels).random((2, 5, 5, channels), np.float32)
    free = tf.function(lambda t: to_model_input(t, None), autograph=False,
                       input_signature=[tf.TensorSpec((None, None, None, None), tf.float32)])
    dynamic = free(tf.constant(x))
    assert dynamic.shape[-1] == 3
    np.testing.assert_array_equal(dynamic.numpy(), to_model_input(x, None).numpy())
    assert not [op.type for op in free.get_concrete_function().graph.get_operations()
                if "Case" in op.type or "If" in op.type]
