"""MedMNIST files: checksummed loading of the official npz files, and seeded subsets.

The catalogue (names, labels, URLs, MD5s, the data folder) is
:mod:`risc_tf.catalog`; downloading is :mod:`risc_tf.download`
(:func:`~risc_tf.download.download_medmnist`, called here when ``download=True``).

Numpy only: the command line loads data without TensorFlow.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from risc_tf import catalog
from risc_tf.catalog import DATA_ENV, DOWNLOAD_TIMEOUT, SPLITS, medmnist_filename
from risc_tf.download import download_medmnist
from risc_tf.validation import check_choice, check_int, check_optional_int

__all__ = ["load_medmnist", "load_splits"]

_VERIFIED: set[tuple[str, int, int, str]] = set()


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify_md5(path: Path, md5: str | None) -> None:
    if md5 is None:
        return
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, md5)
    if key in _VERIFIED:
        return
    actual = _md5(path)
    if actual != md5:
        raise ValueError(
            f"MD5 mismatch for {path}: expected {md5}, got {actual}. The file is "
            "corrupt, truncated or a different version; delete it and download it again "
            "(or pass verify=False for a file that is deliberately not the official release)."
        )
    _VERIFIED.add(key)


def _read_npz(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    keys = (f"{split}_images", f"{split}_labels")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise ValueError(
                    f"{path} is missing keys {missing}; it has {sorted(npz.files)}"
                )
            images, labels = npz[keys[0]], npz[keys[1]]
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as err:
        raise ValueError(
            f"{path} is truncated or corrupt ({err}); delete it and download it again"
        ) from err
    except ValueError as err:  # e.g. pickled object arrays, refused with allow_pickle=False
        if str(path) in str(err):
            raise
        raise ValueError(f"{path} is not a MedMNIST npz file: {err}") from err
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or len(images) != len(labels):
        raise ValueError(
            f"{path}: {keys[0]} must be uint8 (N, H, W[, 3]) with one label row per "
            f"image; got {images.dtype} {images.shape} and labels {labels.shape}"
        )
    return images, labels


def load_medmnist(
    flag: str,
    split: str = "train",
    root: str | os.PathLike | None = None,
    size: int = 28,
    download: bool = False,
    verify: bool = True,
    timeout: float = DOWNLOAD_TIMEOUT,
) -> tuple[np.ndarray, np.ndarray]:
    """Load one split of a 2D MedMNIST dataset from its official npz file.

    Parameters
    ----------
    flag : str
        Dataset name, e.g. ``"pneumoniamnist"``, ``"retinamnist"``, ``"organamnist"``.
    split : {"train", "val", "test"}
    root : path, optional
        Folder holding ``{flag}.npz`` (size 28) or ``{flag}_{size}.npz``. Defaults
        to ``$RISC_TF_DATA``, then ``~/.medmnist``.
    size : {28, 64, 128, 224}
    download : bool, default False
        Fetch the file (MD5-checked) when it is missing.
    verify : bool, default True
        Check the file's MD5 against medmnist's INFO (once per process and file).
    timeout : float, default 60
        Download timeout in seconds (see :func:`download_medmnist`).

    Returns
    -------
    images : np.ndarray
        uint8, ``(N, H, W)`` for grayscale sets or ``(N, H, W, 3)``.
    labels : np.ndarray
        int64 ``(N,)`` (``(N, L)`` for the multi-label ChestMNIST).

    Examples
    --------
    >>> x, y = load_medmnist("pneumoniamnist", "test", root="../shared/data/medmnist")
    >>> x.shape, y.shape
    ((624, 28, 28), (624,))
    """
    check_choice("split", split, SPLITS)
    name = medmnist_filename(flag, size)  # validates size
    url, md5 = catalog.url_and_md5(flag, size)  # validates flag
    root = catalog.data_folder(root, create=False)
    path = root / name
    if not path.is_file():
        if not download:
            raise FileNotFoundError(
                f"{name} not found in {root}. Put the file there (from {url}), pass "
                f"root= the folder that holds it, set ${DATA_ENV}, or use download=True."
            )
        path = download_medmnist(flag, root, size, timeout=timeout)
    if verify:
        _verify_md5(path, md5)
    images, labels = _read_npz(path, split)
    labels = labels.astype(np.int64)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    return images, labels


def load_splits(
    dataset: str,
    root: str | os.PathLike | None = None,
    size: int = 28,
    subset: int | None = None,
    seed: int = 0,
    splits: Sequence[str] = SPLITS,
    download: bool = False,
    verify: bool = True,
    timeout: float = DOWNLOAD_TIMEOUT,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Load splits of a single-label MedMNIST dataset, optionally a seeded random subset.

    Parameters
    ----------
    dataset, root, size, download, verify, timeout
        As in :func:`load_medmnist`.
    subset : int, optional
        Keep at most this many images of each split, drawn without replacement
        and kept in file order. Each split has its own draw (the same whichever
        splits are loaded together).
    seed : int, default 0
        Seeds the train and val draws; the test draw is the same for every seed,
        so that runs of several seeds are compared on the same test images.
    splits : sequence of str, default ("train", "val", "test")

    Returns
    -------
    dict
        split -> ``(images uint8, labels int64 (N,))``.

    Raises
    ------
    ValueError
        A multi-label dataset (ChestMNIST), or bad arguments.
    """
    subset = check_optional_int("subset", subset, 2)
    seed = check_int("seed", seed, 0)
    out = {}
    for split in splits:
        check_choice("split", split, SPLITS)
        x, y = load_medmnist(dataset, split, root, size, download=download, verify=verify,
                             timeout=timeout)
        if y.ndim != 1:
            raise ValueError(
                f"{dataset} is multi-label ({split} labels have shape {y.shape}); risc_tf's "
                "classifiers and reports need one label per image"
            )
        if subset is not None and len(x) > subset:
            # one generator per split, so that a split's draw does not depend on which
            # other splits are loaded; the test draw does not follow the seed, so that
            # runs of several seeds are scored on the same test images
            rng = np.random.default_rng([0 if split == "test" else seed, SPLITS.index(split)])
            keep = np.sort(rng.choice(len(x), subset, replace=False))
            x, y = x[keep], y[keep]
        out[split] = (x, y)
    return out
