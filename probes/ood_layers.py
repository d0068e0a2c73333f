"""Which layers should the detector of unlike images read: the penultimate features, or every stage?

A pipeline's detector (:mod:`risc_tf.ood_layers`) scores the classifier's features of
the image the pipeline corrected. Up to risc_tf 0.2.0, ``fit_trust`` fitted it on the
penultimate features alone; its AUROC against RetinaMNIST was 0.856-0.983 over five
PneumoniaMNIST seeds. This probe refits, for a finished ``risc-tf reproduce`` seed
folder and nothing trained, the detector both ways, as ``fit_trust`` does (class means
and covariances on the upright training images; scales and threshold at the 95th
percentile of the upright validation images):

- ``penultimate``: the penultimate features alone (the detector the run saved);
- ``stages``: the backbone's stage outputs (:func:`risc_tf.features.stage_layers`) and
  the penultimate features, combined by the largest ratio (today's default).

Each is scored on the images the run's own evaluation uses: the validation and test
splits turned by the run's test protocol and seed (``evaluation_sets``), corrected by the
pipeline, against the same split of every other MedMNIST set in the data folder (turned
and corrected the same way), and against those images made grey (the mean of their
channels: an unlike image that colour alone does not give away). It also reports the
share of in-distribution images flagged, turned and upright, and, over the runs given,
whether ``stages`` separates the other images better than ``penultimate``: an image-level
test on each other image's placement value (the share of in-distribution images scored
below it, whose mean is the AUROC) and a t-test over the runs' AUROCs, "better" only when
both agree. The choice is made on the validation rows; the test rows are reported beside
them.

Run from the repository root::

    python -m probes.ood_layers runs/final/pneumoniamnist-tuned-angle5/seed-1 \\
        runs/final/pneumoniamnist-tuned-angle5/seed-2 --output docs/results/probes/ood_layers.json

``--data-root`` defaults to ``$RISC_TF_DATA``, else ``../shared/data/medmnist``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks._common import machine  # noqa: E402
from probes._output import emit  # noqa: E402
from probes._saved import load_saved_run, other_sets, parse_runs  # noqa: E402

SETTINGS = ("penultimate", "stages")


def grey(images: np.ndarray) -> np.ndarray:
    """RGB images ``(N, H, W, 3)`` as grey ``(N, H, W)`` uint8 (the mean of the channels);
    grey images as they are."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 3:
        return np.round(images.astype(np.float32).mean(axis=-1)).astype(np.uint8)
    return images


def placements(inside: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Each other image's share of in-distribution images scored below it (ties count half):
    DeLong's placement values, whose mean is the AUROC; one number in [0, 1] per image, so
    two detectors can be compared image by image."""
    inside = np.sort(np.asarray(inside, np.float64))
    other = np.asarray(other, np.float64)
    below = np.searchsorted(inside, other, side="left")
    ties = np.searchsorted(inside, other, side="right") - below
    return (below + 0.5 * ties) / len(inside)


def _rates(detector, inside: list, upright: list, others: dict) -> tuple[dict, dict]:
    from risc_tf.ood import ood_auroc

    score_in = np.asarray(detector.score(inside))
    row = {"in_distribution_flagged": float(np.mean(score_in > detector.threshold)),
           "upright_flagged": float(np.mean(np.asarray(detector.score(upright))
                                            > detector.threshold)),
           "other": {}}
    placed = {}
    for name, features in others.items():
        score = np.asarray(detector.score(features))
        row["other"][name] = {"n": int(len(score)), "auroc": ood_auroc(score_in, score),
                              "flagged": float(np.mean(score > detector.threshold))}
        placed[name] = placements(score_in, score)
    return row, placed


def verdicts(placed: list[dict]) -> dict:
    """``stages`` against ``penultimate`` over the runs, per split and other set: the
    image-level test on the placement values (sign flips of each image's difference,
    averaged over runs) and the t-test on the runs' AUROCs; "better" only when both agree
    (:func:`risc_tf.verdicts.combined_verdict`)."""
    from risc_tf.statistics import paired_score_test, paired_seed_test
    from risc_tf.verdicts import combined_verdict

    out = {}
    for split in ("val", "test"):
        for name in placed[0]["stages"][split]:
            a = [run["stages"][split][name] for run in placed]
            b = [run["penultimate"][split][name] for run in placed]
            if len({len(x) for x in a + b}) != 1:
                continue  # not the same images in every run
            images = paired_score_test(a, b)
            seeds = paired_seed_test([x.mean() for x in a], [x.mean() for x in b])
            out.setdefault(split, {})[name] = {
                "images": images, "seeds": seeds,
                "verdict": combined_verdict(images["p_value"], images["mean_difference"],
                                            seeds["p_value"], seeds["mean_difference"])}
    return out


def probe(run: Path, data_root: str, *, percentile: float = 95.0) -> dict:
    import risc_tf
    from risc_tf.evaluation import evaluation_sets
    from risc_tf.features import layer_features
    from risc_tf.ood_layers import fit_ood_detector, ood_layers

    results, pipe, x_train, y_train = load_saved_run(run, "train", data_root)
    cfg = results.config
    names = ood_layers(pipe.classifier, "stages")

    def turned(images, labels, kind="rotated"):
        sets = evaluation_sets(images, labels, cfg["test_angles"], image_size=pipe.image_size,
                               seed=cfg["seed"], protocol=cfg["protocol"], fill=pipe.fill)
        return sets[kind][0]

    def features(model_input):
        return layer_features(pipe.classifier, model_input, names, batch_size=pipe.batch_size)

    splits = {s: risc_tf.load_medmnist(cfg["dataset"], s, root=data_root, size=cfg["size"])
              for s in ("val", "test")}
    others = other_sets(cfg["dataset"], data_root, cfg["size"])
    x_up_train = turned(x_train, y_train, "upright")
    x_up_val = turned(*splits["val"], "upright")
    detectors = {setting: fit_ood_detector(pipe.classifier, x_up_train, y_train, x_up_val,
                                           layers=setting, percentile=percentile,
                                           batch_size=pipe.batch_size)
                 for setting in SETTINGS}
    table = {setting: {} for setting in SETTINGS}
    placed = {setting: {} for setting in SETTINGS}
    for split, (x, y) in splits.items():
        scored = {"inside": features(pipe.correct(turned(x, y))),
                  "upright": features(pipe.correct(turned(x, y, "upright")))}
        for flag, images in others.items():
            blank = np.zeros(len(images[split]), int)
            scored[flag] = features(pipe.correct(turned(images[split], blank)))
            if np.asarray(images[split]).ndim == 4:  # a colour set: its grey copy too
                scored[f"{flag}_grey"] = features(pipe.correct(turned(grey(images[split]),
                                                                      blank)))
        for setting, detector in detectors.items():
            pick = [names.index(n) for n in detector.layers]

            def of(feats, pick=pick):
                return [feats[i] for i in pick]

            table[setting][split], placed[setting][split] = _rates(
                detector, of(scored["inside"]), of(scored["upright"]),
                {k: of(v) for k, v in scored.items() if k not in ("inside", "upright")})
    return placed, {
        "run": str(run), "dataset": cfg["dataset"], "rotnet_head": cfg.get("rotnet_head"),
        "seed": cfg["seed"], "test_angles": cfg["test_angles"], "percentile": percentile,
        "layers": {s: list(d.layers) for s, d in detectors.items()},
        "thresholds": {s: float(d.threshold) for s, d in detectors.items()},
        "saved_threshold": None if pipe.ood is None else float(pipe.ood.threshold),
        "n": {"train": int(len(y_train)), **{s: int(len(v[1])) for s, v in splits.items()}},
        "fits": table,
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_runs(__doc__.split("\n\n")[0], argv)
    placed, rows = zip(*(probe(run, args.data_root) for run in args.runs))
    emit({"runs": list(rows), "stages_vs_penultimate": verdicts(list(placed))}, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
