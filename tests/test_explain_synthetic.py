"""Heatmaps point at the evidence: a bright patch in the top-left corner decides the class."""

from __future__ import annotations

import numpy as np
import pytest

from risc_tf import build_classifier, train_classifier
from risc_tf.explain import METHODS, classifier_heatmaps
from risc_tf.explain.cam import predict_proba


def corner_task(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise images (uint8 in [0, 100)); class 1 has an 8x8 white patch near the top-left corner."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 100, size=(n, 32, 32), dtype=np.uint8)
    y = (np.arange(n) % 2).astype(np.int64)
    for i in np.flatnonzero(y):
        r, c = rng.integers(0, 5, size=2)
        x[i, r : r + 8, c : c + 8] = 255
    return x, y


@pytest.fixture(scope="module")
def corner_model():
    x, y = corner_task(512, seed=0)
    clf = build_classifier(2, (32, 32, 3), backbone="small")
    train_classifier(clf, x, y, epochs=2, batch_size=32, patience=None, verbose=0,
                     recalibration_batches=5, seed=0)
    return clf


def quadrant_mass(maps: np.ndarray) -> np.ndarray:
    """Share of each heatmap's total in the top-left quadrant (0.25 for a flat map)."""
    h, w = maps.shape[1] // 2, maps.shape[2] // 2
    return maps[:, :h, :w].sum(axis=(1, 2)) / np.maximum(maps.sum(axis=(1, 2)), 1e-12)


@pytest.mark.slow
def test_model_learned_the_task(corner_model):
    x, y = corner_task(64, seed=1)
    assert np.mean(predict_proba(corner_model, x).argmax(1) == y) >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("layer", [None, "block2_relu2"])
def test_heatmap_mass_is_in_the_patch_corner(corner_model, method, layer):
    x, y = corner_task(64, seed=1)
    patch = x[y == 1]
    max_n = 32 if method == "scorecam" else None
    options = dict(class_index=1, method=method, layer=layer, max_n=max_n)
    mass = quadrant_mass(classifier_heatmaps(corner_model, patch, **options))
    assert mass.mean() > 0.5, mass
    assert np.median(mass) > 0.5, mass
    # the same images at 28x28 (resized for the model): maps follow at the input size
    small = classifier_heatmaps(corner_model, patch[:, 2:30, 2:30], **options)
    assert small.shape == (len(patch), 28, 28)
    assert quadrant_mass(small).mean() > 0.5
