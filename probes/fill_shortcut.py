"""Does the RotNet read the black corners? RotNet accuracy by fill, and two shortcut probes.

An interpolated rotation by 45 deg leaves black corners on a square image that never
occur upright: a cue to the rotation that needs no anatomy. For each fill
(``constant``: the corners stay black; ``reflect``; ``circle``: every image, upright
included, is masked to its inscribed circle) this trains a RotNet on the 8 angles of
the paper's RetinaMNIST protocol (45 deg apart, no jitter) and measures on the
**validation** split, each image in all 8 rotations:

- ``val ACC``: rotation accuracy with the fill the RotNet was trained with;
- ``corners hidden``: the same images, rotated with the RotNet's fill, then masked to
  the circle (the corners removed): a RotNet that reads the corners loses accuracy;
- ``blank parity``: content-free mid-grey images rotated the same way; the fraction whose
  predicted angle falls on the right side of quarter turn or not (0/90/180/270 vs the
  others). Chance is the share of the larger side (0.5 for the 45-deg set): above it,
  the RotNet tells an interpolated rotation from the corners alone.

Run from the repository root on a quiet machine (about 2 minutes per model here)::

    python -m probes.fill_shortcut --seeds 0,1

or probe, without training, the RotNets that finished ``risc-tf reproduce`` runs saved
(their angle set and fill, their dataset's validation split; seconds per model)::

    python -m probes.fill_shortcut --runs runs/final/NAME/seed-0 ...

``--data-root`` defaults to ``$RISC_TF_DATA``, else ``../shared/data/medmnist``.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import risc_tf  # noqa: E402
from benchmarks._common import machine  # noqa: E402
from devdata import DATA_ROOT  # noqa: E402
from probes._saved import check_saved_run, load_saved_run  # noqa: E402
from risc_tf.angles import FILLS, QUARTER_TURNS, angles_every, match_angles  # noqa: E402
from risc_tf.datasets import rotation_dataset  # noqa: E402
from risc_tf.rotation import field_of_view  # noqa: E402


def rotations(images, angles, fill: str) -> tuple[np.ndarray, np.ndarray]:
    """Every image in every rotation (with ``fill``): images and rotation indices."""
    parts = list(rotation_dataset(images, angles, all_rotations=True, shuffle=False,
                                  fill=fill, batch_size=128))
    return (np.concatenate([p[0].numpy() for p in parts]),
            np.concatenate([p[1].numpy() for p in parts]))


def probe(rotnet, images, angles, fill: str) -> dict:
    x, k = rotations(images, angles, fill)
    predict = lambda a: np.argmax(rotnet.predict(a, batch_size=256, verbose=0), axis=1)  # noqa: E731
    blank, kb = rotations(np.full((64, 28, 28), 128, np.uint8), angles, fill)
    quarter = match_angles(angles, QUARTER_TURNS) >= 0  # per angle index
    return {"val_acc": float(np.mean(predict(x) == k)),
            "corners_hidden_acc": float(np.mean(predict(field_of_view(x).numpy()) == k)),
            "blank_parity": float(np.mean(quarter[predict(blank)] == quarter[kb]))}


def saved_rows(runs: list[str], data_root: str | None) -> list[dict]:
    """Probe the RotNet of each finished reproduce seed folder with its own angles and fill."""
    for run in runs:  # every folder checked before any is loaded
        check_saved_run(run)
    rows = []
    for run in runs:
        results, pipe, xv, _ = load_saved_run(run, "val", data_root)
        rows.append({"fill": pipe.fill, "seed": results.config["seed"], "run": run,
                     **probe(pipe.rotnet, xv, pipe.angles, pipe.fill)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=None,
                        help=f"default {DATA_ROOT}, or with --runs the one each run recorded")
    parser.add_argument("--runs", nargs="+", default=None,
                        help="probe the saved RotNets of these reproduce seed folders instead")
    parser.add_argument("--dataset", default="retinamnist")
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--step", type=float, default=45.0, help="angle step (degrees)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", default="0,1")
    args = parser.parse_args()
    print(machine())
    if args.runs:
        rows = saved_rows(args.runs, args.data_root)
        print("\nsaved RotNets, validation split (mean over the runs of each fill):")
    else:
        rows = trained_rows(args)
        print(f"\n{args.dataset}, {len(angles_every(args.step))} angles, {args.backbone}, "
              f"{args.epochs} epochs, validation split (mean over seeds):")
    print("| fill | runs | val ACC | corners hidden | blank parity |\n|---|---|---|---|---|")
    for fill in (f for f in FILLS if any(r["fill"] == f for r in rows)):
        mine = [r for r in rows if r["fill"] == fill]
        means = [np.mean([r[k] for r in mine]) for k in
                 ("val_acc", "corners_hidden_acc", "blank_parity")]
        print(f"| {fill} | {len(mine)} | " + " | ".join(f"{m:.3f}" for m in means) + " |")


def trained_rows(args: argparse.Namespace) -> list[dict]:
    """Train one RotNet per seed and fill on the 8-angle protocol and probe it."""
    root = args.data_root or DATA_ROOT
    x, _ = risc_tf.load_medmnist(args.dataset, "train", root=root)
    xv, _ = risc_tf.load_medmnist(args.dataset, "val", root=root)
    angles = angles_every(args.step)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for fill in FILLS:
            rotnet = risc_tf.build_rotnet(angles=angles, backbone=args.backbone)
            risc_tf.train_rotnet(rotnet, x, xv, epochs=args.epochs, fill=fill, seed=seed,
                                 patience=args.epochs, verbose=0)
            rows.append({"fill": fill, "seed": seed, **probe(rotnet, xv, angles, fill)})
            print(json.dumps(rows[-1]), flush=True)
    return rows


if __name__ == "__main__":
    main()
