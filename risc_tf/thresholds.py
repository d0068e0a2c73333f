"""Review thresholds chosen on validation data for a stated target.

A pipeline answers an image when its confidence (the RotNet's probability of
the predicted rotation, or the probability of the predicted class) is at least
a threshold, and leaves it to a person otherwise (selective classification,
see :func:`risc_tf.metrics.coverage_curve`). :func:`choose_threshold` picks
that threshold on validation data for one of two targets:

* ``min_accuracy=a``: the lowest threshold whose answered images are right at
  least a fraction ``a`` of the time, i.e. the largest coverage that keeps the
  answered accuracy at ``a`` (e.g. ``a`` = the upright classifier's validation
  accuracy: "answer a rotated image only as reliably as an upright one");
* ``coverage=c``: the highest threshold that still answers at least a fraction
  ``c`` of the images (e.g. "send at most 10 % to a person": ``c = 0.9``).

The threshold is always one of the validation confidences (or 0, when every
image can be answered), so on validation the recorded accuracy and coverage are
exactly what :func:`~risc_tf.metrics.coverage_curve` measures at it. The result,
a :class:`ReviewThreshold`, records the target and what was reached, for a
model card; thresholds read back (:meth:`ReviewThreshold.from_dict`) outside
[0, 1] are an error.

References
----------
.. [1] Y. Geifman, R. El-Yaniv, "Selective classification for deep neural
   networks", NeurIPS 2017 (a confidence threshold chosen on held-out data for a
   target risk or coverage).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping

import numpy as np

from risc_tf.metrics import coverage_curve
from risc_tf.validation import check_choice, check_int, check_number, check_probability

__all__ = ["TARGETS", "ReviewThreshold", "choose_threshold"]

#: The targets :func:`choose_threshold` can aim at.
TARGETS = ("min_accuracy", "coverage")


@dataclasses.dataclass(frozen=True)
class ReviewThreshold:
    """A review threshold and the validation target it was chosen for.

    Attributes
    ----------
    threshold : float
        In [0, 1]: images with confidence >= threshold are answered.
    target : {"min_accuracy", "coverage"}
        What the threshold was chosen for (see the module docs).
    target_value : float
        The accuracy or coverage asked for.
    accuracy : float or None
        Accuracy of the answered validation images (None if none is answered).
    coverage : float
        Fraction of validation images answered.
    n : int
        Number of validation images.
    met : bool
        Whether the target was reached (a ``min_accuracy`` no threshold reaches
        gives the highest threshold, answering the fewest images, and ``met=False``).
    description : str or None
        Where ``target_value`` comes from, in words (e.g. "upright classifier's
        validation accuracy"), for the model card.
    """

    threshold: float
    target: str
    target_value: float
    accuracy: float | None
    coverage: float
    n: int
    met: bool
    description: str | None = None

    def to_dict(self) -> dict:
        """A JSON-ready dict (what a saved pipeline stores)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> ReviewThreshold:
        """Read back :meth:`to_dict`'s output, checking every field.

        Raises
        ------
        ValueError
            A missing key, a threshold, accuracy, coverage or target value
            outside [0, 1], an unknown target.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a review threshold must be a dict; got {type(data).__name__}")
        missing = [f.name for f in dataclasses.fields(cls)
                   if f.name not in data and f.name != "description"]
        if missing:
            raise ValueError(f"review threshold misses {', '.join(missing)}")
        accuracy = data["accuracy"]
        description = data.get("description")
        if not isinstance(data["met"], bool):
            raise ValueError(f"met must be True or False; got {data['met']!r}")
        return cls(
            threshold=check_probability("threshold", data["threshold"]),
            target=check_choice("target", data["target"], TARGETS),
            target_value=check_probability("target_value", data["target_value"]),
            accuracy=None if accuracy is None else check_probability("accuracy", accuracy),
            coverage=check_probability("coverage", data["coverage"]),
            n=check_int("n", data["n"], 1),
            met=data["met"],
            description=None if description is None else str(description),
        )

    def describe(self) -> str:
        """One sentence for a model card."""
        goal = (f"answered accuracy >= {self.target_value:.3f}" if self.target == "min_accuracy"
                else f"coverage >= {self.target_value:.3f}")
        if self.description:
            goal += f" ({self.description})"
        reached = "n/a" if self.accuracy is None else f"{self.accuracy:.3f}"
        verdict = "" if self.met else "; target NOT reached"
        return (f"threshold {self.threshold:.4g} chosen on {self.n} validation images for "
                f"{goal}: accuracy {reached} at coverage {self.coverage:.3f}{verdict}")


def _check_inputs(correct, confidence) -> tuple[np.ndarray, np.ndarray]:
    ok = np.asarray(correct)
    conf = np.asarray(confidence, np.float64).reshape(-1)
    if ok.dtype != bool:
        if not (np.issubdtype(ok.dtype, np.number) and np.isin(ok, (0, 1)).all()):
            raise ValueError(f"correct must be booleans (or 0/1); got dtype {ok.dtype}")
        ok = ok.astype(bool)
    ok = ok.reshape(-1)
    if len(ok) != len(conf) or len(ok) == 0:
        raise ValueError(f"correct and confidence must be equal, non-empty; got {len(ok)} and "
                         f"{len(conf)} values")
    if not np.all(np.isfinite(conf)) or conf.min() < 0.0 or conf.max() > 1.0:
        raise ValueError("confidence must hold finite values in [0, 1]")
    return ok, conf


def choose_threshold(correct, confidence, *, min_accuracy: float | None = None,
                     coverage: float | None = None, description: str | None = None
                     ) -> ReviewThreshold:
    """Pick a review threshold on validation data for one stated target.

    Parameters
    ----------
    correct : array_like of bool, (N,)
        Whether each validation prediction was right.
    confidence : array_like of float, (N,)
        Its confidence, in [0, 1].
    min_accuracy : float in [0, 1], optional
        Target: the answered images' accuracy at least this, answering as many
        as possible.
    coverage : float in (0, 1], optional
        Target: answer at least this fraction, as surely as possible.
    description : str, optional
        Where the target value comes from (recorded, for the model card).

    Exactly one of ``min_accuracy`` and ``coverage`` is given.

    Returns
    -------
    ReviewThreshold
        Its ``accuracy`` and ``coverage`` are those of
        :func:`risc_tf.metrics.coverage_curve` at the threshold.

    Raises
    ------
    ValueError
        Neither or both targets, a target outside its range, ``correct`` and
        ``confidence`` of different lengths, empty, or confidences outside [0, 1].

    Warns
    -----
    UserWarning
        No threshold reaches ``min_accuracy`` (``met`` is then False).

    Examples
    --------
    >>> conf = [0.95, 0.9, 0.8, 0.7, 0.6]
    >>> right = [True, True, True, False, True]
    >>> choose_threshold(right, conf, min_accuracy=0.9).threshold
    0.8
    >>> choose_threshold(right, conf, coverage=0.8).threshold
    0.7
    """
    if (min_accuracy is None) == (coverage is None):
        raise ValueError("give exactly one target: min_accuracy= or coverage=")
    ok, conf = _check_inputs(correct, confidence)
    n = len(ok)
    # candidate thresholds: the distinct confidences, highest first; each answers the
    # images at or above it
    order = np.argsort(-conf, kind="stable")
    values, starts = np.unique(-conf[order], return_index=True)
    answered = np.append(starts[1:], n)  # images answered at each candidate
    accuracy = np.cumsum(ok[order])[answered - 1] / answered
    if min_accuracy is not None:
        target, value = "min_accuracy", check_probability("min_accuracy", min_accuracy)
        reaching = np.flatnonzero(accuracy >= value - 1e-12)
        met = reaching.size > 0
        pick = int(reaching[-1]) if met else 0
        if not met:
            warnings.warn(
                f"choose_threshold: no threshold reaches min_accuracy={value:g} on these "
                f"{n} images (best {accuracy.max():.3f}); using the highest confidence",
                stacklevel=2,
            )
    else:
        target = "coverage"
        value = check_number("coverage", coverage, 0.0, 1.0, include_minimum=False)
        needed = min(n, math.ceil(value * n - 1e-9))
        pick, met = int(np.flatnonzero(answered >= needed)[0]), True
    threshold = 0.0 if answered[pick] == n else float(-values[pick])
    curve = coverage_curve(ok, conf, [threshold])
    return ReviewThreshold(
        threshold=threshold, target=target, target_value=value, accuracy=curve["accuracy"][0],
        coverage=curve["coverage"][0], n=n, met=bool(met),
        description=None if description is None else str(description),
    )
