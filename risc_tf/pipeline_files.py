"""A saved RISCPipeline folder: write, read, and its model card.

Folder layout::

    risc_pipeline.json   angles, mode, fill, class names, thresholds, input size,
                         metadata (dataset, training, test metrics), versions
    rotnet.keras         plain Keras files (risc_tf.save_model): they load with
    classifier.keras     keras.models.load_model without risc_tf
    MODEL_CARD.md        intended use, training, measured performance and limits

:func:`save_pipeline_folder` writes into a temporary folder and swaps it in
at the end; an existing pipeline being replaced is renamed aside first and
deleted only once the new one is in place, so a failure at any point leaves
either the old or the new pipeline, never neither. :func:`read_pipeline_folder`
reads folders of every risc_tf version and the pipeline inside a ``risc-tf
reproduce`` run folder.

The folder format knows models and a config, not the pipeline class: it sits
below :mod:`risc_tf.pipeline`, whose ``save`` and ``load`` call it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from risc_tf.atomic import swap_into_place, temporary_folder
from risc_tf.saving import load_model, save_model

__all__ = [
    "CONFIG_FILE",
    "model_card",
    "pipeline_folder",
    "read_pipeline_folder",
    "save_pipeline_folder",
]

CONFIG_FILE = "risc_pipeline.json"
ROTNET_FILE = "rotnet.keras"
CLASSIFIER_FILE = "classifier.keras"
CARD_FILE = "MODEL_CARD.md"
#: Where ``risc-tf reproduce`` saves the pipeline inside its run folder.
RUN_PIPELINE = Path("models") / "risc_pipeline"
_FORMAT = 2
_REQUIRED = {1: ("angles", "mode", "batch_size"),
             2: ("angles", "mode", "batch_size", "fill", "class_names")}
#: What a pipeline of an older format did where its config has no key.
_OLDER_DEFAULTS = {"fill": "constant", "class_names": None, "min_rotation_confidence": 0.0,
                   "min_class_probability": 0.0, "metadata": None, "head": None,
                   "sigma": None, "max_tilt": None}


def _versions() -> dict:
    import keras
    import tensorflow as tf

    from risc_tf._version import __version__

    return {"risc_tf": __version__, "tensorflow": tf.__version__, "keras": keras.__version__}


def save_pipeline_folder(path: str | os.PathLike, *, rotnet, classifier, config: dict,
                         arrays: dict[str, dict] | None = None, overwrite: bool = False) -> Path:
    """Save both models, ``config`` (see :meth:`RISCPipeline.get_config`), named sets of
    arrays (each ``NAME.npz``, e.g. the out-of-distribution detector) and a model card
    into folder ``path``; return it.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is off, or it is a file or a non-empty
        folder that is not a saved pipeline (never replaced).
    NotADirectoryError
        A part of ``path`` is a file (named).
    """
    path = Path(path)
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        if not path.is_dir() or (not (path / CONFIG_FILE).is_file() and any(path.iterdir())):
            raise FileExistsError(f"{path} exists and is not a saved pipeline; it is left alone")
    with temporary_folder(path) as tmp:
        save_model(rotnet, tmp / ROTNET_FILE)
        save_model(classifier, tmp / CLASSIFIER_FILE)
        for name, values in (arrays or {}).items():
            np.savez(tmp / f"{name}.npz", **values)
        config = {"format": _FORMAT, **config, "arrays": sorted(arrays or ()),
                  "versions": _versions()}
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=_jsonable))
        (tmp / CARD_FILE).write_text(model_card(config))
        swap_into_place(tmp, path)
    return path


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def pipeline_folder(path: str | os.PathLike) -> Path:
    """The folder holding a saved pipeline: ``path`` itself, or the one in a run folder.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist, or holds no pipeline (the message says where
        one was looked for).
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no saved RISCPipeline at {path}: folder does not exist")
    if (path / CONFIG_FILE).is_file():
        return path
    if (path / RUN_PIPELINE / CONFIG_FILE).is_file():
        return path / RUN_PIPELINE
    if (path / "run.json").is_file():
        raise FileNotFoundError(
            f"{path} is a risc-tf reproduce run folder without a saved pipeline in "
            f"{RUN_PIPELINE} (an unfinished run?)"
        )
    missing = [n for n in (CONFIG_FILE, ROTNET_FILE, CLASSIFIER_FILE) if not (path / n).is_file()]
    raise FileNotFoundError(
        f"{path} is not a saved RISCPipeline (missing {', '.join(missing)}) nor a reproduce "
        f"run folder (no {RUN_PIPELINE}/{CONFIG_FILE})"
    )


def read_pipeline_folder(path: str | os.PathLike, *, fold_batchnorm: bool = False) -> tuple:
    """The RotNet, the classifier, the config and the named arrays of a saved pipeline (any
    risc_tf version), or of the one inside a run folder.

    The config is brought to the current format: keys that older formats lacked get
    the value those versions behaved with. ``fold_batchnorm`` loads inference copies
    of the two models (see :func:`risc_tf.saving.load_model`).

    Returns
    -------
    rotnet, classifier : keras.Model
    config : dict
        What :meth:`RISCPipeline.get_config` returns (``format`` and ``versions`` removed).
    arrays : dict
        Name -> arrays, e.g. ``{"ood": ...}`` (empty for older pipelines).

    Raises
    ------
    FileNotFoundError
        No pipeline there (see :func:`pipeline_folder`) or a model file is missing.
    ValueError
        A config that is not JSON, of an unknown format, or missing keys (named),
        or a model file that does not load.
    """
    folder = pipeline_folder(path)
    for name in (ROTNET_FILE, CLASSIFIER_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder} is not a complete saved RISCPipeline: no {name}")
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{folder / CONFIG_FILE} is not readable JSON: {err}") from err
    if not isinstance(config, dict) or config.get("format") not in _REQUIRED:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise ValueError(
            f"{folder / CONFIG_FILE}: unsupported pipeline format {found!r} "
            f"(this risc_tf reads formats {sorted(_REQUIRED)})"
        )
    missing = [k for k in _REQUIRED[config["format"]] if k not in config]
    if missing:
        raise ValueError(f"{folder / CONFIG_FILE} is missing the keys {missing}")
    config = {**_OLDER_DEFAULTS, **config}
    arrays = {}
    for name in config.pop("arrays", []):
        try:
            with np.load(folder / f"{name}.npz", allow_pickle=False) as npz:
                arrays[name] = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as err:
            raise ValueError(f"{folder / (name + '.npz')} is missing or unreadable ({err}); "
                             "the pipeline's config lists it") from err
    for key in ("format", "versions", "input_size"):
        config.pop(key, None)
    rotnet, classifier = (load_model(folder / name, fold_batchnorm=fold_batchnorm)
                          for name in (ROTNET_FILE, CLASSIFIER_FILE))
    return rotnet, classifier, config, arrays


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _trust_lines(config: dict, trust: dict | None) -> list[str]:
    """The card's section on calibration, review thresholds and unlike images."""
    if not trust:
        return []
    lines = ["## Confidence and review (chosen on the validation split)", "",
             f"- Temperatures: RotNet {trust['rotnet_temperature']:.3g}, classifier "
             f"{trust['classifier_temperature']:.3g} (temperature scaling; applied to every "
             "probability the pipeline and its exports give)."]
    for key, what in (("rotation_threshold", "Rotation confidence"),
                      ("class_threshold", "Class probability")):
        t = trust[key]
        goal = (f"answered accuracy >= {t['target_value']:.3f}" if t["target"] == "min_accuracy"
                else f"coverage >= {t['target_value']:.3f}")
        reached = "-" if t["accuracy"] is None else f"{t['accuracy']:.3f}"
        lines.append(f"- {what} threshold {t['threshold']:.4g}: target {goal} "
                     f"({t.get('description') or 'stated target'}); on validation accuracy "
                     f"{reached} at coverage {t['coverage']:.3f}"
                     + ("" if t["met"] else "; the target was NOT reached") + ".")
    if trust.get("ood_threshold") is not None:
        layers = trust.get("ood_layers") or ["penultimate"]
        lines.append(f"- Images unlike the training images: Mahalanobis score on the "
                     f"classifier's features ({', '.join(layers)}) above "
                     f"{trust['ood_threshold']:.4g}, the {trust['ood_percentile']:g}th "
                     "percentile of the validation images.")
    return lines + [""]


def model_card(config: dict) -> str:
    """``MODEL_CARD.md`` for a pipeline config (see :meth:`RISCPipeline.get_config`)."""
    meta = config.get("metadata") or {}
    dataset = meta.get("dataset", "an unnamed dataset")
    angles = ", ".join(f"{a:g}" for a in config["angles"])
    lines = [
        f"# Model card: RISC pipeline for {dataset}", "",
        "## Intended use", "",
        "Research on rotation-robust classification of small medical images (MedMNIST-like, "
        f"{config.get('input_size', '?')}x{config.get('input_size', '?')} model input). "
        "**Not a medical device**: not validated for diagnosis, triage or any clinical "
        "decision. Predictions on images unlike the training data (other modalities, "
        "resolutions, crops, or noise) can be confidently wrong; use the review thresholds "
        "and a person's judgement.", "",
        "## What it does", "",
        f"A RotNet predicts which of the rotations {angles} (degrees, counter-clockwise) "
        f"was applied to an image; the image is turned back ({config['mode']} correction, "
        f"fill `{config.get('fill', 'constant')}`) and classified into "
        f"{', '.join(config.get('class_names') or [])}. Images are marked for review when the "
        f"RotNet's confidence is below {config.get('min_rotation_confidence', 0.0):g} or the "
        f"class probability below {config.get('min_class_probability', 0.0):g}"
        + ("" if config.get("ood_threshold") is None else
           f", or when they are unlike the training images (out-of-distribution score above "
           f"{config['ood_threshold']:.4g})") + "."
        + ("" if config.get("max_tilt") is None else
           f" `risc-tf predict` counts a file as turned by "
           f"{'a quarter turn' if config.get('head') == 'circular' else 'one of these angles'}"
           f" when its estimated rotation is within {config['max_tilt']:.3g} degrees of it; "
           "any other is sent to review without an exact upright copy."), "",
        *_trust_lines(config, meta.get("trust")),
    ]
    if meta.get("training"):
        lines += ["## Training", ""]
        lines += [f"- {k}: {_fmt(v)}" for k, v in meta["training"].items()]
        lines.append("")
    if meta.get("test_metrics"):
        lines += ["## Measured performance (test set)", ""]
        lines += [f"- {k}: {_fmt(v)}" for k, v in meta["test_metrics"].items()]
        lines.append("")
    if meta.get("accuracy_by_angle"):
        by_angle = meta["accuracy_by_angle"]
        lines += ["## Limitations measured: accuracy by rotation angle (test set)", "",
                  "| angle (deg) | " + " | ".join(by_angle) + " |",
                  "|---|" + "---|" * len(by_angle)]
        angles_swept = next(iter(by_angle.values()))
        for i, a in enumerate(angles_swept.get("angles", [])):
            lines.append(f"| {a:g} | " + " | ".join(
                _fmt(v["acc"][i]) for v in by_angle.values()) + " |")
        lines.append("")
    calibrated = (config.get("rotnet_temperature", 1.0), config.get(
        "classifier_temperature", 1.0)) != (1.0, 1.0)
    lines += ["## Known limitations", "",
              "- Trained and tested on one public dataset at low resolution; performance on "
              "other sources is unknown.",
              "- Rotations between the RotNet's angles are left partly uncorrected (see the "
              "table above, where measured).",
              "- Confidence is calibrated on the validation split by one temperature per "
              "model; it holds on other data only as far as that data looks like it."
              if calibrated else
              "- Confidence is the models' softmax output, not a calibrated probability.", ""]
    versions = config.get("versions") or {}
    if versions:
        lines += ["## Versions", "", ", ".join(f"{k} {v}" for k, v in versions.items()), ""]
    return "\n".join(lines)
