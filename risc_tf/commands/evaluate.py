"""``risc-tf evaluate``: stages 3-5 for trained models on the upright and a rotated test set."""

from __future__ import annotations

import argparse
from pathlib import Path

from risc_tf.commands._common import (
    add_data_options,
    add_model_options,
    add_output_options,
    load_splits,
    non_negative_int,
    pipeline_from_args,
    positive_int,
    resolve_angles,
    save_json,
)

__all__ = ["add_parser"]


def run_evaluate(args: argparse.Namespace) -> int:
    from risc_tf.evaluation import METHOD_LABELS, build_methods, evaluate_models, evaluation_sets
    from risc_tf.experiments.rundir import ensure_output_dir
    from risc_tf.models import model_image_size, rotnet_angles
    from risc_tf.paper import paper_angles
    from risc_tf.saving import load_model

    pipe = pipeline_from_args(args)
    rotnet, classifier, fill = pipe.rotnet, pipe.classifier, args.fill or pipe.fill
    baseline = load_model(args.rotation_augmented) if args.rotation_augmented else None
    angles = rotnet_angles(rotnet)
    test_angles = resolve_angles(args) or paper_angles(args.dataset)  # as reproduce
    target = Path(args.output) / "evaluation.json"
    if target.exists() and not args.overwrite:
        raise FileExistsError(f"{target} exists; pass --overwrite to replace it")
    x, y = load_splits(args, (args.split,))[args.split]
    ensure_output_dir(args.output)  # after the data: a missing file leaves no folder
    methods = build_methods(rotnet, classifier, baseline, batch_size=args.batch_size, fill=fill)
    sets = evaluation_sets(x, y, test_angles, image_size=model_image_size(rotnet),
                           seed=args.seed, protocol=args.protocol, fill=fill)
    result = evaluate_models(methods, rotnet, sets, protocol=args.protocol)
    result.update(dataset=args.dataset, split=args.split, n=int(len(x)), seed=args.seed,
                  protocol=args.protocol, fill=fill, rotnet_angles=list(angles),
                  test_angles=list(test_angles) if args.protocol == "set" else None,
                  methods={m: METHOD_LABELS[m] for m in methods})
    save_json(result, target)
    if args.quiet:
        print(f"written: {target}")
        return 0
    drawn = (", ".join(f"{a:g}" for a in test_angles) + " deg" if args.protocol == "set"
             else "uniform random angles")
    print(f"{args.dataset} {args.split} ({len(x)} images), rotated by {drawn} (seed {args.seed})")
    rot = result["rotnet"]
    acc = "n/a (no test angle is in its set)" if rot["acc"] is None else f"{rot['acc']:.3f}"
    print(f"RotNet rotation accuracy: {acc}; mean angular error {rot['mae_deg']:.1f} deg")
    outside = [a for a, v in rot["per_angle_acc"].items() if isinstance(v, str)]
    if outside:
        print(f"  test angles not in the RotNet's angle set {list(angles)}: "
              f"{', '.join(outside)} (classifiers evaluated on them, the RotNet's accuracy not)")
    print(f"{'method':<20}{'upright ACC':>12}{'AUC':>8}{'rotated ACC':>13}{'AUC':>8}")
    for m in methods:
        u, r = result["upright"][m], result["rotated"][m]
        print(f"{m:<20}{u['acc']:>12.3f}{u['auc']:>8.3f}{r['acc']:>13.3f}{r['auc']:>8.3f}")
    print(f"written: {target}")
    return 0


def add_parser(subparsers) -> None:
    """Register ``evaluate``."""
    from risc_tf.angles import FILLS, PROTOCOLS

    p = subparsers.add_parser(
        "evaluate", help="stages 3-5: evaluate RISC and baselines on a rotated test set",
        description="Evaluate the upright classifier, test-time augmentation, RISC (hard and "
                    "soft) and optionally a rotation-augmented classifier on the upright and "
                    "on a seeded randomly rotated split. The RotNet's angle set is read from "
                    "the RotNet; --angles/--angle-step set the test rotations (default: the "
                    "paper's set, as reproduce; angles outside the RotNet's set are evaluated "
                    "for the classifiers). Writes OUTPUT/evaluation.json.")
    models = add_model_options(p)
    models.add_argument("--rotation-augmented", metavar="FILE",
                        help="a rotation-augmented classifier .keras file (baseline)")
    p.add_argument("--split", choices=("test", "val", "train"), default="test",
                   help="split to evaluate (default test)")
    p.add_argument("--protocol", choices=PROTOCOLS, default="set",
                   help="set: each image turned by an angle of the test angle set (default); "
                        "uniform: by a uniform random angle")
    p.add_argument("--fill", choices=FILLS,
                   help="fill of interpolated rotations (default: the pipeline's, else constant)")
    p.add_argument("--batch-size", type=positive_int, default=256, metavar="N",
                   help="images per inference batch (default 256)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the rotated set (default 0)")
    add_data_options(p)
    add_output_options(p, "output folder")
    p.set_defaults(func=run_evaluate)
