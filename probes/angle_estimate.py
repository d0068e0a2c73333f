"""How far off is a trained RotNet's angle over the sweep: its bin, or the refined estimate?

A hard RotNet names a bin, so over the 0-350 deg sweep its angle is off by up to half a
bin even when the bin is right (the floor: 22.2 / 11.1 / 6.7 deg for 4 / 8 / 12 bins over
a 10-deg sweep). :func:`risc_tf.heads.refine_angle` reads a finer angle from the same
probabilities. For each finished ``risc-tf reproduce`` seed folder given, this loads the
saved pipeline's RotNet (``models/risc_pipeline``), the run's sweep split and fill, and
measures the RotNet's mean absolute angular error over the run's sweep both ways, through
:func:`risc_tf.sweep.angle_sweep` (the run's own code; nothing is trained). The
argmax figure must equal the one in the run's ``results.json``; the script says if not.

Run from the repository root (about 30 s per seed here)::

    python -m probes.angle_estimate runs/final/NAME/seed-0 \\
        runs/final/NAME/seed-1 runs/final/NAME/seed-2 --output angle_estimate.json

``--data-root`` defaults to the one each run recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks._common import machine  # noqa: E402
from probes._saved import check_saved_run, load_saved_run  # noqa: E402
from risc_tf.angles import angles_every  # noqa: E402
from risc_tf.evaluation import evaluation_sets  # noqa: E402
from risc_tf.statistics import mean_std  # noqa: E402
from risc_tf.sweep import angle_sweep  # noqa: E402


def measure(run: Path, data_root: str | None) -> dict:
    """Argmax and refined sweep error of one seed folder's RotNet."""
    split = json.loads((run / "results.json").read_text())["sweep"]["split"]
    results, pipe, x, y = load_saved_run(run, split, data_root)
    cfg = results.config
    upright = evaluation_sets(x, y, cfg["test_angles"], image_size=cfg["input_size"],
                              fill=cfg["fill"])["upright"][0]
    sweep = angle_sweep({}, upright, y, angles_every(cfg["sweep_step"]), fill=cfg["fill"],
                        rotnet=pipe.rotnet, verbose=0)
    recorded = results.sweep.rotnet_mae_deg_mean
    return {"run": str(run), "dataset": cfg["dataset"], "bins": len(pipe.angles),
            "fill": cfg["fill"], "split": split, "seed": cfg["seed"],
            "argmax_mae_deg": sweep["rotnet_mae_deg_mean"],
            "refined_mae_deg": sweep["rotnet_refined_mae_deg_mean"],
            "recorded_argmax_mae_deg": recorded,
            "matches_run": bool(np.isclose(sweep["rotnet_mae_deg_mean"], recorded, atol=1e-6))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished seed folders")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--output", type=Path, default=None, help="write the numbers as JSON")
    args = parser.parse_args(argv)
    for run in args.runs:  # every folder checked before any is loaded
        check_saved_run(run)
    print(machine())
    rows = []
    for run in args.runs:
        row = measure(run, args.data_root)
        rows.append(row)
        print(f"{run}: {row['bins']} bins, {row['fill']} fill, {row['split']} sweep: argmax "
              f"{row['argmax_mae_deg']:.2f} deg, refined {row['refined_mae_deg']:.2f} deg"
              + ("" if row["matches_run"] else
                 f"  (the run recorded {row['recorded_argmax_mae_deg']:.2f}: not the same!)"))
    groups: dict[str, list[dict]] = {}  # one per dataset, angle set and fill
    for row in rows:
        groups.setdefault(f"{row['dataset']}, {row['bins']} bins, {row['fill']} fill",
                          []).append(row)
    summary = {group: {k: mean_std([r[k] for r in mine])
                       for k in ("argmax_mae_deg", "refined_mae_deg")}
               for group, mine in groups.items()}
    for group, errors in summary.items():
        print(f"{group}: argmax {errors['argmax_mae_deg']['mean']:.2f} +- "
              f"{errors['argmax_mae_deg']['std']:.2f} deg, refined "
              f"{errors['refined_mae_deg']['mean']:.2f} +- {errors['refined_mae_deg']['std']:.2f}"
              f" deg over {errors['argmax_mae_deg']['n']} runs")
    if args.output:
        args.output.write_text(json.dumps({"command": " ".join(sys.argv), "machine": machine(),
                                           "runs": rows, "summary": summary}, indent=1) + "\n")
    return 0 if all(r["matches_run"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
