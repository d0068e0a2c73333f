"""``risc-tf reproduce``: the paper's stages 1-5 with baselines and the full report."""

from __future__ import annotations

import argparse

from risc_tf.commands._common import (
    add_classifier_options,
    add_data_options,
    add_head_options,
    add_output_options,
    add_training_options,
    angle_list,
    angle_step,
    data_errors,
    non_negative_float,
    positive_int,
    resolve_angles,
    seed_list,
)

__all__ = ["add_experiment_options", "add_parser", "config_from_args"]


def config_from_args(args: argparse.Namespace):
    """The ReproduceConfig the options describe (recipe values where an option is unset)."""
    from risc_tf.experiments.config import ReproduceConfig

    return ReproduceConfig(
        dataset=args.dataset, output=args.output, data_root=args.data_root, size=args.size,
        input_size=args.input_size, backbone=args.backbone, weights=args.weights,
        recipe=args.recipe, epochs=args.epochs, rotnet_epochs=args.rotnet_epochs,
        patience=args.patience, optimizer=args.optimizer, learning_rate=args.learning_rate,
        lr_schedule=args.lr_schedule,
        class_weight=args.class_weight, label_smoothing=args.label_smoothing,
        augment=args.augment,
        classifier_init=args.classifier_init, batch_size=args.batch_size,
        angles=resolve_angles(args), rotnet_head=args.rotnet_head,
        rotnet_sigma=args.rotnet_sigma, fill=args.fill, jitter=args.jitter, tilt=args.tilt,
        seed=args.seed, deterministic=args.deterministic, subset=args.subset,
        sweep_step=args.sweep_step, download=args.download, verify=args.verify,
        download_timeout=args.download_timeout,
        # test-set options: reproduce only (a search never sees the test split)
        **{k: getattr(args, k) for k in ("test_angles", "protocol", "sweep_split",
                                         "timing_samples") if hasattr(args, k)},
        overwrite=args.overwrite, verbose=0 if args.quiet else 1,
    )


def run_reproduce(args: argparse.Namespace) -> int:
    from risc_tf.experiments.run import reproduce
    from risc_tf.experiments.seeds import reproduce_seeds

    config = config_from_args(args)
    with data_errors():
        if args.seeds:
            result = reproduce_seeds(config, args.seeds)
            print(result.verdict)
        else:
            result = reproduce(config)
            print(result.summary["verdict"])
    print(f"report: {args.output}/results.md")
    return 0


def add_experiment_options(p: argparse.ArgumentParser, *, test_set: bool = True) -> None:
    """Every setting of a ReproduceConfig (shared by ``reproduce`` and ``tune``; one device).

    ``test_set=False`` leaves out what only concerns the test split (``tune`` never
    loads it).
    """
    from risc_tf.angles import PROTOCOLS
    from risc_tf.experiments.config import CLASSIFIER_INITS, RECIPES

    add_data_options(p)
    add_training_options(p, defaults=False, strategy=False)
    add_classifier_options(p, defaults=False)
    exp = p.add_argument_group("experiment")
    exp.add_argument("--recipe", choices=sorted(RECIPES), default="paper",
                     help="training recipe: paper (the paper's plain setup, default) or tuned "
                          "(chosen on validation data; docs/recipe.md); options set explicitly "
                          "override it")
    exp.add_argument("--rotnet-epochs", type=positive_int, metavar="N",
                     help="most RotNet epochs (default: the recipe's)")
    exp.add_argument("--classifier-init", choices=CLASSIFIER_INITS,
                     help="classifiers from scratch or from the trained RotNet's backbone "
                          "(default: the recipe's)")
    exp.add_argument("--jitter", type=non_negative_float, default=0.0, metavar="DEG",
                     help="RotNet training rotations deviate from its angles by up to DEG "
                          "(bins head)")
    add_head_options(exp)
    exp.add_argument("--seeds", type=seed_list, metavar="S,S,...",
                     help="run each seed in OUTPUT/seed-S and aggregate (e.g. 0,1,2)"
                     if test_set else "score each point with these seeds (e.g. 0,1)")
    exp.add_argument("--sweep-step", type=angle_step, default=10.0, metavar="DEG",
                     help="step of the accuracy-versus-angle sweep (default 10)")
    if not test_set:
        return
    exp.add_argument("--test-angles", type=angle_list, metavar="A,B,...",
                     help="angles the rotated test set draws from (default: the paper's set)")
    exp.add_argument("--protocol", choices=PROTOCOLS, default="set",
                     help="rotated test set: angles from --test-angles (set, the paper's, "
                          "default) or uniform over the circle")
    exp.add_argument("--sweep-split", choices=("test", "val"), default="test",
                     help="split of the sweep: test (final runs, default) or val (choosing)")
    exp.add_argument("--timing-samples", type=positive_int, default=50, metavar="N",
                     help="images timed one at a time for Table 2 (default 50)")


def add_parser(subparsers) -> None:
    """Register ``reproduce``."""
    p = subparsers.add_parser(
        "reproduce", help="run stages 1-5 with baselines and write Table 1, Table 2 and plots",
        description="Train the RotNet, the upright classifier and the rotation-augmented "
                    "baseline (one recipe for all); evaluate every method (classifier, TTA, "
                    "RISC hard and soft) on the upright and a randomly rotated test set, per "
                    "angle and over the whole circle; measure selective classification; time "
                    "inference; write results.json, results.md, PNG plots and the saved "
                    "pipeline into OUTPUT. With --seeds, one run per seed in OUTPUT/seed-N "
                    "(finished seeds are kept when the command is repeated) and the aggregate "
                    "with statistics in OUTPUT. OUTPUT must be new or empty, or hold an "
                    "earlier run that --overwrite replaces.",
        epilog="example: risc-tf reproduce --dataset pneumoniamnist "
               "--data-root ../shared/data/medmnist --output runs/pneumonia")
    add_experiment_options(p)
    add_output_options(p, "output folder")
    p.set_defaults(func=run_reproduce)
