"""Settings of a reproduction run, and the training recipes it can follow.

A **recipe** is the set of training settings of the classifiers (the upright
one, which RISC uses, and the rotation-augmented baseline, which always
follows the same recipe so the comparison stays fair), plus the number of
epochs of every model:

* ``"paper"``: the RISC paper's plain setup, exactly as risc_tf ran it before
  recipes existed (Adam 1e-3, 10 epochs, early stopping after 5, from scratch);
* ``"tuned"``: the setup chosen on validation data only by ``risc-tf tune``
  (docs/recipe.md has the grid, every validation figure and the choice).

Any field of :class:`ReproduceConfig` left at None takes the recipe's value;
the results record the recipe and every resolved value.

Pure Python (no TensorFlow): the command line builds configs before loading it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from risc_tf.angles import (
    PROTOCOLS,
    angles_every,
    check_angles,
    check_fill,
    check_resolution,
    check_tilt,
    default_tilt,
)
from risc_tf.backbones import check_backbone, check_backbone_weights, check_input_size
from risc_tf.catalog import DOWNLOAD_TIMEOUT, SIZES, dataset_info
from risc_tf.heads import check_head
from risc_tf.paper import paper_angles
from risc_tf.progress import fit_verbosity
from risc_tf.validation import (
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_number,
    check_optional_int,
    check_seed,
)

__all__ = [
    "CLASSIFIER_INITS",
    "PER_RUN",
    "PROTOCOLS",
    "RECIPES",
    "RECIPE_FIELDS",
    "ReproduceConfig",
    "describe_setting",
    "recipe_settings",
]

CLASSIFIER_INITS = ("scratch", "rotnet")

#: Settings that may differ between the runs (seeds) of one experiment; all others must
#: match for runs to be aggregated together.
PER_RUN = ("seed", "output", "overwrite", "verbose", "data_root", "download", "verify",
           "timing_samples", "download_timeout")

#: Settings a recipe decides (each a field of ReproduceConfig).
RECIPE_FIELDS = (
    "epochs", "rotnet_epochs", "patience", "optimizer", "learning_rate", "lr_schedule",
    "class_weight", "label_smoothing", "augment", "classifier_init",
)

_PAPER = {
    "epochs": 10, "rotnet_epochs": 10, "patience": 5, "optimizer": "adam",
    "learning_rate": 1e-3, "lr_schedule": "constant", "class_weight": None,
    "label_smoothing": 0.0, "augment": None, "classifier_init": "scratch",
}

#: recipe -> dataset (``"*"`` for any other) -> settings. The tuned values are
#: those ``risc-tf tune`` chose on validation accuracy (docs/recipe.md): on
#: PneumoniaMNIST a cosine decay over 15 epochs, no augmentation, from scratch;
#: on RetinaMNIST the light augmentation at a constant rate over 20 epochs, with
#: the RotNet trained 30 epochs (its 45-degree set learns slowly). Datasets not
#: searched take the PneumoniaMNIST choice (same 90-degree protocol).
_TUNED_90 = {**_PAPER, "epochs": 15, "patience": 15, "rotnet_epochs": 10,
             "lr_schedule": "cosine"}
_TUNED_RETINA = {**_PAPER, "epochs": 20, "patience": 20, "rotnet_epochs": 30,
                 "augment": "light"}

RECIPES: dict[str, dict[str, dict]] = {
    "paper": {"*": _PAPER},
    "tuned": {"*": _TUNED_90, "pneumoniamnist": _TUNED_90, "retinamnist": _TUNED_RETINA},
}


def recipe_settings(recipe: str, dataset: str) -> dict:
    """The settings of ``recipe`` for ``dataset`` (its own entry, else the ``"*"`` one)."""
    table = RECIPES[check_choice("recipe", recipe, tuple(RECIPES))]
    return dict(table.get(dataset, table["*"]))


@dataclasses.dataclass
class ReproduceConfig:
    """Settings of one :func:`risc_tf.reproduce` run (all JSON-serialisable).

    Parameters
    ----------
    dataset : str
        A 2D single-label MedMNIST flag, e.g. ``"pneumoniamnist"``.
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
    recipe : {"paper", "tuned"}, default "paper"
        Training recipe (see the module docs); the fields below left at None
        take its values.
    epochs, rotnet_epochs, patience : int, optional
        Most epochs of the classifiers / the RotNet; early-stopping patience.
    optimizer, learning_rate, lr_schedule : optional
        See :func:`risc_tf.training.resolve_optimizer`.
    class_weight, label_smoothing, augment : optional
        Classifier options of :func:`risc_tf.train_classifier` (``"none"`` for
        class_weight or augment turns off what the recipe would set).
    classifier_init : {"scratch", "rotnet"}, optional
        Start the classifiers from random weights, or from the trained RotNet's backbone.
    batch_size, recalibration_batches : int
    angles : sequence of float, optional
        The RotNet's angle set; :func:`risc_tf.paper.paper_angles` when omitted
        (a circular head needs fine bins over the circle, e.g. ``angles_every(5)``).
    rotnet_head : {"bins", "circular"}, default "bins"
        The RotNet's head (:mod:`risc_tf.heads`): the paper's bins, or fine bins
        read as a continuous angle (then RISC also counter-rotates by that angle,
        ``risc_angle``, and the saved pipeline uses it).
    rotnet_sigma : float, optional
        The circular head's soft-label width in degrees (default: the bin width).
    test_angles : sequence of float, optional
        Angles the rotated test set draws from (``protocol="set"``); the paper's
        set when omitted.
    protocol : {"set", "uniform"}, default "set"
        Rotated test set: angles drawn from ``test_angles`` (the paper's
        protocol), or uniformly over the circle.
    fill : {"constant", "reflect", "circle"}, default "constant"
        See :mod:`risc_tf.rotation`; used for training, evaluation and the pipeline.
    jitter : float, default 0
        RotNet training rotations deviate from its angles by up to this (degrees).
    tilt : float or "auto", default "auto"
        Classifier training tilt. With the bins head at most half the smallest gap
        of ``angles`` (the largest residual the RotNet leaves); "auto" is
        :func:`risc_tf.angles.default_tilt` (0 for quarter-turn sets, else half the
        gap). With the circular head at most 45; "auto" is the residual the trained
        RotNet leaves on the validation split (its 95th percentile,
        :func:`risc_tf.sweep.residual_tilt`).
    seed : int in [0, 2**32 - 1], default 0
        Seeds training, the subset draw and the rotated test set.
    deterministic : bool, default False
        Train with TensorFlow's op determinism, so that the same command repeats
        its results bit for bit on the same machine and versions (see
        :mod:`risc_tf.determinism`).
    subset : int, optional
        Use at most this many images of each split (a seeded random draw).
    sweep_step : float, default 10
        Step of the accuracy-versus-angle sweep over [0, 360).
    sweep_split : {"test", "val"}, default "test"
        Split the sweep runs on ("val" while choosing settings).
    timing_samples : int, default 50
        Images timed one at a time for Table 2.
    download, verify : as :func:`risc_tf.load_medmnist`.
    download_timeout : float, default 60
        Seconds to wait for the server when a file is downloaded (``timeout`` of
        :func:`risc_tf.load_medmnist`).
    overwrite : bool, default False
        Replace an earlier run in ``output``.
    verbose : int, default 1
        Progress bars (a bar on a terminal, one line per epoch elsewhere) and stage
        messages (0: silent).
    """

    dataset: str
    output: str | os.PathLike
    data_root: str | os.PathLike | None = None
    size: int = 28
    input_size: int = 32
    backbone: str = "resnet50"
    weights: str | None = None
    recipe: str = "paper"
    epochs: int | None = None
    rotnet_epochs: int | None = None
    patience: int | None = None
    optimizer: str | None = None
    learning_rate: float | None = None
    lr_schedule: str | None = None
    class_weight: str | None = None
    label_smoothing: float | None = None
    augment: str | None = None
    classifier_init: str | None = None
    batch_size: int = 64
    recalibration_batches: int = 50
    angles: Sequence[float] | None = None
    rotnet_head: str = "bins"
    rotnet_sigma: float | None = None
    test_angles: Sequence[float] | None = None
    protocol: str = "set"
    fill: str = "constant"
    jitter: float = 0.0
    tilt: float | str = "auto"
    seed: int = 0
    deterministic: bool = False
    subset: int | None = None
    sweep_step: float = 10.0
    sweep_split: str = "test"
    timing_samples: int = 50
    download: bool = False
    verify: bool = True
    download_timeout: float = DOWNLOAD_TIMEOUT
    overwrite: bool = False
    verbose: int = 1

    def validate(self) -> ReproduceConfig:
        """Check every field; return a copy with the recipe and the angle sets resolved.

        Raises
        ------
        ValueError
            The first bad field, named, with what is accepted.
        """
        info = dataset_info(self.dataset)
        if info["task"] not in ("binary-class", "multi-class", "ordinal-regression"):
            raise ValueError(
                f"{self.dataset} is a {info['task']} task; reproduce supports single-label "
                "(binary, multi-class, ordinal) datasets"
            )
        check_choice("size", self.size, SIZES)
        check_backbone(self.backbone)
        check_backbone_weights(self.weights, self.backbone)  # as the model builders do
        recipe = recipe_settings(self.recipe, self.dataset)
        values = {f: recipe[f] if getattr(self, f) is None else getattr(self, f)
                  for f in RECIPE_FIELDS}
        values["patience"] = check_int("patience", values["patience"], 0)
        for name in ("epochs", "rotnet_epochs"):
            values[name] = check_int(name, values[name])
        values["learning_rate"] = check_number("learning_rate", values["learning_rate"], 0.0,
                                               include_minimum=False)
        check_choice("lr_schedule", values["lr_schedule"], ("constant", "cosine"))
        for name, choices in (("class_weight", (None, "none", "balanced")),
                              ("augment", (None, "none", "light"))):
            check_choice(name, values[name], choices)
            # "none", not None: None means "the recipe's" and validating again would bring
            # the recipe's value back
            values[name] = "none" if values[name] is None else values[name]
        values["label_smoothing"] = check_fraction("label_smoothing", values["label_smoothing"])
        check_choice("classifier_init", values["classifier_init"], CLASSIFIER_INITS)
        if not isinstance(values["optimizer"], str):
            raise ValueError(f"optimizer must be a Keras optimizer name; got "
                             f"{values['optimizer']!r}")
        for name, low in {"batch_size": 1, "input_size": 8, "recalibration_batches": 1,
                          "timing_samples": 1, "verbose": 0}.items():
            check_int(name, getattr(self, name), low)
        check_input_size(self.backbone, self.input_size)
        download_timeout = check_number("download_timeout", self.download_timeout, 0.0,
                                        include_minimum=False)
        seed = check_seed(self.seed)
        deterministic = check_bool("deterministic", self.deterministic)
        check_optional_int("subset", self.subset, 2)
        check_choice("protocol", self.protocol, PROTOCOLS)
        check_choice("sweep_split", self.sweep_split, ("test", "val"))
        fill = check_fill(self.fill)
        angles = paper_angles(self.dataset) if self.angles is None else check_angles(self.angles)
        check_resolution(angles, self.input_size)
        test_angles = (paper_angles(self.dataset) if self.test_angles is None
                       else check_angles(self.test_angles, "test_angles"))
        head, sigma = check_head(self.rotnet_head, angles, self.rotnet_sigma)
        if head == "circular":  # trained on uniform angles; tilt measured or given
            if self.jitter:
                raise ValueError("jitter applies to the bins head; a circular head trains on "
                                 "angles drawn uniformly over the circle")
            jitter = 0.0
            tilt = "auto" if self.tilt == "auto" else check_number("tilt", self.tilt, 0.0, 45.0)
        else:
            jitter = check_tilt(self.jitter, angles, "jitter")
            tilt = default_tilt(angles) if self.tilt == "auto" else check_tilt(self.tilt, angles)
        angles_every(self.sweep_step)  # validates the sweep step
        # last, as it loads Keras: the one check of an optimizer name (nothing is trained)
        from risc_tf.training_options import resolve_optimizer

        resolve_optimizer(values["optimizer"], values["learning_rate"], values["lr_schedule"],
                          total_steps=1)
        return dataclasses.replace(self, angles=angles, test_angles=test_angles, fill=fill,
                                   jitter=jitter, tilt=tilt, rotnet_sigma=sigma, seed=seed,
                                   deterministic=deterministic,
                                   download_timeout=download_timeout, **values)

    def _common_options(self) -> dict:
        return dict(batch_size=self.batch_size, optimizer=self.optimizer,
                    learning_rate=self.learning_rate, lr_schedule=self.lr_schedule,
                    patience=self.patience or None, seed=self.seed,
                    deterministic=self.deterministic, fill=self.fill,
                    recalibration_batches=self.recalibration_batches,
                    verbose=fit_verbosity() if self.verbose else 0)

    def rotnet_model(self) -> dict:
        """Keyword arguments of :func:`risc_tf.build_rotnet` (call on a validated config)."""
        return dict(angles=self.angles, head=self.rotnet_head, sigma=self.rotnet_sigma,
                    backbone=self.backbone, weights=self.weights)

    def rotnet_options(self) -> dict:
        """Keyword arguments of :func:`risc_tf.train_rotnet` (call on a validated config)."""
        return dict(epochs=self.rotnet_epochs, jitter=self.jitter, **self._common_options())

    def classifier_options(self, tilt: float | None = None) -> dict:
        """Keyword arguments of :func:`risc_tf.train_classifier` (call on a validated config);
        ``tilt`` is the measured one where the config says "auto" (a circular head)."""
        def none(value):
            return None if value == "none" else value

        return dict(epochs=self.epochs, class_weight=none(self.class_weight),
                    label_smoothing=self.label_smoothing, augment=none(self.augment),
                    tilt=self.tilt if tilt is None else tilt, **self._common_options())

    def to_json(self) -> dict:
        """The settings as JSON-ready values."""
        def convert(v):
            if isinstance(v, tuple):
                return list(v)
            return str(v) if isinstance(v, os.PathLike) else v

        return {k: convert(v) for k, v in dataclasses.asdict(self).items()}


def describe_setting(config: dict, *, code: bool = True) -> str:
    """A short description of an experiment's recipe, angle set, RotNet head, fill and tilt.

    ``config`` is a run's recorded settings (``results.json``'s ``config``); ``code``
    quotes the recipe name in Markdown code.

    Examples
    --------
    >>> describe_setting({"recipe": "tuned", "angles": [0, 90, 180, 270]})
    '`tuned`, 4 angles (90 deg)'
    """
    n = len(config["angles"])
    recipe = f"`{config['recipe']}`" if code else config["recipe"]
    if config.get("rotnet_head", "bins") == "circular":
        sigma = config.get("rotnet_sigma")
        text = (f"{recipe}, circular head ({n} bins of {360 / n:g} deg"
                + (f", sigma {sigma:g}" if sigma else "") + ")")
    else:
        text = f"{recipe}, {n} angles ({360 / n:g} deg)"
    if config.get("fill", "constant") != "constant":
        text += f", {config['fill']} fill"
    tilt = config.get("tilt")
    if tilt == "auto":
        text += ", tilt from the RotNet's validation residual"
    elif tilt:
        text += f", tilt +-{tilt:g}"
    return text
