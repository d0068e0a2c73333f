"""``risc-tf train-rotnet`` and ``risc-tf train-classifier``: stages 1 and 2 on their own."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from risc_tf.commands._common import (
    add_classifier_options,
    add_data_options,
    add_output_options,
    add_training_options,
    load_splits,
    non_negative_float,
    none_if,
    resolve_angles,
    save_json,
    strategy_scope,
    training_options,
)

__all__ = ["add_parser"]


def _targets(args: argparse.Namespace, name: str) -> tuple[Path, Path]:
    from risc_tf.experiments.rundir import ensure_output_dir

    folder = ensure_output_dir(args.output)
    model, history = folder / f"{name}.keras", folder / f"{name}_history.json"
    for path in (model, history):
        if path.exists() and not args.overwrite:
            raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    return model, history


def _record(args, history: dict, **extra) -> dict:
    return {"dataset": args.dataset, "backbone": args.backbone, "weights": args.weights,
            "seed": args.seed, "fill": args.fill, **history, **extra}


def run_train_rotnet(args: argparse.Namespace) -> int:
    from risc_tf.models import build_rotnet
    from risc_tf.paper import paper_angles
    from risc_tf.saving import save_model
    from risc_tf.training import history_record, train_rotnet

    angles = resolve_angles(args) or paper_angles(args.dataset)
    splits = load_splits(args, ("train", "val"))
    model_path, history_path = _targets(args, "rotnet")
    size = args.input_size
    with strategy_scope(args.strategy, args.seed):
        rotnet = build_rotnet((size, size, 3), angles=angles, backbone=args.backbone,
                              weights=args.weights)
        start = time.perf_counter()
        history = train_rotnet(rotnet, splits["train"][0], splits["val"][0], jitter=args.jitter,
                               **training_options(args))
    seconds = time.perf_counter() - start
    save_model(rotnet, model_path)
    record = _record(args, history_record(history, seconds, rotnet), angles=list(angles),
                     jitter=args.jitter)
    save_json(record, history_path)
    print(f"RotNet saved to {model_path} (best validation rotation accuracy "
          f"{record['best_val_accuracy'] or float('nan'):.3f}, {seconds:.0f} s)")
    return 0


def run_train_classifier(args: argparse.Namespace) -> int:
    from risc_tf.angles import default_tilt
    from risc_tf.data import label_names
    from risc_tf.evaluation import model_proba
    from risc_tf.metrics import classification_metrics
    from risc_tf.models import build_classifier, rotnet_angles
    from risc_tf.paper import paper_angles
    from risc_tf.preprocessing import preprocess_images
    from risc_tf.rotation import apply_fill
    from risc_tf.saving import load_model, save_model
    from risc_tf.training import history_record, train_classifier

    rotnet = load_model(args.init_from) if args.init_from else None
    if args.freeze_backbone and rotnet is None:
        raise ValueError("--freeze-backbone needs --init-from ROTNET.keras")
    # the angle set: --angles/--angle-step, else the RotNet's (--init-from), else the paper's
    given = resolve_angles(args) or (rotnet_angles(rotnet) if rotnet is not None else None)
    angles = given or paper_angles(args.dataset)
    augment_angles = angles if args.rotation_augment else None
    tilt = args.tilt
    if tilt == "auto":  # half the gap of the RotNet's angle set (0 for quarter turns)
        tilt = default_tilt(given) if given is not None else 0.0
    splits = load_splits(args, ("train", "val", "test"))
    name = "rotation_augmented" if augment_angles else "classifier"
    model_path, history_path = _targets(args, name)
    size = args.input_size
    (x, y), (xv, yv), (xt, yt) = splits["train"], splits["val"], splits["test"]
    with strategy_scope(args.strategy, args.seed):
        clf = build_classifier(len(label_names(args.dataset)), (size, size, 3),
                               backbone=args.backbone, weights=rotnet or args.weights,
                               freeze_backbone=args.freeze_backbone)
        start = time.perf_counter()
        history = train_classifier(
            clf, x, y, xv, yv, augment_angles=augment_angles, tilt=tilt,
            class_weight=none_if(args.class_weight), label_smoothing=args.label_smoothing,
            augment=none_if(args.augment), **training_options(args))
    seconds = time.perf_counter() - start
    save_model(clf, model_path)
    upright = apply_fill(preprocess_images(xt, size), args.fill).numpy()
    test = classification_metrics(yt, model_proba(clf)(upright))
    record = _record(args, history_record(history, seconds, clf), upright_test=test,
                     augment_angles=list(augment_angles) if augment_angles else None,
                     tilt=tilt, init_from=args.init_from, freeze_backbone=args.freeze_backbone)
    save_json(record, history_path)
    print(f"Classifier saved to {model_path}: upright test ACC {test['acc']:.3f}, "
          f"AUC {test['auc']:.3f} ({seconds:.0f} s)")
    return 0


def add_parser(subparsers) -> None:
    """Register ``train-rotnet`` and ``train-classifier``."""
    p = subparsers.add_parser(
        "train-rotnet", help="stage 1: train a RotNet on the rotation pretext task",
        description="Train a RotNet (backbone + 3 FC layers, softmax over rotations) on the "
                    "unlabelled train split; the validation split (every rotation of each "
                    "image) selects the best epoch. Writes OUTPUT/rotnet.keras (plain Keras, "
                    "angles recorded inside) and OUTPUT/rotnet_history.json.")
    add_data_options(p)
    add_training_options(p)
    p.add_argument("--jitter", type=non_negative_float, default=0.0, metavar="DEG",
                   help="training rotations deviate from the set's angles by up to DEG "
                        "(at most half the gap; default 0)")
    add_output_options(p, "output folder")
    p.set_defaults(func=run_train_rotnet)

    p = subparsers.add_parser(
        "train-classifier", help="stage 2: train a classifier on upright images",
        description="Train a classifier on the labelled train split (upright, as the paper; "
                    "--rotation-augment for the rotation-augmented baseline; --init-from a "
                    "trained RotNet for the self-supervised initialisation). Writes "
                    "OUTPUT/classifier.keras (or rotation_augmented.keras) and a history "
                    "JSON with the upright test ACC/AUC.")
    add_data_options(p)
    add_training_options(p)
    add_classifier_options(p)
    p.add_argument("--rotation-augment", action="store_true",
                   help="rotate each training image by a random angle of the angle set")
    p.add_argument("--init-from", metavar="ROTNET.keras",
                   help="copy this trained RotNet's backbone weights into the classifier "
                        "(same backbone and input size)")
    p.add_argument("--freeze-backbone", action="store_true",
                   help="with --init-from: train the head only (a linear probe)")
    add_output_options(p, "output folder")
    p.set_defaults(func=run_train_classifier)
