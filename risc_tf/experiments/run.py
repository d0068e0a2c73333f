"""The paper's stages 1-5 on one MedMNIST dataset, with baselines, as one library call.

:func:`reproduce` trains the RotNet (stage 1), the upright classifier (stage 2)
and the rotation-augmented baseline classifier, then evaluates every method of
:mod:`risc_tf.evaluation` on the upright test set (stage 3), on a seeded
randomly rotated test set (stage 4; RISC hard and soft are stage 5) and on a
sweep of angles over the whole circle; it measures selective classification
(accuracy against coverage when low-confidence images go to a person), times
inference and writes ``results.json``, ``results.md``, PNG plots and the saved
pipeline into the output folder (see :mod:`risc_tf.experiments.report`).

Everything a run trains follows one recipe (:mod:`risc_tf.experiments.config`);
the rotation-augmented baseline is trained on the same rotations RISC is built
to undo (the RotNet's angles plus the classifier's tilt), with the same recipe.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras

from risc_tf.angles import angles_every
from risc_tf.catalog import dataset_info, label_names
from risc_tf.corrections import CORRECTIONS, DEPLOYED
from risc_tf.data import load_splits
from risc_tf.decisions import default_max_tilt
from risc_tf.evaluation import (
    METHOD_LABELS,
    build_methods,
    evaluate_models,
    evaluation_sets,
    selective_evaluation,
    time_inference,
)
from risc_tf.experiments.config import ReproduceConfig
from risc_tf.experiments.report import json_text, write_results
from risc_tf.experiments.results import RunResults
from risc_tf.experiments.rundir import finish_run, machine_info, now_iso, prepare_output_dir
from risc_tf.paper import PAPER_RESULTS
from risc_tf.pipeline import RISCPipeline
from risc_tf.saving import save_model
from risc_tf.stages import build_and_train_classifier, build_and_train_rotnet
from risc_tf.sweep import angle_sweep, residual_tilt
from risc_tf.trust import fit_trust, trust_report

__all__ = ["OTHER_SETS", "reproduce"]

#: MedMNIST sets whose test images, when in the data folder, measure how well the
#: pipeline tells images unlike its training data (another dataset) from its own.
OTHER_SETS = ("pneumoniamnist", "retinamnist", "organamnist", "dermamnist", "bloodmnist")


def _say(config: ReproduceConfig, message: str) -> None:
    if config.verbose:
        print(f"[risc-tf reproduce] {message}", flush=True)


def _train(config: ReproduceConfig, splits, num_classes: int):
    (x, y), (xv, yv) = splits["train"], splits["val"]
    _say(config, f"stage 1: RotNet ({config.backbone}, {config.rotnet_head} head) on {len(x)} "
                 f"unlabelled images, angles {[f'{a:g}' for a in config.angles]}")
    rotnet, record = build_and_train_rotnet(x, xv, input_size=config.input_size,
                                            **config.rotnet_model(), **config.rotnet_options())
    models, training = {"rotnet": rotnet}, {"rotnet": record}
    tilt = None
    if config.tilt == "auto":  # a circular head: train for the residual it leaves
        tilt = residual_tilt(rotnet, xv, fill=config.fill, seed=config.seed)
        _say(config, f"classifier tilt {tilt['tilt_deg']:.1f} deg: the RotNet's 95th-percentile "
                     "angle error on the validation split")
    init = rotnet if config.classifier_init == "rotnet" else config.weights
    options = config.classifier_options(None if tilt is None else tilt["tilt_deg"])
    for name, augment_angles in (("classifier", None), ("rotation_augmented", config.angles)):
        what = ("upright images" if augment_angles is None
                else "rotation-augmented images (baseline)")
        _say(config, f"stage 2: classifier on {what} ({config.recipe} recipe, "
                     f"init {config.classifier_init})")
        models[name], training[name] = build_and_train_classifier(
            x, y, xv, yv, num_classes=num_classes, input_size=config.input_size,
            backbone=config.backbone, weights=init, augment_angles=augment_angles, **options)
    return models, training, tilt


def _other_images(config: ReproduceConfig) -> dict:
    """Test images of the other MedMNIST sets in the data folder: images unlike the training
    data, what the out-of-distribution score is measured against."""
    others = {}
    for flag in OTHER_SETS:
        if flag == config.dataset:
            continue
        try:
            others[flag] = load_splits(flag, config.data_root, config.size, splits=("test",),
                                       verify=config.verify,
                                       timeout=config.download_timeout)["test"][0]
        except (FileNotFoundError, ValueError):  # not in the folder: not measured
            continue
    return others


def _timing(methods, rotnet_fn, images, samples: int) -> dict:
    table = {"rotnet": time_inference(rotnet_fn, images, single=samples)}
    for name, fn in methods.items():
        table[name] = time_inference(fn, images, single=samples)
    return table


def _metadata(config: ReproduceConfig, evaluation: dict, sweep: dict) -> dict:
    """What travels with the saved pipeline (its model card is written from this)."""
    rotated = evaluation["rotated"]
    risc = [CORRECTIONS[m] for m in rotated if m in CORRECTIONS and CORRECTIONS[m].uses_rotnet]
    deployed = DEPLOYED[config.rotnet_head]
    return {
        "dataset": config.dataset,
        "recipe": config.recipe,
        "seed": config.seed,
        "training": {k: v for k, v in config.to_json().items() if k in (
            "backbone", "weights", "recipe", "epochs", "rotnet_epochs", "optimizer",
            "learning_rate", "lr_schedule", "class_weight", "label_smoothing", "augment",
            "classifier_init", "batch_size", "fill", "jitter", "tilt", "seed", "deterministic",
            "rotnet_head", "rotnet_sigma")},
        "test_metrics": {
            "upright_acc (classifier)": evaluation["upright"]["classifier"]["acc"],
            **{f"rotated_acc ({c.label}, protocol {config.protocol})": rotated[c.name]["acc"]
               for c in risc},
            "rotnet_rotated_acc": evaluation["rotnet"]["acc"],
            f"sweep mean acc ({CORRECTIONS[deployed].label}, {config.sweep_split})":
                sweep["summary"][deployed]["mean"],
        },
        "accuracy_by_angle": {m: {"angles": sweep["angles"], "acc": sweep["acc"][m]}
                              for m in (deployed, "classifier")},
    }


def _max_tilt(config: ReproduceConfig, tilt: dict | None) -> float | None:
    """The pipeline's tilt tolerance: a circular head's measured validation error (95th
    percentile) when it is below the default, else the default (None)."""
    if tilt is None or config.rotnet_head != "circular":
        return None
    default = default_max_tilt(config.angles, config.rotnet_head)
    return min(default, float(tilt["p95_deg"])) if tilt["p95_deg"] > 0 else None


def reproduce(config: ReproduceConfig) -> RunResults:
    """Run stages 1-5 with baselines and write the report; return the results.

    Parameters
    ----------
    config : ReproduceConfig

    Returns
    -------
    RunResults
        What ``results.json`` holds (:mod:`risc_tf.experiments.results`; the layout
        is described in ``docs/cli.md``).

    Raises
    ------
    ValueError
        Bad settings (the message names the field).
    FileNotFoundError
        The dataset file is missing (the message gives the folder and the URL).
    FileExistsError
        ``output`` holds another run or other files and ``overwrite`` is off.

    Examples
    --------
    >>> results = reproduce(ReproduceConfig("pneumoniamnist", "runs/p", recipe="tuned"))
    ... # doctest: +SKIP
    """
    config = config.validate()
    info = dataset_info(config.dataset)
    output = Path(config.output)
    started = time.time()
    # Data first: a missing file leaves the output folder untouched.
    splits = load_splits(config.dataset, config.data_root, config.size, config.subset,
                         config.seed, download=config.download, verify=config.verify,
                         timeout=config.download_timeout)
    run = prepare_output_dir(output, config, overwrite=config.overwrite)
    names = label_names(config.dataset)
    keras.utils.set_random_seed(config.seed)

    models, training, tilt = _train(config, splits, len(names))
    rotnet, classifier = models["rotnet"], models["classifier"]
    # evaluation: TTA and both RISC modes from one pass per counter-rotation
    methods = build_methods(rotnet, classifier, models["rotation_augmented"], fill=config.fill,
                            shared=True)

    xt, yt = splits["test"]
    _say(config, f"stages 3-5: upright and randomly rotated test sets (protocol "
                 f"{config.protocol}, seed {config.seed})")
    sets = evaluation_sets(xt, yt, config.test_angles, image_size=config.input_size,
                           seed=config.seed, protocol=config.protocol, fill=config.fill)
    evaluation = evaluate_models(methods, rotnet, sets, protocol=config.protocol)
    val_sets = evaluation_sets(*splits["val"], config.test_angles, image_size=config.input_size,
                               seed=config.seed, protocol=config.protocol, fill=config.fill)
    _say(config, "calibration, review thresholds and the detector of unlike images, fitted "
                 "on the validation split")
    pipe, trust_fit = fit_trust(
        RISCPipeline(rotnet, classifier, mode=CORRECTIONS[DEPLOYED[config.rotnet_head]].mode,
                     fill=config.fill, class_names=names, max_tilt=_max_tilt(config, tilt)),
        *splits["val"], *splits["train"], seed=config.seed)
    trust = {"fit": trust_fit, "test": trust_report(
        pipe, *sets["rotated"], other_images=_other_images(config))}
    selective = {split: selective_evaluation(pipe, s["rotated"][0], s["rotated"][1])
                 for split, s in (("val", val_sets), ("test", sets))}

    sweep_set = sets if config.sweep_split == "test" else val_sets
    _say(config, f"accuracy-versus-angle sweep on {config.sweep_split}, every "
                 f"{config.sweep_step:g} deg")
    sweep = angle_sweep(methods, sweep_set["upright"][0], sweep_set["upright"][1],
                        angles_every(config.sweep_step), fill=config.fill, rotnet=rotnet,
                        verbose=config.verbose)
    sweep["split"] = config.sweep_split

    _say(config, "timing inference")
    deployed = build_methods(rotnet, classifier, models["rotation_augmented"], fill=config.fill)
    timing = _timing(deployed, pipe.predict_rotation, sets["rotated"][0], config.timing_samples)

    _say(config, "saving the pipeline and the baseline model")
    pipe.metadata = _metadata(config, evaluation, sweep)
    models_dir = output / "models"
    pipe.save(models_dir / "risc_pipeline", overwrite=True)
    save_model(models["rotation_augmented"], models_dir / "rotation_augmented.keras")

    run.update(status="complete", finished=now_iso(), wall_time_s=time.time() - started)
    results = RunResults.from_json(json.loads(json_text({
        "run": run,
        "config": config.to_json(),
        "machine": machine_info(),
        "dataset": {
            "name": config.dataset,
            "task": info["task"],
            "num_classes": len(names),
            "labels": info["label"],
            "class_names": names,
            "split_sizes": {s: int(len(splits[s][0])) for s in splits},
            "full_split_sizes": {s: int(n) for s, n in info["n_samples"].items()},
        },
        "angles": {"rotnet": list(config.angles), "rotated_test": list(config.test_angles),
                   "protocol": config.protocol, "sweep": sweep["angles"]},
        "methods": {m: METHOD_LABELS[m] for m in methods},
        "training": training,
        "rotnet": evaluation.pop("rotnet"),
        "evaluation": evaluation,
        "selective": selective,
        "sweep": sweep,
        "timing": timing,
        "paper": PAPER_RESULTS.get(config.dataset),
        "tilt": tilt,
        "trust": trust,
        "test_labels": sets["rotated"][1].tolist(),
        "rotated_test_angles": sets["rotated"][2].tolist(),
    })))
    write_results(results, output)
    finish_run(output, results.run.wall_time_s)
    _say(config, f"done in {results.run.wall_time_s:.0f} s")
    return results
