"""The paper's stages 1-5 on one MedMNIST dataset, with baselines, as one library call.

:func:`reproduce` trains the RotNet (stage 1), the upright classifier (stage 2)
and the rotation-augmented baseline classifier, then evaluates every method of
:mod:`risc_tf.evaluation` on the upright test set (stage 3), on a seeded randomly
rotated test set (stage 4; RISC hard and soft are stage 5) and on a sweep of
angles; it times inference and writes ``results.json``, ``results.md``, PNG
plots and the saved pipeline into the output folder (see :mod:`risc_tf.reporting`).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from risc_tf.data import dataset_info, load_medmnist
from risc_tf.evaluation import (
    METHOD_LABELS,
    angle_sweep,
    build_methods,
    evaluate_models,
    evaluation_sets,
    time_inference,
)
from risc_tf.models import build_classifier, build_rotnet, save_for_inference
from risc_tf.pipeline import RISCPipeline
from risc_tf.reporting import (
    finish_run,
    machine_info,
    now_iso,
    prepare_output_dir,
    write_results,
)
from risc_tf.rotation import angles_every, check_angles
from risc_tf.training import train_classifier, train_rotnet

__all__ = ["PAPER_RESULTS", "ReproduceConfig", "load_splits", "paper_angles", "reproduce"]

#: Rotation step (degrees) of the paper's angle set per dataset (default 90).
PAPER_ANGLE_STEP: dict[str, float] = {"pneumoniamnist": 90.0, "organamnist": 90.0,
                                      "retinamnist": 45.0}

#: Numbers reported in the RISC paper (MethodsX 2024), for comparison only.
PAPER_RESULTS: dict[str, dict[str, float]] = {
    "organamnist": {"rotnet_acc": 0.66, "upright_acc": 0.93, "risc_rotated_acc": 0.75},
    "pneumoniamnist": {"rotnet_acc": 0.99, "upright_acc": 0.88, "risc_rotated_acc": 0.87},
    "retinamnist": {"rotnet_acc": 0.73, "upright_acc": 0.51, "risc_rotated_acc": 0.50},
}


def paper_angles(dataset: str) -> tuple[float, ...]:
    """The paper's angle set: multiples of 45 deg for RetinaMNIST, of 90 deg otherwise."""
    return angles_every(PAPER_ANGLE_STEP.get(dataset, 90.0))


@dataclasses.dataclass
class ReproduceConfig:
    """Settings of one :func:`reproduce` run (all JSON-serialisable).

    Parameters
    ----------
    dataset : str
        A 2D multi-class or binary MedMNIST flag, e.g. ``"pneumoniamnist"``.
    output : path
        Folder for every file of the run; must be new, empty, or (with
        ``overwrite``) hold an earlier run of this command.
    data_root : path, optional
        Folder holding ``{dataset}.npz``; see :func:`risc_tf.load_medmnist`.
    size : int, default 28
        MedMNIST image size of the file to read (28, 64, 128 or 224).
    input_size : int, default 32
        Model input side (32 in the paper).
    backbone, weights : as :func:`risc_tf.build_rotnet` (default ResNet50 from scratch).
    angles : sequence of float, optional
        RotNet and rotated-test angle set; :func:`paper_angles` when omitted.
    epochs, batch_size, learning_rate, patience, recalibration_batches
        Training budget of every model (see :func:`risc_tf.train_rotnet`).
    seed : int, default 0
        Seeds training, the subset draw and the rotated test set.
    subset : int, optional
        Use at most this many images of each split (a seeded random draw).
    sweep_step : float, default 10
        Step of the accuracy-versus-angle sweep over [0, 360).
    timing_samples : int, default 50
        Images timed one at a time for Table 2.
    download, verify : as :func:`risc_tf.load_medmnist` (``verify=False`` for files
        that are not the official ones, e.g. test-made files).
    overwrite : bool, default False
        Replace an earlier run in ``output``.
    verbose : int, default 1
        Progress bars and stage messages (0: silent).
    """

    dataset: str
    output: str | os.PathLike
    data_root: str | os.PathLike | None = None
    size: int = 28
    input_size: int = 32
    backbone: str = "resnet50"
    weights: str | None = None
    angles: Sequence[float] | None = None
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int | None = 5
    recalibration_batches: int = 50
    seed: int = 0
    subset: int | None = None
    sweep_step: float = 10.0
    timing_samples: int = 50
    download: bool = False
    verify: bool = True
    overwrite: bool = False
    verbose: int = 1

    def validate(self) -> ReproduceConfig:
        """Check every field; return a copy with ``angles`` resolved to a tuple."""
        info = dataset_info(self.dataset)
        if info["task"] not in ("binary-class", "multi-class", "ordinal-regression"):
            raise ValueError(
                f"{self.dataset} is a {info['task']} task; reproduce supports single-label "
                "(binary, multi-class, ordinal) datasets"
            )
        ints = {"epochs": 1, "batch_size": 1, "input_size": 8, "recalibration_batches": 1,
                "timing_samples": 1, "seed": 0}
        for name, low in ints.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an int >= {low}; got {value!r}")
        for name in ("subset", "patience"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ValueError(f"{name} must be a positive int or None; got {value!r}")
        if self.subset is not None and self.subset < 2:
            raise ValueError(f"subset must be at least 2 images; got {self.subset}")
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be positive; got {self.learning_rate!r}")
        angles = paper_angles(self.dataset) if self.angles is None else check_angles(self.angles)
        angles_every(self.sweep_step)  # validates the sweep step
        return dataclasses.replace(self, angles=angles)


def _say(config: ReproduceConfig, message: str) -> None:
    if config.verbose:
        print(f"[risc-tf reproduce] {message}", flush=True)


def load_splits(
    dataset: str,
    root: str | os.PathLike | None = None,
    size: int = 28,
    subset: int | None = None,
    seed: int = 0,
    splits: Sequence[str] = ("train", "val", "test"),
    download: bool = False,
    verify: bool = True,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Load splits of a single-label MedMNIST dataset, optionally a seeded random subset.

    Returns
    -------
    dict
        split -> ``(images uint8, labels int64 (N,))``; with ``subset``, at most
        that many images of each split, drawn without replacement, in file order.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for split in splits:
        x, y = load_medmnist(dataset, split, root, size, download=download, verify=verify)
        if y.ndim != 1:
            raise ValueError(f"{dataset} {split} labels must be (N,); got shape {y.shape}")
        if subset is not None and len(x) > subset:
            keep = np.sort(rng.choice(len(x), subset, replace=False))
            x, y = x[keep], y[keep]
        out[split] = (x, y)
    return out


def _history(history: keras.callbacks.History, seconds: float, model: keras.Model) -> dict:
    logs = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    val = logs.get("val_accuracy")
    return {
        "history": logs,
        "epochs_run": len(logs.get("loss", [])),
        "best_epoch": int(np.argmax(val)) + 1 if val else None,
        "best_val_accuracy": float(np.max(val)) if val else None,
        "train_time_s": seconds,
        "parameters": int(model.count_params()),
    }


def _train(config: ReproduceConfig, splits, num_classes: int):
    shape = (config.input_size, config.input_size, 3)
    common = dict(epochs=config.epochs, batch_size=config.batch_size,
                  learning_rate=config.learning_rate, patience=config.patience,
                  seed=config.seed, recalibration_batches=config.recalibration_batches,
                  verbose=1 if config.verbose else 0)
    (x, y), (xv, yv) = splits["train"], splits["val"]
    models, training = {}, {}

    _say(config, f"stage 1: RotNet ({config.backbone}) on {len(x)} unlabelled images, "
                 f"angles {list(config.angles)}")
    rotnet = build_rotnet(shape, config.angles, config.backbone, config.weights)
    start = time.perf_counter()
    hist = train_rotnet(rotnet, x, xv, **common)
    training["rotnet"] = _history(hist, time.perf_counter() - start, rotnet)
    models["rotnet"] = rotnet

    for name, augment in (("classifier", None), ("rotation_augmented", config.angles)):
        what = "upright images" if augment is None else "rotation-augmented images (baseline)"
        _say(config, f"stage 2: classifier on {what}")
        clf = build_classifier(num_classes, shape, config.backbone, config.weights)
        start = time.perf_counter()
        hist = train_classifier(clf, x, y, xv, yv, augment_angles=augment, **common)
        training[name] = _history(hist, time.perf_counter() - start, clf)
        models[name] = clf
    return models, training


def _jsonable(config: dict) -> dict:
    def convert(v):
        if isinstance(v, tuple):
            return list(v)
        return str(v) if isinstance(v, os.PathLike) else v

    return {k: convert(v) for k, v in config.items()}


def _timing(methods, rotnet_fn, images, samples: int) -> dict:
    table = {"rotnet": time_inference(rotnet_fn, images, samples)}
    for name, fn in methods.items():
        table[name] = time_inference(fn, images, samples)
    return table


def reproduce(config: ReproduceConfig) -> dict:
    """Run stages 1-5 with baselines and write the report; return the results.

    Parameters
    ----------
    config : ReproduceConfig

    Returns
    -------
    dict
        The content of ``results.json`` (its layout is described in ``docs/cli.md``).

    Raises
    ------
    ValueError
        Bad settings (the message names the field).
    FileNotFoundError
        The dataset file is missing (the message gives the folder and the URL).
    FileExistsError
        ``output`` holds another run or other files and ``overwrite`` is off.
    """
    config = config.validate()
    info = dataset_info(config.dataset)
    output = Path(config.output)
    started = time.time()
    # Data first: a missing file leaves the output folder untouched.
    splits = load_splits(config.dataset, config.data_root, config.size, config.subset,
                         config.seed, download=config.download, verify=config.verify)
    run = prepare_output_dir(output, config, overwrite=config.overwrite)
    num_classes = len(info["label"])

    models, training = _train(config, splits, num_classes)
    rotnet, classifier = models["rotnet"], models["classifier"]
    methods = build_methods(rotnet, classifier, config.angles, models["rotation_augmented"])

    xt, yt = splits["test"]
    _say(config, f"stages 3-5: upright and randomly rotated test sets (seed {config.seed})")
    sets = evaluation_sets(xt, yt, config.angles, config.seed, config.input_size)
    evaluation = evaluate_models(methods, rotnet, sets, config.angles)
    upright, rotated = sets["upright"][0], sets["rotated"][0]
    pipe = RISCPipeline(rotnet, classifier, config.angles, mode="hard")

    _say(config, f"accuracy-versus-angle sweep, every {config.sweep_step:g} deg")
    sweep = angle_sweep(methods, upright, yt, angles_every(config.sweep_step),
                        verbose=config.verbose)

    _say(config, "timing inference")
    timing = _timing(methods, pipe.predict_rotation, rotated,
                     config.timing_samples)

    _say(config, "saving the pipeline and the baseline model")
    models_dir = output / "models"
    pipe.save(models_dir / "risc_pipeline", overwrite=True)
    save_for_inference(models["rotation_augmented"], models_dir / "rotation_augmented.keras")

    results = {
        "run": run,
        "config": _jsonable(dataclasses.asdict(config)),
        "machine": machine_info(),
        "dataset": {
            "name": config.dataset,
            "task": info["task"],
            "num_classes": num_classes,
            "labels": info["label"],
            "split_sizes": {s: int(len(splits[s][0])) for s in splits},
            "full_split_sizes": {s: int(n) for s, n in info["n_samples"].items()},
        },
        "angles": {"rotnet": list(config.angles), "rotated_test": list(config.angles),
                   "sweep": sweep["angles"]},
        "methods": {m: METHOD_LABELS[m] for m in methods},
        "training": training,
        "rotnet": evaluation.pop("rotnet"),
        "evaluation": evaluation,
        "sweep": sweep,
        "timing": timing,
        "paper": PAPER_RESULTS.get(config.dataset),
    }
    results["run"].update(status="complete", finished=now_iso(),
                          wall_time_s=time.time() - started)
    write_results(results, output)
    finish_run(output, results)
    _say(config, f"done in {results['run']['wall_time_s']:.0f} s; report: {output / 'results.md'}")
    return results
