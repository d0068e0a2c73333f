"""The MedMNIST catalogue: dataset names, labels, file names, URLs, checksums, the data folder.

Metadata (URLs, MD5s, label names, split sizes) comes from ``medmnist.info``,
which imports without torch. risc_tf does not declare ``medmnist`` as a
dependency because medmnist 3.0.2 pulls torch + torchvision; install it with
``pip install --no-deps medmnist==3.0.2`` (see docs/install.md).

The data folder is ``root=`` when given, else ``$RISC_TF_DATA`` (the one
variable the library, the command line, the tests and the benchmarks read),
else medmnist's usual ``~/.medmnist``.

The bottom of the data layer (:mod:`risc_tf.download` and :mod:`risc_tf.data`
build on it); pure Python, so the command line reads dataset names from here
without loading TensorFlow or numpy.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

from risc_tf.validation import check_int

__all__ = [
    "DATA_ENV",
    "DOWNLOAD_TIMEOUT",
    "SIZES",
    "SPLITS",
    "data_folder",
    "dataset_info",
    "default_root",
    "flags_2d",
    "label_names",
    "medmnist_filename",
    "url_and_md5",
]

#: Environment variable that overrides the default data folder.
DATA_ENV = "RISC_TF_DATA"
SIZES = (28, 64, 128, 224)
SPLITS = ("train", "val", "test")
#: Seconds a download may wait for the server before it fails (per connect or read).
DOWNLOAD_TIMEOUT = 60.0


def _info() -> dict:
    """medmnist's INFO table (medmnist.info needs no torch)."""
    try:
        # medmnist/__init__ tries to import its torch datasets and prints a hint to
        # stdout when torch is missing; that hint does not concern us.
        with contextlib.redirect_stdout(io.StringIO()):
            from medmnist.info import INFO
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "risc_tf needs medmnist's metadata module. Install it without torch: "
            "pip install --no-deps medmnist==3.0.2"
        ) from err
    return INFO


def flags_2d() -> tuple[str, ...]:
    """Names of the 2D MedMNIST datasets (e.g. ``"pneumoniamnist"``)."""
    return tuple(f for f in _info() if not f.endswith("3d"))


def dataset_info(flag: str) -> dict:
    """medmnist's metadata for one 2D dataset (task, labels, n_channels, n_samples, ...).

    Raises
    ------
    ValueError
        Unknown flag or a 3D dataset; the message lists the valid flags.
    """
    info = _info()
    if flag not in info or flag.endswith("3d"):
        valid = ", ".join(flags_2d())
        what = "3D datasets are not supported" if flag in info else "unknown dataset"
        raise ValueError(f"{what}: {flag!r}. Valid datasets: {valid}")
    return info[flag]


def label_names(flag: str) -> list[str]:
    """The class names of a dataset, in label order (from medmnist's INFO)."""
    labels = dataset_info(flag)["label"]
    return [labels[k] for k in sorted(labels, key=int)]


def _check_size(size: int) -> int:
    try:
        size = check_int("size", size)
    except ValueError:
        size = None
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}; got {size!r}")
    return int(size)


def medmnist_filename(flag: str, size: int = 28) -> str:
    """File name of a MedMNIST npz: ``{flag}.npz`` or ``{flag}_{size}.npz``."""
    return f"{flag}.npz" if _check_size(size) == 28 else f"{flag}_{size}.npz"


def url_and_md5(flag: str, size: int) -> tuple[str | None, str | None]:
    """The official URL and MD5 of ``{flag}`` at ``size`` (None where medmnist lists none)."""
    info = dataset_info(flag)
    suffix = "" if size == 28 else f"_{size}"
    return info.get(f"url{suffix}"), info.get(f"MD5{suffix}")


def default_root() -> Path:
    """``$RISC_TF_DATA`` if set, else medmnist's usual folder ``~/.medmnist``."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else Path("~/.medmnist").expanduser()


def data_folder(root: str | os.PathLike | None, *, create: bool) -> Path:
    """``root`` (or :func:`default_root`) as a folder; ``create`` makes it (and its parents)."""
    path = Path(root).expanduser() if root is not None else default_root()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"data root {path} is a file, not a folder")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise NotADirectoryError(
                f"cannot create data root {path}: a parent is a file"
            ) from None
    return path
