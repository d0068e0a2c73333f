"""Choosing settings on validation data only: a small grid, resumable, every figure kept.

:func:`tune_recipe` trains, for every point of a grid of
:class:`~risc_tf.experiments.config.ReproduceConfig` settings and every seed,
what the objective needs, and scores it on the **validation** split (the test
split is never loaded):

* ``objective="classifier"``: the upright classifier (after the RotNet, when
  the point initialises it from one); score: its best validation accuracy
  (the epoch early stopping keeps);
* ``objective="risc"``: the RotNet and the classifier; score: the mean accuracy
  of its RISC correction (RISC hard for a bins head, RISC angle for a circular
  one, :data:`risc_tf.corrections.DEPLOYED`) over the validation set rotated by
  every ``sweep_step`` degrees
  (the circle), with the RotNet's angular error and the quarter-turn / worst
  angle numbers beside it.

Trained RotNets are cached by their own settings and reused by every point
that needs the same one. Results go to ``OUTPUT/tune.json`` after every point
(an interrupted search resumes where it stopped) and ``OUTPUT/tune.md``: the
grid, every validation figure per seed, the mean over seeds, and the choice
(highest mean score; ties go to the earlier point of the grid).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from risc_tf._version import __version__
from risc_tf.atomic import write_text
from risc_tf.corrections import DEPLOYED
from risc_tf.experiments.config import ReproduceConfig
from risc_tf.experiments.report import fmt, json_text, markdown_table
from risc_tf.experiments.rundir import ensure_output_dir, machine_info, now_iso, source_info
from risc_tf.experiments.seeds import check_seeds
from risc_tf.validation import check_choice

__all__ = ["OBJECTIVES", "grid_points", "tune_recipe"]

OBJECTIVES = ("classifier", "risc")
_ROTNET_KEYS = ("dataset", "backbone", "weights", "input_size", "angles", "rotnet_head",
                "rotnet_sigma", "fill", "jitter",
                "rotnet_epochs", "batch_size", "optimizer", "learning_rate", "lr_schedule",
                "patience", "size", "subset", "recalibration_batches")


def grid_points(grid: Mapping[str, Sequence] | Sequence[Mapping]) -> list[dict]:
    """The points of a grid: every combination of ``{field: [values]}`` (the last field
    fastest), or an explicit list of points ``[{field: value, ...}, ...]`` (for settings
    that go together, e.g. an angle set and its jitter).

    Raises
    ------
    ValueError
        A field that is not a ReproduceConfig setting, an empty list of values or of
        points.
    """
    fields = {f.name for f in dataclasses.fields(ReproduceConfig)}
    if isinstance(grid, Mapping):
        for name, values in grid.items():
            if isinstance(values, (str, bytes)) or not list(values):
                raise ValueError(f"grid field {name!r} needs a non-empty list of values")
        names = list(grid)
        points = [dict(zip(names, combo))
                  for combo in itertools.product(*(grid[n] for n in names))]
    else:
        points = [dict(p) for p in grid]
    if not points or not all(points):
        raise ValueError("a grid needs at least one point with at least one setting")
    for point in points:
        for name in point:
            if name not in fields or name in ("dataset", "output", "seed", "download_timeout"):
                raise ValueError(f"grid field {name!r} is not a setting a grid can vary")
    return points


def _key(settings: dict) -> str:
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _rotnet(config: ReproduceConfig, splits, cache: Path):
    from risc_tf.saving import load_model, save_model
    from risc_tf.stages import build_and_train_rotnet

    settings = {k: v for k, v in config.to_json().items() if k in _ROTNET_KEYS}
    path = cache / f"rotnet-{_key({**settings, 'seed': config.seed, 'risc_tf': __version__})}.keras"
    if path.is_file():
        return load_model(path), None
    rotnet, record = build_and_train_rotnet(
        splits["train"][0], splits["val"][0], input_size=config.input_size,
        **config.rotnet_model(), **config.rotnet_options())
    save_model(rotnet, path)
    return rotnet, {"best_val_accuracy": record["best_val_accuracy"],
                    "train_time_s": record["train_time_s"]}


def _evaluate_point(config: ReproduceConfig, splits, objective: str, cache: Path) -> dict:
    from risc_tf.angles import angles_every
    from risc_tf.catalog import label_names
    from risc_tf.evaluation import build_methods, evaluation_sets
    from risc_tf.stages import build_and_train_classifier
    from risc_tf.sweep import angle_sweep, residual_tilt

    out: dict = {}
    rotnet = None
    if objective == "risc" or config.classifier_init == "rotnet":
        rotnet, trained = _rotnet(config, splits, cache)
        out["rotnet"] = trained or {"cached": True}
    (x, y), (xv, yv) = splits["train"], splits["val"]
    init = rotnet if config.classifier_init == "rotnet" else config.weights
    tilt = None
    if config.tilt == "auto":  # a circular head: the residual it leaves, on validation
        tilt = residual_tilt(rotnet, xv, fill=config.fill, seed=config.seed)
        out["tilt"] = tilt
    clf, record = build_and_train_classifier(
        x, y, xv, yv, num_classes=len(label_names(config.dataset)),
        input_size=config.input_size, backbone=config.backbone, weights=init,
        **config.classifier_options(None if tilt is None else tilt["tilt_deg"]))
    out["classifier"] = {"best_val_accuracy": record["best_val_accuracy"],
                         "best_epoch": record["best_epoch"], "epochs_run": record["epochs_run"],
                         "train_time_s": record["train_time_s"]}
    if objective == "classifier":
        out["score"] = out["classifier"]["best_val_accuracy"]
        return out
    upright = evaluation_sets(xv, yv, config.test_angles, image_size=config.input_size,
                              fill=config.fill)["upright"][0]
    scored = DEPLOYED[config.rotnet_head]
    methods = {k: v for k, v in build_methods(rotnet, clf, fill=config.fill).items()
               if k in ("classifier", scored)}
    sweep = angle_sweep(methods, upright, yv, angles_every(config.sweep_step), fill=config.fill,
                        rotnet=rotnet, verbose=0)
    out["sweep"] = {"summary": sweep["summary"], "rotnet_mae_deg": sweep["rotnet_mae_deg_mean"],
                    "rotnet_median_deg": sweep["rotnet_median_deg"],
                    "rotnet_p95_deg": sweep["rotnet_p95_deg"]}
    out["score"] = sweep["summary"][scored]["mean"]
    return out


def _mean(values: list, digits: int = 3) -> str:
    values = [v for v in values if v is not None]
    return fmt(float(np.mean(values)), digits) if values else "-"


def _markdown(state: dict) -> str:
    lines = [f"# Validation grid: {state['dataset']}, objective {state['objective']}", "",
             f"Command: `{state['source']['command']}` (commit {state['source']['commit']}).",
             f"Base settings: `{json.dumps(state['base'])}`. Seeds: {state['seeds']}. "
             "Every score is on the validation split; the test split was not loaded.", "",
             "Score: " + ("best validation accuracy of the upright classifier."
                          if state["objective"] == "classifier" else
                          "RISC's mean accuracy over the rotated validation set (sweep; RISC "
                          "hard for a bins head, RISC angle for a circular one)."),
             ""]
    names = list(dict.fromkeys(k for p in state["points"] for k in p["settings"]))
    risc = state["objective"] == "risc"
    header = [*names, "score per seed", "mean score",
              *(["classifier val ACC", "RotNet val ACC (its training task)",
                 "RotNet sweep error (deg)"] if risc else []), "time (s)"]
    rows = []
    for point in state["points"]:
        done = [point["seeds"][str(s)] for s in state["seeds"] if str(s) in point["seeds"]]
        scores = [r["score"] for r in done]
        seconds = sum(r["classifier"]["train_time_s"] + (r.get("rotnet") or {}).get(
            "train_time_s", 0.0) for r in done)
        extra = []
        if risc:
            extra = [_mean([r["classifier"]["best_val_accuracy"] for r in done]),
                     _mean([(r.get("rotnet") or {}).get("best_val_accuracy") for r in done]),
                     _mean([r["sweep"]["rotnet_mae_deg"] for r in done], 1)]
        rows.append([*(json.dumps(point["settings"].get(k)) for k in names),
                     ", ".join(f"{v:.3f}" for v in scores), _mean(scores), *extra,
                     f"{seconds:.0f}"])
    lines += markdown_table(header, rows)
    if state.get("choice") is not None:
        lines += ["", f"**Choice:** `{json.dumps(state['choice']['settings'])}` "
                      f"(mean validation score {state['choice']['score']:.3f}).", ""]
    return "\n".join(lines)


def tune_recipe(base: ReproduceConfig, grid: Mapping[str, Sequence] | Sequence[Mapping],
                seeds: Sequence[int] = (0,), objective: str = "classifier") -> dict:
    """Score every grid point on validation data; write ``tune.json``/``tune.md``; return them.

    Parameters
    ----------
    base : ReproduceConfig
        The settings every point starts from; ``base.output`` is the output folder.
    grid : mapping or sequence of mappings
        ``{setting: [values]}`` (every combination), e.g. ``{"augment": [None, "light"],
        "classifier_init": ["scratch", "rotnet"]}``, or a list of points.
    seeds : sequence of int, default (0,)
    objective : {"classifier", "risc"}, default "classifier"

    Returns
    -------
    dict
        The state written to ``tune.json``, with ``"choice"``.
    """
    from risc_tf.data import load_splits

    check_choice("objective", objective, OBJECTIVES)
    seeds = check_seeds(seeds)
    points = grid_points(grid)
    configs = [dataclasses.replace(base, **p).validate() for p in points]  # all checked first
    output = Path(base.output)
    state_file = output / "tune.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else None
    fresh = {"dataset": base.dataset, "objective": objective,
             "grid": dict(grid) if isinstance(grid, Mapping) else [dict(p) for p in grid],
             "base": {k: v for k, v in base.to_json().items()
                      if k not in ("output", "verbose", "overwrite", "download_timeout")},
             "seeds": list(seeds)}
    if state is None or any(state.get(k) != json.loads(json_text(v)) for k, v in fresh.items()):
        if state is not None and not base.overwrite:
            raise FileExistsError(f"{state_file} holds another search; pass overwrite=True to "
                                  "start again or choose another folder")
        state = {**json.loads(json_text(fresh)), "points": [
            {"settings": json.loads(json_text(p)), "seeds": {}} for p in points]}
    # the data before any folder: a missing file or a refused option leaves nothing behind
    splits = load_splits(base.dataset, base.data_root, base.size, base.subset, 0,
                         splits=("train", "val"), download=base.download, verify=base.verify,
                         timeout=configs[0].download_timeout)
    ensure_output_dir(output)
    cache = ensure_output_dir(output / "rotnets")
    state.update(source=source_info(), machine=machine_info())
    for point, config in zip(state["points"], configs):
        for seed in seeds:
            if str(seed) in point["seeds"]:
                continue
            if base.verbose:
                print(f"[risc-tf tune] {point['settings']} seed {seed}", flush=True)
            result = _evaluate_point(dataclasses.replace(config, seed=seed), splits, objective,
                                     cache)
            point["seeds"][str(seed)] = {**result, "finished": now_iso()}
            write_text(state_file, json_text(state))
    means = [float(np.mean([p["seeds"][str(s)]["score"] for s in seeds]))
             for p in state["points"]]
    best = int(np.argmax(means))
    state["choice"] = {"settings": state["points"][best]["settings"], "score": means[best]}
    write_text(state_file, json_text(state))
    write_text(output / "tune.md", _markdown(state))
    return state
