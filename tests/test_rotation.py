import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risc_tf.angles import DEFAULT_ANGLES, angles_every, check_angles
from risc_tf.rotation import counter_rotate, rotate, rotate_all

quarter = st.sampled_from([-270, -180, -90, 0, 90, 180, 270, 360, 450])


def _images(seed, n=3, side=7, channels=3):
    return np.random.default_rng(seed).random((n, side, side, channels), dtype=np.float32)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 1000), st.lists(quarter, min_size=3, max_size=3))
def test_rotate_then_counter_rotate_is_exact_for_quarter_turns(seed, angles):
    x = _images(seed)
    assert np.array_equal(counter_rotate(rotate(x, angles), angles).numpy(), x)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 1000), quarter, quarter)
def test_composing_quarter_turns_adds_the_angles(seed, a, b):
    x = _images(seed)
    assert np.array_equal(rotate(rotate(x, a), b).numpy(), rotate(x, a + b).numpy())


def test_quarter_turn_is_counter_clockwise_like_numpy_rot90():
    x = _images(0, n=4)
    out = rotate(x, [0, 90, 180, 270]).numpy()
    for k in range(4):
        assert np.array_equal(out[k], np.rot90(x[k], k))


def test_uint8_quarter_turns_are_exact_and_keep_dtype():
    x = np.random.default_rng(1).integers(0, 256, (2, 5, 5, 1), dtype=np.uint8)
    out = rotate(x, 90).numpy()
    assert out.dtype == np.uint8 and np.array_equal(out[1], np.rot90(x[1]))


def test_uint8_cannot_be_interpolated():
    x = np.zeros((1, 5, 5, 1), np.uint8)
    with pytest.raises(Exception, match="multiples of 90"):
        rotate(x, 45)


def test_two_45_degree_turns_approximate_a_quarter_turn_in_the_interior():
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    smooth = (0.5 + 0.5 * np.sin(xx / 5.0) * np.cos(yy / 7.0))[None, :, :, None]
    twice = rotate(rotate(smooth, 45), 45).numpy()[0, 8:24, 8:24]
    once = np.rot90(smooth[0], 1)[8:24, 8:24]
    assert np.abs(twice - once).max() < 0.05


def test_interpolated_rotation_fills_corners_with_black_and_round_trips_the_centre():
    x = np.ones((1, 16, 16, 3), np.float32)
    r = rotate(x, 45).numpy()
    assert r[0, 0, 0, 0] == 0.0 and r[0, 8, 8, 0] == pytest.approx(1.0)
    back = counter_rotate(r, 45).numpy()
    assert np.allclose(back[0, 6:10, 6:10], 1.0, atol=1e-5)


def test_rotation_is_about_the_centre():
    x = np.zeros((1, 9, 9, 1), np.float32)
    x[0, 4, 4] = 1.0
    for angle in (30, 45, 90, 135):
        assert rotate(x, angle).numpy()[0, 4, 4, 0] == pytest.approx(1.0)


def test_per_image_angles_mix_exact_and_interpolated():
    x = _images(3, n=2, side=9)
    out = rotate(x, [90, 45]).numpy()
    assert np.array_equal(out[0], np.rot90(x[0]))
    assert not np.array_equal(out[1], x[1])


@pytest.mark.parametrize(
    "bad, message",
    [
        ([0], "at least two"),
        ([0, 360], "same rotation"),
        ([0, 90, -270], "same rotation"),
        ([0, float("inf")], "finite"),
        (["a", "b"], "numbers"),
        ("0,90", "sequence"),
    ],
)
def test_check_angles_rejects_bad_sets(bad, message):
    with pytest.raises(ValueError, match=message):
        check_angles(bad)


def test_angle_sets():
    assert check_angles(DEFAULT_ANGLES) == (0.0, 90.0, 180.0, 270.0)
    assert angles_every(45) == tuple(45.0 * i for i in range(8))
    for bad in (0, 7, 360, -90):
        with pytest.raises(ValueError, match="divide 360"):
            angles_every(bad)


def test_rotate_validates_shapes():
    with pytest.raises(ValueError, match="square"):
        rotate(np.zeros((1, 4, 5, 1), np.float32), 90)
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        rotate(np.zeros((4, 4), np.float32), 90)


def test_rotate_all_is_angle_major():
    x = _images(4, n=2)
    out = rotate_all(x, [0, 90, 180]).numpy()
    assert out.shape == (6, 7, 7, 3)
    for r, k in enumerate((0, 1, 2)):
        for i in range(2):
            assert np.array_equal(out[2 * r + i], np.rot90(x[i], k))


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 1000), st.floats(-360, 360))
def test_interpolated_rotation_stays_in_the_input_range(seed, angle):
    x = np.clip(_images(seed, n=2, side=9) + 0.5, 0.0, 1.0)  # many exact 1.0 pixels
    out = rotate(x, angle).numpy()
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_rotate_validates_angles_and_dtypes_at_the_boundary():
    """NaN, huge angles, integer images at non-quarter angles, one angle per image."""
    x = _images(0, n=4)
    with pytest.raises(ValueError, match="finite"):
        rotate(x, float("nan"))
    with pytest.raises(ValueError, match="one per image \\(4 images\\)"):
        rotate(x, [0.0, 90.0, 180.0])
    u8 = (x * 255).astype(np.uint8)
    with pytest.raises(ValueError, match="uint8 images can only be rotated by multiples of 90"):
        rotate(u8, 37)
    assert np.array_equal(rotate(u8, 90).numpy(), np.rot90(u8, 1, axes=(1, 2)))
    # 1e9 degrees is 280 degrees: reduced modulo 360 in float64 before float32
    np.testing.assert_allclose(rotate(x, 1e9).numpy(), rotate(x, 280.0).numpy(), atol=1e-6)
    assert not np.allclose(rotate(x, 1e9).numpy(), rotate(x, 270.0).numpy(), atol=1e-3)


def test_fills():
    x = np.ones((1, 9, 9, 1), np.float32)
    black = rotate(x, 45).numpy()[0, ..., 0]
    assert black[0, 0] == 0 and black[4, 4] == 1  # corners come from outside: black
    reflect = rotate(x, 45, fill="reflect").numpy()[0, ..., 0]
    np.testing.assert_allclose(reflect, 1.0, atol=1e-6)  # reflected: no black corners
    circle_up = rotate(x, 0, fill="circle").numpy()[0, ..., 0]
    circle_45 = rotate(x, 45, fill="circle").numpy()[0, ..., 0]
    assert circle_up[0, 0] == 0 and circle_up[4, 4] == 1  # the mask, upright included
    np.testing.assert_array_equal(circle_up == 0, circle_45 == 0)  # corners carry no cue
    with pytest.raises(ValueError, match="fill must be one of 'constant', 'reflect', 'circle'"):
        rotate(x, 45, fill="wrap")


def test_one_angle_matcher():
    from risc_tf.angles import match_angles, smallest_gap

    table = (0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0)
    assert match_angles([405.0, -45.0, 90.0004, 10.0], table).tolist() == [1, 7, 2, -1]
    assert smallest_gap((0, 100, 350)) == 10.0


def test_quarter_turns_are_exact_reversals():
    from risc_tf.rotation import quarter_turns

    x = _images(3, n=4)
    out = quarter_turns(x, [0, 1, -1, 6]).numpy()
    for i, k in enumerate((0, 1, 3, 2)):
        assert np.array_equal(out[i], np.rot90(x[i], k))


@pytest.mark.parametrize("fill", ["constant", "reflect", "circle"])
def test_rotation_tables_compute_what_rotate_computes(fill):
    from risc_tf.resample import gather_rotate, rotation_tables
    from risc_tf.rotation import field_of_view

    angles = (0.0, 45.0, 10.0, 300.0, 90.0)
    indices, weights = rotation_tables(angles, 12, fill)
    assert indices.shape == weights.shape == (5, 144, 4)
    x = field_of_view(_images(4, n=3, side=12)).numpy()
    for r, angle in enumerate(angles):
        np.testing.assert_allclose(gather_rotate(x, indices[r], weights[r]).numpy(),
                                   rotate(x, angle, fill).numpy(), atol=1e-5)
    per_image = gather_rotate(x, indices[[1, 2, 3]], weights[[1, 2, 3]]).numpy()
    np.testing.assert_allclose(per_image, rotate(x, [45.0, 10.0, 300.0], fill).numpy(),
                               atol=1e-5)


@pytest.mark.parametrize("fill", ["constant", "reflect", "circle"])
def test_resample_rotate_computes_what_rotate_computes(fill):
    """The gather-only rotation by per-image angles (the pipeline's continuous
    counter-rotation, LiteRT-ready) equals rotate's interpolation."""
    from risc_tf.resample import resample_rotate

    x = _images(5, n=8, side=16)
    angles = np.array([0.0, 90.0, 3.7, -12.5, 44.9, 270.0, 213.3, 359.0], np.float32)
    got = resample_rotate(x, angles, fill).numpy()
    want = rotate(x, angles, fill).numpy()
    np.testing.assert_allclose(got, want, atol=2e-5)
    exact = [0, 1, 5]  # quarter turns: no interpolation at all
    np.testing.assert_array_equal(got[exact], want[exact])
