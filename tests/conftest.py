"""Shared fixtures: the real MedMNIST folder and small models trained on it once per session."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

import keras  # noqa: E402
import pytest  # noqa: E402

from devdata import DATA_ROOT  # noqa: E402  ($RISC_TF_DATA, else ../shared/data/medmnist)


def has_data(flag: str = "pneumoniamnist") -> bool:
    return (DATA_ROOT / f"{flag}.npz").is_file()


requires_data = pytest.mark.skipif(
    not has_data(), reason=f"real MedMNIST files not found in {DATA_ROOT}"
)


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not has_data():
        pytest.skip(f"real MedMNIST files not found in {DATA_ROOT}")
    return DATA_ROOT


@pytest.fixture(scope="session")
def pneumonia(data_root):
    """Real PneumoniaMNIST: a 1500-image train subset, the val split and the test split."""
    from risc_tf import load_medmnist

    x, y = load_medmnist("pneumoniamnist", "train", root=data_root)
    xv, yv = load_medmnist("pneumoniamnist", "val", root=data_root)
    xt, yt = load_medmnist("pneumoniamnist", "test", root=data_root)
    return {"train": (x[:1500], y[:1500]), "val": (xv, yv), "test": (xt, yt)}


@pytest.fixture(scope="session")
def trained_pair(pneumonia):
    """A small-backbone RotNet and classifier trained briefly on real PneumoniaMNIST."""
    from risc_tf import build_classifier, build_rotnet, train_classifier, train_rotnet

    keras.utils.set_random_seed(0)
    x, y = pneumonia["train"]
    xv, yv = pneumonia["val"]
    rotnet = build_rotnet(backbone="small")
    train_rotnet(rotnet, x, xv[:200], epochs=2, verbose=0, recalibration_batches=10)
    classifier = build_classifier(2, backbone="small")
    train_classifier(classifier, x, y, xv, yv, epochs=2, verbose=0, recalibration_batches=10)
    return rotnet, classifier
