"""``risc-tf tune``: choose settings on validation data with a small resumable grid."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from risc_tf.commands._common import data_errors

__all__ = ["add_parser"]


def grid_argument(text: str) -> dict | list:
    """argparse type: a JSON grid, inline or in a .json file: an object
    ``{"setting": [values, ...]}`` (every combination) or a list of points."""
    source = Path(text)
    try:
        grid = json.loads(source.read_text() if source.suffix == ".json" and source.is_file()
                          else text)
    except (OSError, ValueError) as err:
        raise argparse.ArgumentTypeError(
            f"must be a JSON object such as '{{\"augment\": [\"none\", \"light\"]}}' or a "
            f".json file holding one ({err})") from None
    if isinstance(grid, list) and grid and all(isinstance(p, dict) and p for p in grid):
        return grid
    if not isinstance(grid, dict) or not grid or not all(
            isinstance(v, list) and v for v in grid.values()):
        raise argparse.ArgumentTypeError(
            "must map each setting to a non-empty list of values, or list points "
            '(e.g. [{"angles": [0, 90, 180, 270], "jitter": 45}])')
    return grid


def run_tune(args: argparse.Namespace) -> int:
    from risc_tf.commands.reproduce import config_from_args
    from risc_tf.experiments.tune import tune_recipe

    if args.seeds is not None and len(args.seeds) == 0:
        raise ValueError("--seeds needs at least one seed")
    if isinstance(args.grid, dict):
        grid = {key.replace("-", "_"): values for key, values in args.grid.items()}
    else:
        grid = [{key.replace("-", "_"): v for key, v in point.items()} for point in args.grid]
    with data_errors():
        state = tune_recipe(config_from_args(args), grid, seeds=args.seeds or (args.seed,),
                            objective=args.objective)
    print(f"choice: {json.dumps(state['choice']['settings'])} (mean validation score "
          f"{state['choice']['score']:.3f})")
    print(f"report: {args.output}/tune.md")
    return 0


def add_parser(subparsers) -> None:
    """Register ``tune``."""
    from risc_tf.commands._common import add_output_options
    from risc_tf.commands.reproduce import add_experiment_options

    p = subparsers.add_parser(
        "tune", help="choose settings on validation data (a small grid, resumable)",
        description="Score every point of a grid of reproduce settings on the validation "
                    "split only (the test split is never loaded): objective classifier = best "
                    "validation accuracy of the upright classifier; risc = RISC hard's mean "
                    "accuracy over the validation set rotated around the circle. Writes "
                    "OUTPUT/tune.json after every point (a repeated command resumes) and "
                    "OUTPUT/tune.md with the choice.",
        epilog='example: risc-tf tune --dataset retinamnist --grid \'{"augment": ["none", '
               '"light"], "classifier_init": ["scratch", "rotnet"]}\' --seeds 0,1 '
               "--output runs/tune-retina")
    p.add_argument("--grid", required=True, type=grid_argument, metavar="JSON",
                   help="settings to vary, inline or in a .json file: an object of lists "
                        "(every combination) or a list of points")
    p.add_argument("--objective", choices=("classifier", "risc"), default="classifier",
                   help="what to score on validation (default classifier)")
    add_experiment_options(p, test_set=False)
    add_output_options(p, "output folder")
    p.set_defaults(func=run_tune, sweep_split="val")
