"""Can a test set of this size show an ECE of 0.03? The ECE floor of published runs.

A run's ``results.json`` (``trust.test``) keeps, per model, the reliability data of its
calibrated probabilities on the rotated test set: per confidence bin the image count, the
mean confidence and the accuracy, not each image's probabilities. This probe rebuilds, per
bin, images at the bin's mean confidence with the bin's number of right answers (so the
ECE it computes is the stored one), and runs :func:`risc_tf.calibration.ece_consistency`
on them: the ECE a perfectly calibrated model would show on the same number of images in
the same bins, and where the measured ECE falls. Placing each image at its bin's mean
confidence changes the floor very little: a bin spans 1/15 of the confidence range and the
floor depends on the confidences through ``c (1 - c)``.

Runs made since the calibration block carries ``ece_after_consistency`` have the exact
numbers from their per-image probabilities; this probe is for the runs published before.

Run from the repository root::

    python -m probes.ece_floor docs/results/single-runs/*/results.json \\
        --output docs/results/probes/ece_floor.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from probes._output import emit  # noqa: E402


def rebuilt(block: dict) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels with ``block``'s per-bin counts, mean confidences and
    accuracies: each image's top class 0 at its bin's mean confidence, the rest spread evenly
    over enough other classes to stay below it; right answers are labelled 0."""
    confidence, labels = [], []
    for count, conf, acc in zip(block["count"], block["confidence"], block["accuracy"]):
        if not count:
            continue
        right = int(round(acc * count))
        confidence += [conf] * count
        labels += [0] * right + [1] * (count - right)
    c = np.asarray(confidence)
    classes = max(2, int(np.ceil(1.0 / c.min())) + 1)
    proba = np.repeat(((1.0 - c) / (classes - 1))[:, None], classes, axis=1)
    proba[:, 0] = c
    return proba, np.asarray(labels)


def floor(results_file: Path, *, draws: int = 2000) -> dict:
    from risc_tf.calibration import ece_consistency

    results = json.loads(Path(results_file).read_text())
    test = (results.get("trust") or {}).get("test")
    if not test:
        raise SystemExit(f"{results_file}: no trust report (trust.test) in it")
    out = {"results": str(results_file), "dataset": results["config"]["dataset"],
           "seed": results["config"]["seed"], "bins": test["bins"]}
    for model in ("rotnet", "classifier"):
        block = test[model]
        proba, labels = rebuilt(block["reliability_after"])
        c = ece_consistency(proba, labels, bins=test["bins"], draws=draws)
        if not np.isclose(c["ece"], block["ece_after"], atol=1e-9):
            raise SystemExit(f"{results_file}: rebuilt ECE {c['ece']} is not the stored "
                             f"{block['ece_after']}")
        out[model] = {"n": block["n"], "ece_before": block["ece_before"], **c,
                      "exact": "ece_after_consistency" in block}
        if out[model]["exact"]:
            out[model]["stored"] = block["ece_after_consistency"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", help="results.json files of reproduce runs")
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--output", help="write the JSON here too")
    args = parser.parse_args(argv)
    rows = [floor(Path(f), draws=args.draws) for f in args.results]
    emit({"method": "consistency resampling at the bins' mean confidences "
                    "(probes/ece_floor.py)", "runs": rows}, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
