"""``risc-tf train-rotnet`` and ``risc-tf train-classifier``: stages 1 and 2 on their own."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from risc_tf.commands._common import (
    add_common,
    load_splits,
    resolve_angles,
    save_json,
    verbosity,
)
from risc_tf.data import dataset_info
from risc_tf.evaluation import classification_metrics, model_proba
from risc_tf.models import build_classifier, build_rotnet, save_for_inference
from risc_tf.preprocessing import preprocess_images
from risc_tf.reporting import ensure_output_dir
from risc_tf.reproduce import paper_angles
from risc_tf.training import train_classifier, train_rotnet

__all__ = ["add_parser"]


def _target(args: argparse.Namespace, name: str) -> tuple[Path, Path]:
    folder = ensure_output_dir(args.output)
    model, history = folder / f"{name}.keras", folder / f"{name}_history.json"
    for path in (model, history):
        if path.exists() and not args.overwrite:
            raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    return model, history


def _fit_options(args: argparse.Namespace) -> dict:
    return dict(epochs=args.epochs, batch_size=args.batch_size,
                learning_rate=args.learning_rate, patience=args.patience or None,
                seed=args.seed, verbose=verbosity(args))


def _record(args, history, seconds: float, angles=None, **extra) -> dict:
    logs = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    return {"dataset": args.dataset, "backbone": args.backbone, "weights": args.weights,
            "angles": list(angles) if angles else None, "seed": args.seed,
            "epochs_run": len(logs["loss"]), "train_time_s": seconds, "history": logs, **extra}


def run_train_rotnet(args: argparse.Namespace) -> int:
    angles = resolve_angles(args) or paper_angles(args.dataset)
    splits = load_splits(args, ("train", "val"))
    model_path, history_path = _target(args, "rotnet")
    size = args.input_size
    rotnet = build_rotnet((size, size, 3), angles, args.backbone, args.weights)
    start = time.perf_counter()
    history = train_rotnet(rotnet, splits["train"][0], splits["val"][0], **_fit_options(args))
    seconds = time.perf_counter() - start
    save_for_inference(rotnet, model_path)
    record = _record(args, history, seconds, angles)
    save_json(record, history_path)
    val = record["history"].get("val_accuracy", [float("nan")])
    print(f"RotNet saved to {model_path} (best validation rotation accuracy {max(val):.3f}, "
          f"{seconds:.0f} s)")
    return 0


def run_train_classifier(args: argparse.Namespace) -> int:
    augment = None
    if args.rotation_augment:
        augment = resolve_angles(args) or paper_angles(args.dataset)
    elif resolve_angles(args) is not None:
        raise ValueError("--angles/--angle-step only apply with --rotation-augment")
    splits = load_splits(args, ("train", "val", "test"))
    name = "rotation_augmented" if augment else "classifier"
    model_path, history_path = _target(args, name)
    size = args.input_size
    clf = build_classifier(len(dataset_info(args.dataset)["label"]), (size, size, 3),
                           args.backbone, args.weights)
    (x, y), (xv, yv), (xt, yt) = splits["train"], splits["val"], splits["test"]
    start = time.perf_counter()
    history = train_classifier(clf, x, y, xv, yv, augment_angles=augment, **_fit_options(args))
    seconds = time.perf_counter() - start
    save_for_inference(clf, model_path)
    test = classification_metrics(yt, model_proba(clf)(preprocess_images(xt, size)))
    save_json(_record(args, history, seconds, augment, upright_test=test), history_path)
    print(f"Classifier saved to {model_path}: upright test ACC {test['acc']:.3f}, "
          f"AUC {test['auc']:.3f} ({seconds:.0f} s)")
    return 0


def add_parser(subparsers) -> None:
    """Register ``train-rotnet`` and ``train-classifier``."""
    p = subparsers.add_parser(
        "train-rotnet", help="stage 1: train a RotNet on the rotation pretext task",
        description="Train a RotNet (backbone + 3 FC layers, softmax over rotations) on the "
                    "unlabelled train split; the validation split (every rotation of each "
                    "image) selects the best epoch. Writes OUTPUT/rotnet.keras and "
                    "OUTPUT/rotnet_history.json.")
    add_common(p)
    p.set_defaults(func=run_train_rotnet)

    p = subparsers.add_parser(
        "train-classifier", help="stage 2: train a classifier on upright images",
        description="Train a classifier on the labelled train split (upright, as the paper; "
                    "--rotation-augment for the rotation-augmented baseline). Writes "
                    "OUTPUT/classifier.keras (or rotation_augmented.keras) and a history "
                    "JSON with the upright test ACC/AUC.")
    add_common(p)
    p.add_argument("--rotation-augment", action="store_true",
                   help="rotate each training image by a random angle of the angle set")
    p.set_defaults(func=run_train_classifier)
