"""The results schema: what a run writes to ``results.json`` and what everything else reads.

One typed record per part of a run's results (:class:`RunResults`) and of an
aggregate over seeds (:class:`AggregateResults`). A run builds them, the
report, the plots, the aggregate, the benchmarks and ``docs/make_results.py``
read them by attribute, never by string keys; :func:`load_results` reads a
file of any schema version this risc_tf knows.

Schema versions
---------------
0
    risc_tf 0.1's files (the RotNet's accuracy under ``rotated_test_acc``, no
    per-image predictions): not read; :func:`load_results` says so.
1
    Files written before the schema had a version (risc_tf 0.2 up to the
    results schema). Fields added later are ``None`` when read.
2
    ``schema_version`` recorded; the fields of this module.

A file of a newer version, or with fields this module does not know, is a
clear ``ValueError`` naming the file, the field and the version.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from risc_tf.experiments.records import SCHEMA_VERSION, Record, record

__all__ = [
    "SCHEMA_VERSION",
    "AggregateResults",
    "AggregateSummary",
    "Comparison",
    "CoverageCurve",
    "DatasetRecord",
    "MethodMetrics",
    "MethodSpread",
    "Record",
    "ResidualTilt",
    "RotNetMetrics",
    "RunInfo",
    "RunResults",
    "Spread",
    "Sweep",
    "SweepSummary",
    "Timing",
    "TrainingRecord",
    "load_results",
]

# -- one run ---------------------------------------------------------------------------------

@record
class RunInfo(Record):
    """Who ran what, when: ``run.json`` and ``results.json``'s ``run``."""

    id: str
    status: str
    started: str
    pid: int | None = None
    command: str | None = None
    commit: str | None = None
    dirty: bool | None = None
    finished: str | None = None
    wall_time_s: float | None = None


@record
class DatasetRecord(Record):
    name: str
    task: str
    num_classes: int
    labels: dict[str, str]
    class_names: list[str]
    split_sizes: dict[str, int]
    full_split_sizes: dict[str, int]


@record
class AngleRecord(Record):
    """The RotNet's angle set, the rotated test set's, its protocol and the sweep's angles."""

    rotnet: list[float]
    rotated_test: list[float]
    protocol: str
    sweep: list[float]


@record
class TrainingRecord(Record):
    """One trained model (:func:`risc_tf.training.history_record`)."""

    history: dict[str, list[float]]
    epochs_run: int
    best_epoch: int | None
    best_val_accuracy: float | None
    train_time_s: float
    parameters: int


@record
class RotNetMetrics(Record):
    """:func:`risc_tf.metrics.rotation_metrics` on the rotated test set, and upright."""

    OPTIONAL = ("refined_mae_deg", "median_deg", "p95_deg")
    acc: float | None
    n_in_set: int
    nearest_acc: float | None
    mae_deg: float
    per_angle_acc: dict[str, float]
    confusion_matrix: list[list[int]]
    upright_acc: float | None = None
    refined_mae_deg: float | None = None
    median_deg: float | None = None
    p95_deg: float | None = None


@record
class MethodMetrics(Record):
    """:func:`risc_tf.metrics.classification_metrics` of one method on one test set."""

    OPTIONAL = ("per_angle_acc", "predicted")
    acc: float
    auc: float | None
    n: int
    confusion_matrix: list[list[int]]
    per_angle_acc: dict[str, float] | None = None
    predicted: list[int] | None = None


@record
class Evaluation(Record):
    """Every method on the upright and on the rotated test set."""

    upright: dict[str, MethodMetrics]
    rotated: dict[str, MethodMetrics]


@record
class CoverageCurve(Record):
    """:func:`risc_tf.metrics.coverage_curve`."""

    thresholds: list[float]
    coverage: list[float]
    accuracy: list[float | None]
    area: float | None


@record
class SweepSummary(Record):
    """:func:`risc_tf.metrics.sweep_summary` of one method."""

    mean: float
    quarter_turn_mean: float | None
    off_grid_mean: float | None
    worst_acc: float
    worst_angle: float


@record
class Sweep(Record):
    """Accuracy of every method with the whole split rotated by each angle of the circle."""

    OPTIONAL = ("rotnet_mae_deg", "rotnet_mae_deg_mean", "rotnet_refined_mae_deg",
                "rotnet_refined_mae_deg_mean", "rotnet_median_deg", "rotnet_p95_deg",
                "rotnet_worst_mae_deg", "rotnet_worst_angle", "correct_counts")
    angles: list[float]
    acc: dict[str, list[float]]
    auc: dict[str, list[float | None]]
    summary: dict[str, SweepSummary]
    split: str | None = None
    rotnet_mae_deg: list[float] | None = None
    rotnet_mae_deg_mean: float | None = None
    rotnet_refined_mae_deg: list[float] | None = None
    rotnet_refined_mae_deg_mean: float | None = None
    rotnet_median_deg: float | None = None
    rotnet_p95_deg: float | None = None
    rotnet_worst_mae_deg: float | None = None
    rotnet_worst_angle: float | None = None
    #: at how many of the angles each image is classified correctly, per method
    correct_counts: dict[str, list[int]] | None = None


@record
class Timing(Record):
    """:func:`risc_tf.evaluation.time_inference` of one method."""

    batched_ms_per_sample: float
    single_ms_per_sample: float
    n_batched: int
    n_single: int


@record
class ResidualTilt(Record):
    """:func:`risc_tf.sweep.residual_tilt`: the classifier tilt a RotNet's residual asks."""

    tilt_deg: float
    percentile: float
    mae_deg: float
    median_deg: float
    p95_deg: float
    capped: bool
    n: int


@record
class RunResults(Record):
    """Everything one :func:`risc_tf.reproduce` run measured: its ``results.json``.

    ``summary`` (Tables 1 and 2, the verdict) and ``plots`` (file names) are added
    by :func:`risc_tf.experiments.report.write_results`.
    """

    OPTIONAL = ("summary", "plots", "tilt", "trust")
    run: RunInfo
    config: dict[str, Any]
    machine: dict[str, Any]
    dataset: DatasetRecord
    angles: AngleRecord
    methods: dict[str, str]
    training: dict[str, TrainingRecord]
    rotnet: RotNetMetrics
    evaluation: Evaluation
    sweep: Sweep
    timing: dict[str, Timing]
    paper: dict[str, float] | None
    #: None in the earliest version-1 files (made before selective classification and
    #: per-image predictions were kept: they cannot be aggregated)
    selective: dict[str, dict[str, CoverageCurve]] | None = None
    test_labels: list[int] | None = None
    rotated_test_angles: list[float] | None = None
    #: the classifier tilt measured on validation (a circular head with tilt "auto")
    tilt: ResidualTilt | None = None
    #: calibration, review thresholds and detector fitted on validation (``"fit"``,
    #: :func:`risc_tf.trust.fit_trust`) and measured on the rotated test set (``"test"``,
    #: :func:`risc_tf.trust.trust_report`)
    trust: dict[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION
    summary: dict[str, Any] | None = None
    plots: dict[str, str] | None = None

    def correct(self, method: str):
        """Whether ``method`` classified each rotated test image correctly (bool ``(N,)``)."""
        import numpy as np

        predicted = self.evaluation.rotated[method].predicted
        if predicted is None or self.test_labels is None:
            raise ValueError(f"this run kept no per-image predictions of {method}")
        return np.asarray(predicted) == np.asarray(self.test_labels)


# -- an aggregate over seeds -----------------------------------------------------------------

@record
class Spread(Record):
    """:func:`risc_tf.statistics.mean_std` over seeds."""

    mean: float | None
    std: float | None
    n: int
    values: list[float]


@record
class Interval(Record):
    """:func:`risc_tf.statistics.bootstrap_accuracy_ci`."""

    low: float
    high: float
    level: float
    resamples: int


@record
class MethodSpread(Record):
    rotated_acc: Spread
    rotated_acc_ci95: Interval
    rotated_auc: Spread
    upright_acc: Spread
    upright_auc: Spread


@record
class SweepSpread(Record):
    mean: Spread
    quarter_turn_mean: Spread
    off_grid_mean: Spread
    worst_acc: Spread


@record
class RotNetSpread(Record):
    OPTIONAL = ("sweep_refined_mae_deg", "sweep_median_deg", "sweep_p95_deg",
                "sweep_worst_mae_deg")
    acc: Spread
    nearest_acc: Spread
    mae_deg: Spread
    upright_acc: Spread
    sweep_mae_deg: Spread
    sweep_refined_mae_deg: Spread | None = None
    sweep_median_deg: Spread | None = None
    sweep_p95_deg: Spread | None = None
    sweep_worst_mae_deg: Spread | None = None


@record
class Comparison(Record):
    """:func:`risc_tf.verdicts.compare_paired` (or ``compare_scores``, without ``per_seed``)
    of one method against one baseline."""

    OPTIONAL = ("per_seed", "seeds", "seeds_p_holm")
    combined: dict[str, Any]
    p_holm: float
    verdict: str
    per_seed: list[dict[str, Any]] | None = None
    #: the seed-level test (absent from aggregates made before it)
    seeds: dict[str, Any] | None = None
    seeds_p_holm: float | None = None


@record
class AggregateSummary(Record):
    OPTIONAL = ("sweep_tests",)
    methods: dict[str, MethodSpread]
    rotnet: RotNetSpread
    sweep: dict[str, SweepSpread]
    tests: dict[str, dict[str, Comparison]]
    #: the same comparisons over the whole circle (runs that kept per-image sweep counts)
    sweep_tests: dict[str, dict[str, Comparison]] | None = None


@record
class AggregateResults(Record):
    """An aggregate of several seeds of one experiment (:func:`risc_tf.experiments.aggregate`)."""

    kind: str
    made: str
    runs: list[str]
    seeds: list[int]
    config: dict[str, Any]
    wall_time_s: list[float]
    commit: list[str | None]
    dirty: list[bool | None]
    command: list[str | None]
    aggregated_by: str
    machine: dict[str, Any]
    paper: dict[str, float] | None
    summary: AggregateSummary
    verdict: str
    schema_version: int = SCHEMA_VERSION


def load_results(path: str | os.PathLike) -> RunResults | AggregateResults:
    """A ``results.json`` (of a run or of an aggregate), of any known schema version.

    Raises
    ------
    ValueError
        Not readable JSON, a schema version newer than this risc_tf's, or fields
        that do not fit the schema (each message names the file).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not readable JSON: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a risc_tf results file")
    if "schema_version" not in data:
        data["schema_version"] = 0 if "rotated_test_acc" in (data.get("rotnet") or {}) else 1
    version = data["schema_version"]
    if version == 0:
        raise ValueError(f"{path} was written by risc_tf 0.1 (results schema version 0), which "
                         "this risc_tf does not read; its results.md beside it holds its numbers")
    if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise ValueError(f"{path} has results schema version {version!r}; this risc_tf reads "
                         f"versions 1 to {SCHEMA_VERSION} (a newer risc_tf wrote it?)")
    kind = AggregateResults if data.get("kind") == "aggregate" else RunResults
    try:
        return kind.from_json(data, where=str(path))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path} does not fit the results schema (version {version}): "
                         f"{err}") from err
