import numpy as np
import pytest

from risc_tf import (
    classification_dataset,
    preprocess_images,
    rotate,
    rotated_test_arrays,
    rotated_test_dataset,
    rotation_dataset,
)

rng = np.random.default_rng(0)
X = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
Y = rng.integers(0, 3, 20)


def _labels(ds):
    return np.concatenate([b[1].numpy() for b in ds])


def test_classification_batches():
    batches = list(classification_dataset(X, Y, batch_size=8))
    assert [len(b[1]) for b in batches] == [8, 8, 4]
    x, y = batches[0]
    assert x.shape == (8, 32, 32, 3) and x.dtype.name == "float32"
    assert np.array_equal(x.numpy(), preprocess_images(X[:8]))
    assert np.array_equal(y.numpy(), Y[:8])


def test_shuffle_is_seeded_and_fresh_each_epoch():
    ds = classification_dataset(X, Y, batch_size=20, shuffle=True, seed=3)
    first = _labels(ds)
    again = _labels(classification_dataset(X, Y, batch_size=20, shuffle=True, seed=3))
    assert np.array_equal(first, again) and sorted(first) == sorted(Y)
    xs = [b[0].numpy() for b in ds.take(1)] + [b[0].numpy() for b in ds.take(1)]
    assert not np.array_equal(xs[0], xs[1])


def test_augmentation_uses_only_the_angle_set():
    ds = classification_dataset(X[:1].repeat(40, 0), Y[:1].repeat(40), batch_size=40,
                                augment_angles=(0, 180), seed=0)
    x = next(iter(ds))[0].numpy()
    up = preprocess_images(X[:1])[0]
    is_up = [np.array_equal(i, up) for i in x]
    is_down = [np.array_equal(i, np.rot90(up, 2)) for i in x]
    assert all(u or d for u, d in zip(is_up, is_down)) and any(is_up) and any(is_down)


def test_rotation_targets_match_the_rotation_applied():
    ds = rotation_dataset(X, batch_size=20, shuffle=False, seed=1)
    x, k = next(iter(ds))
    up = preprocess_images(X)
    expected = rotate(up, 90.0 * k.numpy()).numpy()
    assert np.array_equal(x.numpy(), expected)
    assert set(k.numpy()) <= {0, 1, 2, 3}


def test_rotation_draws_are_seeded_and_fresh_each_epoch():
    ds = rotation_dataset(X, batch_size=20, seed=5)
    e1, e2 = _labels(ds), _labels(ds)
    assert np.array_equal(e1, _labels(rotation_dataset(X, batch_size=20, seed=5)))
    assert not np.array_equal(e1, e2)


def test_all_rotations_puts_every_rotation_of_each_image_in_its_batch():
    ds = rotation_dataset(X, angles=(0, 90, 180), batch_size=4, shuffle=False, all_rotations=True)
    x, k = next(iter(ds))
    assert x.shape[0] == 12 and list(k.numpy()) == [0] * 4 + [1] * 4 + [2] * 4
    up = preprocess_images(X[:4])
    assert np.array_equal(x.numpy()[4:8], rotate(up, 90).numpy())


def test_rotated_test_set_is_deterministic_and_labelled():
    x1, y1, a1 = rotated_test_arrays(X, Y, angles=(0, 45, 90), seed=7, image_size=32)
    x2, y2, a2 = rotated_test_arrays(X, Y, angles=(0, 45, 90), seed=7, image_size=32)
    assert np.array_equal(x1, x2) and np.array_equal(a1, a2) and np.array_equal(y1, Y)
    assert set(a1) <= {0.0, 45.0, 90.0} and len(set(a1)) > 1
    assert np.allclose(x1, rotate(preprocess_images(X), a1).numpy())
    _, _, a3 = rotated_test_arrays(X, Y, angles=(0, 45, 90), seed=8, image_size=32)
    assert not np.array_equal(a1, a3)
    batch = next(iter(rotated_test_dataset(X, Y, seed=7, batch_size=5)))
    assert [t.shape[0] for t in batch] == [5, 5, 5]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: classification_dataset(X, Y[:5]), "20 images but 5 labels"),
        (lambda: classification_dataset(X, Y + 0.5), "whole numbers"),
        (lambda: classification_dataset(X, Y, tilt=-1), "tilt must be"),
        (lambda: classification_dataset(X, Y, augment="strong"), "augment must be"),
        (lambda: classification_dataset(X, Y, fill="wrap"), "fill must be one of"),
        (lambda: rotation_dataset(X, angles=(0, 90, 180, 270), jitter=60), "half the smallest"),
        (lambda: rotated_test_dataset(X, Y, protocol="random"), "protocol must be one of"),
        (lambda: rotated_test_arrays(X, Y, image_size=None), "image_size"),
        (lambda: classification_dataset(X, Y, batch_size=0), "batch_size"),
        (lambda: rotation_dataset(X, angles=(0,)), "at least two"),
        (lambda: rotation_dataset(X, image_size=2), "image_size"),
        (lambda: rotated_test_dataset(X, Y, seed="a"), "seed"),
        (lambda: rotation_dataset(np.zeros((0, 28, 28), np.uint8)), "empty"),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.slow
def test_rotated_test_set_takes_the_models_size():
    x, _, _ = rotated_test_arrays(X, Y, seed=0, image_size=48)
    assert x.shape == (20, 48, 48, 3)


def test_uniform_protocol_draws_over_the_circle():
    x, _, a = rotated_test_arrays(X, Y, protocol="uniform", seed=1, image_size=32)
    assert len(set(a.tolist())) == 20 and a.min() >= 0 and a.max() < 360
    np.testing.assert_allclose(x, rotate(preprocess_images(X), a).numpy(), atol=1e-6)


def test_jitter_and_tilt_rotate_around_the_set_angles():
    x1 = X[:1].repeat(30, 0)
    ds = rotation_dataset(x1, angles=(0, 90, 180, 270), batch_size=30, jitter=10, seed=2,
                          shuffle=False)
    x, k = next(iter(ds))
    up = preprocess_images(X[:1])
    exact = rotate(np.repeat(up, 30, 0), 90.0 * k.numpy()).numpy()
    assert not np.allclose(x.numpy(), exact, atol=1e-3)  # jittered, not exact quarter turns
    ds = classification_dataset(x1, Y[:1].repeat(30), batch_size=30, tilt=5, seed=2)
    tilted = next(iter(ds))[0].numpy()
    assert not np.allclose(tilted, np.repeat(up, 30, 0), atol=1e-3)


def test_circle_fill_masks_every_image_even_upright():
    for ds in (classification_dataset(X, Y, fill="circle", batch_size=20),
               rotation_dataset(X, fill="circle", batch_size=20, jitter=10, seed=0)):
        x = next(iter(ds))[0].numpy()
        assert np.all(x[:, 0, 0] == 0) and np.all(x[:, 31, 0] == 0) and x[:, 16, 16].max() > 0


def test_light_augmentation_is_seeded():
    def batch(seed):
        ds = classification_dataset(X, Y, batch_size=20, augment="light", seed=seed)
        return next(iter(ds))[0].numpy()

    a, b, c = batch(4), batch(4), batch(5)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c) and not np.allclose(a, preprocess_images(X))
    assert a.min() >= 0 and a.max() <= 1
