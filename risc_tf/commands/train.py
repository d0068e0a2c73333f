"""``risc-tf train-rotnet`` and ``risc-tf train-classifier``: stages 1 and 2 on their own."""

from __future__ import annotations

import argparse
from pathlib import Path

from risc_tf.commands._common import (
    add_classifier_options,
    add_data_options,
    add_head_options,
    add_output_options,
    add_training_options,
    load_splits,
    non_negative_float,
    none_if,
    resolve_angles,
    save_json,
    training_options,
)

__all__ = ["add_parser"]


def _check_model(args: argparse.Namespace, *, rotnet_source: bool = False) -> None:
    """The model builders' checks of --weights and --input-size, before the data is read
    or a folder made (``rotnet_source``: a RotNet given with --init-from replaces them)."""
    from risc_tf.backbones import check_backbone_weights, check_input_size

    check_input_size(args.backbone, args.input_size)
    if not rotnet_source:
        check_backbone_weights(args.weights, args.backbone)


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
    from risc_tf.distribute import make_strategy
    from risc_tf.paper import paper_angles
    from risc_tf.saving import save_model
    from risc_tf.stages import build_and_train_rotnet

    angles = resolve_angles(args) or paper_angles(args.dataset)
    _check_model(args)
    splits = load_splits(args, ("train", "val"))
    model_path, history_path = _targets(args, "rotnet")
    rotnet, record = build_and_train_rotnet(
        splits["train"][0], splits["val"][0], angles=angles, head=args.rotnet_head,
        sigma=args.rotnet_sigma, input_size=args.input_size,
        backbone=args.backbone, weights=args.weights, strategy=make_strategy(args.strategy),
        jitter=args.jitter, **training_options(args))
    save_model(rotnet, model_path)
    record = _record(args, record, angles=list(angles), jitter=args.jitter,
                     head=args.rotnet_head, sigma=rotnet.layers[-1].sigma)
    save_json(record, history_path)
    print(f"RotNet saved to {model_path} (best validation rotation accuracy "
          f"{record['best_val_accuracy'] or float('nan'):.3f}, {record['train_time_s']:.0f} s)")
    return 0


def run_train_classifier(args: argparse.Namespace) -> int:
    from risc_tf.angles import default_tilt
    from risc_tf.catalog import label_names
    from risc_tf.distribute import make_strategy
    from risc_tf.evaluation import upright_metrics
    from risc_tf.models import rotnet_angles
    from risc_tf.paper import paper_angles
    from risc_tf.saving import load_model, save_model
    from risc_tf.stages import build_and_train_classifier

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
    _check_model(args, rotnet_source=rotnet is not None)
    splits = load_splits(args, ("train", "val", "test"))
    name = "rotation_augmented" if augment_angles else "classifier"
    model_path, history_path = _targets(args, name)
    (x, y), (xv, yv), (xt, yt) = splits["train"], splits["val"], splits["test"]
    clf, record = build_and_train_classifier(
        x, y, xv, yv, num_classes=len(label_names(args.dataset)), input_size=args.input_size,
        backbone=args.backbone, weights=rotnet or args.weights,
        freeze_backbone=args.freeze_backbone, strategy=make_strategy(args.strategy),
        augment_angles=augment_angles, tilt=tilt, class_weight=none_if(args.class_weight),
        label_smoothing=args.label_smoothing, augment=none_if(args.augment),
        **training_options(args))
    save_model(clf, model_path)
    test = upright_metrics(clf, xt, yt, fill=args.fill)
    record = _record(args, record, upright_test=test,
                     augment_angles=list(augment_angles) if augment_angles else None,
                     tilt=tilt, init_from=args.init_from, freeze_backbone=args.freeze_backbone)
    save_json(record, history_path)
    print(f"Classifier saved to {model_path}: upright test ACC {test['acc']:.3f}, "
          f"AUC {test['auc']:.3f} ({record['train_time_s']:.0f} s)")
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
                        "(at most half the gap; default 0; bins head)")
    add_head_options(p)
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
