"""Options shared by the ``risc-tf`` subcommands, with argparse types that give clear errors."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from pathlib import Path

import numpy as np

from risc_tf.data import SIZES, dataset_info
from risc_tf.models import BACKBONES
from risc_tf.rotation import angles_every, check_angles

__all__ = [
    "add_common",
    "data_errors",
    "dataset_flag",
    "load_splits",
    "positive_int",
    "resolve_angles",
    "save_json",
    "verbosity",
]


def _bounded(cast, accept, what: str, name: str):
    """An argparse type: ``cast(text)`` that ``accept`` allows, else a clear error."""

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"must be {what}; got {text!r}")
        return value

    parse.__name__ = parse.__qualname__ = name
    parse.__doc__ = f"argparse type: {what}."
    return parse


positive_int = _bounded(int, lambda v: v >= 1, "a positive integer", "positive_int")
non_negative_int = _bounded(int, lambda v: v >= 0, "an integer >= 0", "non_negative_int")
positive_float = _bounded(
    float, lambda v: bool(np.isfinite(v)) and v > 0, "a positive number", "positive_float"
)


def dataset_flag(text: str) -> str:
    """argparse type: a 2D MedMNIST flag (the error lists the valid ones)."""
    try:
        dataset_info(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def angle_list(text: str) -> tuple[float, ...]:
    """argparse type: comma-separated degrees, e.g. ``0,90,180,270``."""
    try:
        return check_angles([float(a) for a in text.split(",") if a.strip()])
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated degrees such as 0,90,180,270 ({err})"
        ) from None


def angle_step(text: str) -> float:
    """argparse type: a step in degrees that divides 360, e.g. ``45``."""
    try:
        step = float(text)
        angles_every(step)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a step in degrees that divides 360 into at least 2 angles; got {text!r}"
        ) from None
    return step


def add_common(parser: argparse.ArgumentParser, training: bool = True,
               angles: bool = True) -> None:
    """Register the options every subcommand shares."""
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", required=True, type=dataset_flag, metavar="FLAG",
                      help="MedMNIST 2D dataset, e.g. pneumoniamnist, retinamnist, organamnist")
    data.add_argument("--data-root", metavar="DIR",
                      help="folder holding FLAG.npz (default: $RISC_TF_DATA, then ~/.medmnist)")
    data.add_argument("--size", type=int, choices=SIZES, default=28,
                      help="MedMNIST image size of the file to read (default 28)")
    data.add_argument("--subset", type=positive_int, metavar="N",
                      help="use at most N images of each split (seeded draw; quick runs)")
    data.add_argument("--download", action="store_true",
                      help="download the file (MD5-checked) when it is missing")
    data.add_argument("--no-verify", dest="verify", action="store_false",
                      help="skip the MD5 check (for files that are not the official ones)")
    if angles:
        group = data.add_mutually_exclusive_group()
        group.add_argument("--angles", type=angle_list, metavar="A,B,...",
                           help="rotation angle set in degrees (default: the paper's set, "
                                "multiples of 45 for retinamnist and of 90 otherwise)")
        group.add_argument("--angle-step", type=angle_step, metavar="DEG",
                           help="angle set: every multiple of DEG in [0, 360)")
    model = parser.add_argument_group("model and training")
    model.add_argument("--input-size", type=positive_int, default=32, metavar="S",
                       help="model input side in pixels (default 32, as the paper)")
    model.add_argument("--batch-size", type=positive_int, default=64, metavar="N",
                       help="batch size (default 64)")
    model.add_argument("--seed", type=non_negative_int, default=0,
                       help="random seed (default 0)")
    if training:
        model.add_argument("--backbone", choices=sorted(BACKBONES), default="resnet50",
                           metavar="NAME",
                           help=f"backbone: {', '.join(sorted(BACKBONES))} (default resnet50; "
                                "'small' is a fast CNN for tests and quick CPU runs)")
        model.add_argument("--weights", metavar="W",
                           help="backbone initialisation: 'imagenet' or a weights file "
                                "(default: random, from scratch)")
        model.add_argument("--epochs", type=positive_int, default=10,
                           help="most epochs per model (default 10)")
        model.add_argument("--learning-rate", type=positive_float, default=1e-3, metavar="LR",
                           help="Adam learning rate (default 1e-3)")
        model.add_argument("--patience", type=non_negative_int, default=5,
                           help="early-stopping patience in epochs on validation accuracy; "
                                "0 turns early stopping off (default 5)")
    parser.add_argument("--output", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace earlier results in the output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or messages")


def resolve_angles(args: argparse.Namespace) -> tuple[float, ...] | None:
    """The angle set the options ask for (None: the paper's default)."""
    if getattr(args, "angles", None) is not None:
        return args.angles
    if getattr(args, "angle_step", None) is not None:
        return angles_every(args.angle_step)
    return None


def verbosity(args: argparse.Namespace) -> int:
    return 0 if args.quiet else 1


@contextlib.contextmanager
def data_errors():
    """Add the command-line remedies to the loader's missing-file and MD5 errors."""
    try:
        yield
    except FileNotFoundError as err:
        if ".npz not found" not in str(err):
            raise
        raise FileNotFoundError(f"{err} (command line: --data-root DIR or --download)") from None
    except ValueError as err:
        if "MD5 mismatch" not in str(err):
            raise
        raise ValueError(f"{err} If the file is deliberately not the official one (e.g. a "
                         "test-made file), pass --no-verify.") from None


def load_splits(args: argparse.Namespace, splits=("train", "val", "test")) -> dict:
    """Load the requested splits as the options say: split -> (images, labels)."""
    from risc_tf.reproduce import load_splits as load

    with data_errors():
        return load(args.dataset, args.data_root, args.size, args.subset, args.seed, splits,
                    download=args.download, verify=args.verify)


def save_json(data: dict, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.write_text(json.dumps(data, indent=2, default=float))
    return path
