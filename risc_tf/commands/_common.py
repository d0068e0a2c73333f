"""Options shared by the ``risc-tf`` subcommands, with argparse types that give clear errors.

Imports nothing that loads TensorFlow: parsers are built for ``--help``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

from risc_tf.angles import FILLS, angles_every, check_angles
from risc_tf.backbones import BACKBONES
from risc_tf.catalog import DATA_ENV, DOWNLOAD_TIMEOUT, SIZES, dataset_info
from risc_tf.validation import MAX_SEED

__all__ = [
    "add_data_options",
    "add_output_options",
    "add_head_options",
    "add_training_options",
    "angle_list",
    "angle_step",
    "data_errors",
    "dataset_flag",
    "load_splits",
    "non_negative_int",
    "output_file",
    "positive_float",
    "positive_int",
    "probability",
    "resolve_angles",
    "save_json",
    "seed_list",
    "seed_value",
    "training_options",
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


def _finite(v: float) -> bool:
    return v == v and v not in (float("inf"), float("-inf"))


positive_int = _bounded(int, lambda v: v >= 1, "a positive integer", "positive_int")
non_negative_int = _bounded(int, lambda v: v >= 0, "an integer >= 0", "non_negative_int")
positive_float = _bounded(float, lambda v: _finite(v) and v > 0, "a positive number",
                          "positive_float")
non_negative_float = _bounded(float, lambda v: _finite(v) and v >= 0, "a number >= 0",
                              "non_negative_float")
probability = _bounded(float, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]", "probability")
fraction = _bounded(float, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)", "fraction")
seed_value = _bounded(int, lambda v: 0 <= v <= MAX_SEED, f"an integer in [0, {MAX_SEED}]",
                      "seed_value")


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


def seed_list(text: str) -> tuple[int, ...]:
    """argparse type: distinct non-negative integers, e.g. ``0,1,2``."""
    parts = [p.strip() for p in text.split(",")]
    try:
        seeds = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated integers such as 0,1,2; got {text!r}") from None
    if any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"seeds must be >= 0; got {text!r}")
    if any(s > MAX_SEED for s in seeds):
        raise argparse.ArgumentTypeError(f"seeds must be <= {MAX_SEED}; got {text!r}")
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds must be distinct; got {text!r}")
    return seeds


def tilt_value(text: str) -> float | str:
    """argparse type: ``auto`` or degrees in [0, 180)."""
    if text == "auto":
        return text
    value = non_negative_float(text)
    if value >= 180:
        raise argparse.ArgumentTypeError(f"must be 'auto' or degrees in [0, 180); got {text!r}")
    return value


def add_data_options(parser: argparse.ArgumentParser, angles: bool = True,
                     required: bool = True, subset: bool = True) -> None:
    """--dataset, --data-root, --size, --subset, --download, --no-verify (+ angle sets)."""
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", required=required, type=dataset_flag, metavar="FLAG",
                      help="MedMNIST 2D dataset, e.g. pneumoniamnist, retinamnist, organamnist")
    data.add_argument("--data-root", metavar="DIR",
                      help=f"folder holding FLAG.npz (default: ${DATA_ENV}, then ~/.medmnist)")
    data.add_argument("--size", type=int, choices=SIZES, default=28,
                      help="MedMNIST image size of the file to read (default 28)")
    if subset:
        data.add_argument("--subset", type=positive_int, metavar="N",
                          help="use at most N images of each split (seeded draw; quick runs)")
    data.add_argument("--download", action="store_true",
                      help="download the file (MD5-checked) when it is missing")
    data.add_argument("--download-timeout", type=positive_float, default=DOWNLOAD_TIMEOUT,
                      metavar="S", help=f"seconds to wait for the server (default "
                                        f"{DOWNLOAD_TIMEOUT:g})")
    data.add_argument("--no-verify", dest="verify", action="store_false",
                      help="skip the MD5 check (for files that are not the official ones)")
    if angles:
        group = data.add_mutually_exclusive_group()
        group.add_argument("--angles", type=angle_list, metavar="A,B,...",
                           help="rotation angle set in degrees (default: the paper's set, "
                                "multiples of 45 for retinamnist and of 90 otherwise)")
        group.add_argument("--angle-step", type=angle_step, metavar="DEG",
                           help="angle set: every multiple of DEG in [0, 360)")


def add_training_options(parser: argparse.ArgumentParser, defaults: bool = True, *,
                         strategy: bool = True) -> None:
    """Model and training options (``defaults=False``: None, to be filled by a recipe;
    ``strategy=False``: no ``--strategy``, for commands that train on one device)."""
    d = (lambda v: v) if defaults else (lambda v: None)
    default = (lambda text: f"default {text}") if defaults else (lambda text: "default: the "
                                                                 "recipe's")
    model = parser.add_argument_group("model and training")
    model.add_argument("--input-size", type=positive_int, default=32, metavar="S",
                       help="model input side in pixels (default 32, as the paper)")
    model.add_argument("--batch-size", type=positive_int, default=64, metavar="N",
                       help="global batch size (default 64)")
    model.add_argument("--seed", type=seed_value, default=0,
                       help="random seed: data order, initial weights, every random draw "
                            "(default 0)")
    model.add_argument("--deterministic", action="store_true",
                       help="repeat bit for bit on this machine and these versions: "
                            "TensorFlow op determinism while training, all randomness from "
                            "--seed (docs/training.md)")
    model.add_argument("--backbone", choices=sorted(BACKBONES), default="resnet50",
                       metavar="NAME",
                       help=f"backbone: {', '.join(sorted(BACKBONES))} (default resnet50; "
                            "'small' is a fast CNN for tests and quick CPU runs)")
    model.add_argument("--weights", metavar="W",
                       help="backbone initialisation: 'imagenet' or a weights file "
                            "(default: random, from scratch)")
    model.add_argument("--epochs", type=positive_int, default=d(10),
                       help=f"most epochs per model ({default('10')})")
    model.add_argument("--patience", type=non_negative_int, default=d(5),
                       help="early-stopping patience in epochs on validation accuracy; "
                            f"0 turns early stopping off ({default('5')})")
    model.add_argument("--optimizer", default=d("adam"), metavar="NAME",
                       help="a Keras optimizer name: adam (fused kernel), adamw, sgd, "
                            f"rmsprop, ... ({default('adam')})")
    model.add_argument("--learning-rate", type=positive_float, default=d(1e-3), metavar="LR",
                       help=f"learning rate ({default('1e-3')})")
    model.add_argument("--lr-schedule", choices=("constant", "cosine"), default=d("constant"),
                       help=f"constant or cosine decay to 0 over the training "
                            f"({default('constant')})")
    model.add_argument("--fill", choices=FILLS, default="constant",
                       help="what fills the corners of interpolated rotations: constant "
                            "(black, default), reflect, or circle (a circular field of view "
                            "on every image)")
    if strategy:
        model.add_argument("--strategy", choices=("none", "mirrored", "multiworker"),
                           default="none",
                           help="tf.distribute strategy: mirrored (all local GPUs or CPU "
                                "devices), multiworker (several machines, TF_CONFIG); default "
                                "none")


def add_classifier_options(parser: argparse.ArgumentParser, defaults: bool = True) -> None:
    """Class weights, label smoothing, augmentation (classifier training)."""
    d = (lambda v: v) if defaults else (lambda v: None)
    default = (lambda text: f"default {text}") if defaults else (lambda text: "default: the "
                                                                 "recipe's")
    group = parser.add_argument_group("classifier training")
    group.add_argument("--class-weight", choices=("none", "balanced"), default=d("none"),
                       help=f"balanced: weight classes by n / (C * count) ({default('none')})")
    group.add_argument("--label-smoothing", type=fraction, default=d(0.0), metavar="EPS",
                       help=f"label smoothing in [0, 1) ({default('0')})")
    group.add_argument("--augment", choices=("none", "light"), default=d("none"),
                       help="light: small translations, zoom, contrast and brightness "
                            f"({default('none')})")
    group.add_argument("--tilt", type=tilt_value, default="auto", metavar="DEG",
                       help="random training tilt in [-DEG, DEG]; auto (default): half the "
                            "gap of the RotNet's angle set (--angles/--angle-step, or the "
                            "--init-from RotNet's; reproduce: --angles), 0 for quarter turns")


def add_output_options(parser: argparse.ArgumentParser, help_text: str = "output folder") -> None:
    parser.add_argument("--output", required=True, metavar="PATH", help=help_text)
    parser.add_argument("--overwrite", action="store_true",
                        help="replace earlier results at --output")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or messages")


def add_model_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """--pipeline DIR, or --rotnet FILE and --classifier FILE."""
    models = parser.add_argument_group("models")
    models.add_argument("--pipeline", metavar="DIR",
                        help="a saved RISCPipeline folder, or a risc-tf reproduce run folder")
    models.add_argument("--rotnet", metavar="FILE", help="a RotNet .keras file")
    models.add_argument("--classifier", metavar="FILE", help="a classifier .keras file")
    return models


def pipeline_from_args(args: argparse.Namespace):
    """The RISCPipeline the model options name (a saved one, or two model files)."""
    from risc_tf.pipeline import RISCPipeline
    from risc_tf.saving import load_model

    if args.pipeline and (args.rotnet or args.classifier):
        raise ValueError("give --pipeline, or --rotnet and --classifier, not both")
    if args.pipeline:
        return RISCPipeline.load(args.pipeline)
    if not (args.rotnet and args.classifier):
        raise ValueError("give --pipeline DIR, or both --rotnet FILE and --classifier FILE")
    return RISCPipeline(load_model(args.rotnet), load_model(args.classifier))


def none_if(value, word: str = "none"):
    """Map the command-line word for "nothing" to None."""
    return None if value == word else value


def add_head_options(group) -> None:
    """--rotnet-head and --rotnet-sigma (train-rotnet, reproduce, tune)."""
    group.add_argument("--rotnet-head", choices=("bins", "circular"), default="bins",
                       help="RotNet head: bins (the paper: one output per angle of the set, "
                            "default) or circular (fine bins over the circle, e.g. "
                            "--angle-step 5, trained on uniform angles with soft labels and "
                            "read as a continuous angle)")
    group.add_argument("--rotnet-sigma", type=positive_float, metavar="DEG",
                       help="soft-label width of the circular head in degrees (default: the "
                            "bin width)")


def resolve_angles(args: argparse.Namespace) -> tuple[float, ...] | None:
    """The angle set the options ask for (None: the default)."""
    if getattr(args, "angles", None) is not None:
        return args.angles
    if getattr(args, "angle_step", None) is not None:
        return angles_every(args.angle_step)
    return None


def verbosity(args: argparse.Namespace) -> int:
    """Keras's ``verbose`` from ``--quiet``: 0, else a bar on a terminal and
    one line per epoch in a log (:func:`risc_tf.progress.fit_verbosity`)."""
    from risc_tf.progress import fit_verbosity

    return 0 if args.quiet else fit_verbosity()


def training_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of risc_tf.train_rotnet / train_classifier from the options."""
    return dict(epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer,
                learning_rate=args.learning_rate, lr_schedule=args.lr_schedule,
                patience=args.patience or None, seed=args.seed,
                deterministic=args.deterministic, fill=args.fill, verbose=verbosity(args))


@contextlib.contextmanager
def data_errors():
    """Add the command-line remedies to the loader's missing-file and MD5 errors."""
    try:
        yield
    except FileNotFoundError as err:
        if ".npz not found" not in str(err):
            raise
        raise FileNotFoundError(
            str(err).replace("pass root= the folder that holds it", "pass --data-root DIR")
            .replace("use download=True", "use --download")) from None
    except ValueError as err:
        if "MD5 mismatch" not in str(err):
            raise
        raise ValueError(f"{err} If the file is deliberately not the official one (e.g. a "
                         "test-made file), pass --no-verify.") from None


def load_splits(args: argparse.Namespace, splits=("train", "val", "test")) -> dict:
    """Load the requested splits as the options say: split -> (images, labels)."""
    from risc_tf.data import load_splits as load

    with data_errors():
        return load(args.dataset, args.data_root, args.size, args.subset, args.seed, splits,
                    download=args.download, verify=args.verify, timeout=args.download_timeout)


def output_file(path: str | os.PathLike, overwrite: bool, suffixes: tuple[str, ...]) -> Path:
    """An output file path: the suffix checked, refused if it exists (unless overwrite)."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise ValueError(f"{path} must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise FileExistsError(f"{path} is a folder")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    return path


def save_json(data: dict, path: str | os.PathLike) -> Path:
    """Write JSON atomically (temporary file, then rename)."""
    from risc_tf.atomic import write_text
    from risc_tf.experiments.report import json_text

    return write_text(path, json_text(data))
