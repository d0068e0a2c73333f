"""Where should the detector of unlike images be fitted: upright images, or corrected ones?

A pipeline's detector (:mod:`risc_tf.ood`) scores the classifier's features of the image
the pipeline *corrected*. ``fit_trust`` fits its class means and covariance on upright
training images and its threshold on upright validation images. For a four-angle
pipeline a correction is an exact quarter turn, so corrected images look like upright
ones. For a continuous-angle pipeline each correction is a bilinear resample (and a
test image turned by an arbitrary angle has been resampled once before): the detector
then scores blurred images it was never fitted on, and in-distribution images drift
towards "unlike".

This probe measures, for a finished ``risc-tf reproduce`` seed folder and nothing
trained, two ways of fitting the same Mahalanobis detector:

- ``upright``: as ``fit_trust`` does today (training images upright; threshold on upright
  validation images);
- ``corrected``: the training images each turned by a seeded random angle of the
  RotNet's set and corrected by the pipeline; threshold on the validation images
  turned and corrected the same way (the images the detector will score).

Two more signals are measured beside them, read from the RotNet, which sees the image
as it came (a RotNet trained on chest X-rays at every angle may find a retina photograph
stranger than the upright classifier does):

- ``rotnet``: the same detector on the RotNet's penultimate features of the turned
  images, one class (its mean and covariance over the turned training images);
- ``either``: flag when either ``corrected`` or ``rotnet`` flags; its score is the
  larger of the two scores, each divided by its own threshold (each threshold at the
  same validation percentile, so "either" flags somewhat more than that share).

All are scored on the same in-distribution images (validation and test, turned by a
seeded random angle of the RotNet's set) against the other MedMNIST sets in the data
folder (their validation and test splits, turned the same way). The choice between them
is made on the validation rows; the test rows are reported beside them.

Run from the repository root::

    python -m probes.ood_fit_domain runs/final/pneumoniamnist-tuned-angle5/seed-1 \\
        --output docs/results/probes/ood_fit_domain.json

``--data-root`` defaults to ``$RISC_TF_DATA``, else ``../shared/data/medmnist``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks._common import machine  # noqa: E402
from devdata import DATA_ROOT  # noqa: E402
from probes._output import emit  # noqa: E402
from probes._saved import check_saved_run, load_saved_run, other_sets  # noqa: E402


def _corrected_features(pipe, images) -> np.ndarray:
    from risc_tf.features import model_features

    return model_features(pipe.classifier, pipe.correct(images), batch_size=pipe.batch_size)


def _turned(pipe, images, labels, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images turned by a seeded random angle of the RotNet's set, as model input."""
    from risc_tf.evaluation import evaluation_sets

    sets = evaluation_sets(images, labels, pipe.angles, image_size=pipe.image_size, seed=seed,
                           fill=pipe.fill)
    return sets["upright"][0], sets["rotated"][0]


class _Either:
    """Two detectors on two feature sets: the larger of their score / threshold ratios."""

    threshold = 1.0

    def __init__(self, first, second):
        self.first, self.second = first, second

    def score(self, features: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        return np.maximum(np.asarray(self.first.score(features[0])) / self.first.threshold,
                          np.asarray(self.second.score(features[1])) / self.second.threshold)


def _rates(detector, inside, others: dict) -> dict:
    from risc_tf.ood import ood_auroc

    score_in = np.asarray(detector.score(inside))
    row = {"threshold": float(detector.threshold),
           "in_distribution_flagged": float(np.mean(score_in > detector.threshold)),
           "other": {}}
    for name, features in others.items():
        score = np.asarray(detector.score(features))
        row["other"][name] = {"n": int(len(score)), "auroc": ood_auroc(score_in, score),
                              "flagged": float(np.mean(score > detector.threshold))}
    return row


def probe(run: Path, data_root: str, *, seed: int = 0, percentile: float = 95.0) -> dict:
    import risc_tf
    from risc_tf.features import model_features
    from risc_tf.ood import fit_mahalanobis

    results, pipe, x_train, y_train = load_saved_run(run, "train", data_root)
    cfg = results.config
    splits = {s: risc_tf.load_medmnist(cfg["dataset"], s, root=data_root, size=cfg["size"])
              for s in ("val", "test")}
    others = other_sets(cfg["dataset"], data_root, cfg["size"])

    def rotnet_features(images):
        return model_features(pipe.rotnet, images, batch_size=pipe.batch_size)

    up_train, rot_train = _turned(pipe, x_train, y_train, seed + 1)
    y_train = np.asarray(y_train).reshape(-1)
    f_up_train = model_features(pipe.classifier, up_train, batch_size=pipe.batch_size)
    f_cor_train = _corrected_features(pipe, rot_train)
    f_rot_train = rotnet_features(rot_train)
    scored = {}
    for split, (x, y) in splits.items():
        split_seed = seed + (2 if split == "val" else 3)
        up, rot = _turned(pipe, x, y, split_seed)
        turned = {name: _turned(pipe, o[split], np.zeros(len(o[split]), int), split_seed)[1]
                  for name, o in others.items()}
        scored[split] = {
            "upright": model_features(pipe.classifier, up, batch_size=pipe.batch_size),
            "corrected": _corrected_features(pipe, rot), "rotnet": rotnet_features(rot),
            "other_corrected": {n: _corrected_features(pipe, t) for n, t in turned.items()},
            "other_rotnet": {n: rotnet_features(t) for n, t in turned.items()},
        }
    val = scored["val"]
    corrected = fit_mahalanobis(f_cor_train, y_train).with_threshold(
        val["corrected"], percentile=percentile)
    rotnet = fit_mahalanobis(f_rot_train, np.zeros(len(f_rot_train), int)).with_threshold(
        val["rotnet"], percentile=percentile)
    detectors = {
        "upright": (fit_mahalanobis(f_up_train, y_train).with_threshold(
            val["upright"], percentile=percentile), "corrected"),
        "corrected": (corrected, "corrected"),
        "rotnet": (rotnet, "rotnet"),
        "either": (_Either(corrected, rotnet), "both"),
    }

    def features(split: str, kind: str):
        s = scored[split]
        if kind == "both":
            return (s["corrected"], s["rotnet"]), {
                n: (s["other_corrected"][n], s["other_rotnet"][n]) for n in others}
        return s[kind], s[f"other_{kind}"]

    table = {name: {split: _rates(det, *features(split, kind)) for split in ("val", "test")}
             for name, (det, kind) in detectors.items()}
    saved = pipe.ood
    return {
        "run": str(run), "dataset": cfg["dataset"], "rotnet_head": cfg.get("rotnet_head"),
        "angles": len(pipe.angles), "fill": pipe.fill, "seed": seed, "percentile": percentile,
        "saved_threshold": None if saved is None else float(saved.threshold),
        "n": {"train": int(len(y_train)), **{s: int(len(v[1])) for s, v in splits.items()}},
        "fits": table,
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a finished risc-tf reproduce seed folder")
    parser.add_argument("--data-root", default=os.environ.get("RISC_TF_DATA", str(DATA_ROOT)))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="write the JSON here too")
    args = parser.parse_args(argv)
    result = probe(check_saved_run(args.run), args.data_root, seed=args.seed)
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
