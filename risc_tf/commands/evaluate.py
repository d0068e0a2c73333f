"""``risc-tf evaluate``: stages 3-5 for trained models on the upright and a rotated test set."""

from __future__ import annotations

import argparse
from pathlib import Path

import keras

from risc_tf.commands._common import add_common, load_splits, resolve_angles, save_json
from risc_tf.evaluation import METHOD_LABELS, build_methods, evaluate_models, evaluation_sets
from risc_tf.models import model_image_size, rotnet_angles
from risc_tf.pipeline import RISCPipeline
from risc_tf.reporting import ensure_output_dir

__all__ = ["add_parser"]


def _load_model(path: str, what: str) -> keras.Model:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{what} model file {path} does not exist")
    try:
        return keras.models.load_model(path, compile=False)
    except (ValueError, OSError) as err:
        raise ValueError(f"could not load the {what} from {path}: {err}") from err


def _models(args: argparse.Namespace) -> tuple[keras.Model, keras.Model]:
    if args.pipeline and (args.rotnet or args.classifier):
        raise ValueError("give --pipeline, or --rotnet and --classifier, not both")
    if args.pipeline:
        pipe = RISCPipeline.load(args.pipeline)
        return pipe.rotnet, pipe.classifier
    if not (args.rotnet and args.classifier):
        raise ValueError("give --pipeline DIR, or both --rotnet FILE and --classifier FILE")
    return _load_model(args.rotnet, "RotNet"), _load_model(args.classifier, "classifier")


def run_evaluate(args: argparse.Namespace) -> int:
    rotnet, classifier = _models(args)
    baseline = (_load_model(args.rotation_augmented, "rotation-augmented classifier")
                if args.rotation_augmented else None)
    angles = rotnet_angles(rotnet)
    test_angles = resolve_angles(args) or angles
    output = ensure_output_dir(args.output)
    target = output / "evaluation.json"
    if target.exists() and not args.overwrite:
        raise FileExistsError(f"{target} exists; pass --overwrite to replace it")
    x, y = load_splits(args, (args.split,))[args.split]
    size = model_image_size(rotnet)
    methods = build_methods(rotnet, classifier, angles, baseline, args.batch_size)
    sets = evaluation_sets(x, y, test_angles, args.seed, size)
    result = evaluate_models(methods, rotnet, sets, angles)
    result.update(dataset=args.dataset, split=args.split, n=int(len(x)), seed=args.seed,
                  rotnet_angles=list(angles), test_angles=list(test_angles),
                  methods={m: METHOD_LABELS[m] for m in methods})
    save_json(result, target)
    print(f"{args.dataset} {args.split} ({len(x)} images), rotated by "
          f"{', '.join(f'{a:g}' for a in test_angles)} deg (seed {args.seed})")
    rot_acc = result["rotnet"]["rotated_test_acc"]
    print(f"RotNet rotation accuracy on the rotated set: {rot_acc:.3f}")
    print(f"{'method':<20}{'upright ACC':>12}{'AUC':>8}{'rotated ACC':>13}{'AUC':>8}")
    for m in methods:
        u, r = result["upright"][m], result["rotated"][m]
        print(f"{m:<20}{u['acc']:>12.3f}{u['auc']:>8.3f}{r['acc']:>13.3f}{r['auc']:>8.3f}")
    print(f"written: {target}")
    return 0


def add_parser(subparsers) -> None:
    """Register ``evaluate``."""
    p = subparsers.add_parser(
        "evaluate", help="stages 3-5: evaluate RISC and baselines on a rotated test set",
        description="Evaluate the upright classifier, test-time augmentation, RISC (hard and "
                    "soft) and optionally a rotation-augmented classifier on the upright and "
                    "on a seeded randomly rotated split. Writes OUTPUT/evaluation.json.")
    models = p.add_argument_group("models")
    models.add_argument("--pipeline", metavar="DIR", help="a saved RISCPipeline folder")
    models.add_argument("--rotnet", metavar="FILE", help="a RotNet .keras file")
    models.add_argument("--classifier", metavar="FILE", help="an upright classifier .keras file")
    models.add_argument("--rotation-augmented", metavar="FILE",
                        help="a rotation-augmented classifier .keras file (baseline)")
    p.add_argument("--split", choices=("test", "val", "train"), default="test",
                   help="split to evaluate (default test)")
    add_common(p, training=False)
    p.set_defaults(func=run_evaluate)
