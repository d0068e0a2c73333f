"""Out-of-distribution inputs: a Mahalanobis score on one layer's features of the classifier.

A classifier trained on chest X-rays still answers for a retina photograph or
a CT slice, often confidently. :class:`MahalanobisDetector` scores how unlike
the training images an image is (Lee et al. 2018):

1. features ``f(x)`` of one layer of the classifier
   (:func:`risc_tf.features.feature_model`), e.g. the penultimate ones:
   the input of its last, softmax layer; for risc_tf's models the globally
   pooled backbone features;
2. fitted on the training images (:func:`fit_mahalanobis`): one mean ``mu_c``
   per class and one shared covariance ``S`` of the features around their
   class means, shrunk towards a scaled identity (Ledoit-Wolf by default) so it
   can be inverted even with more features than images;
3. the score is the squared Mahalanobis distance to the nearest class mean,
   ``min_c (f - mu_c)^T S^-1 (f - mu_c)``: higher means more unusual;
4. the threshold is a percentile of the scores of in-distribution validation
   images (:meth:`MahalanobisDetector.with_threshold`, 95 by default: about 5 %
   of images like the training data are flagged, and anything further away than
   95 % of them). An image is flagged "unlike the training images" when its
   score is above the threshold.

Lee et al.'s input perturbation is not used; their multi-layer ensemble is
:mod:`risc_tf.ood_layers` (one such detector per layer: what a pipeline
carries). The score (:meth:`MahalanobisDetector.score`) is made of TensorFlow operations, so
the same code runs on numpy features and inside a traced graph (an export);
the fitted state is plain arrays (:meth:`~MahalanobisDetector.to_arrays`,
ready for ``np.savez`` or, as lists, JSON). :func:`ood_auroc` measures the
separation of in-distribution and other images.

References
----------
.. [1] K. Lee, K. Lee, H. Lee, J. Shin, "A simple unified framework for detecting
   out-of-distribution samples and adversarial attacks", NeurIPS 2018.
.. [2] O. Ledoit, M. Wolf, "A well-conditioned estimator for large-dimensional
   covariance matrices", Journal of Multivariate Analysis 88(2), 2004.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import tensorflow as tf
from sklearn.covariance import ledoit_wolf, shrunk_covariance
from sklearn.metrics import roc_auc_score

from risc_tf.validation import check_labels, check_number

__all__ = ["MahalanobisDetector", "fit_mahalanobis", "ood_auroc"]


def _finite_matrix(name: str, value, ndim: int) -> np.ndarray:
    array = np.asarray(value, np.float64)
    if array.ndim != ndim or array.size == 0 or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be a finite, non-empty {ndim}-D array; got shape "
                         f"{array.shape}")
    return array


@dataclasses.dataclass(frozen=True, eq=False)
class MahalanobisDetector:
    """Class means and a shared precision matrix of penultimate features, and a threshold.

    Make one with :func:`fit_mahalanobis`, not by hand (a pipeline's detector:
    :func:`risc_tf.ood_layers.fit_ood_detector`).

    Attributes
    ----------
    means : np.ndarray, (K, D)
        Feature mean of each training class.
    precision : np.ndarray, (D, D)
        Inverse of the shared, shrunk feature covariance (symmetric positive definite).
    shrinkage : float
        The covariance shrinkage used, in [0, 1].
    threshold : float or None
        Scores above it are flagged (None until :meth:`with_threshold`).
    percentile : float or None
        The percentile of in-distribution validation scores the threshold is.
    """

    means: np.ndarray
    precision: np.ndarray
    shrinkage: float
    threshold: float | None = None
    percentile: float | None = None

    def __post_init__(self):
        means = _finite_matrix("means", self.means, 2)
        precision = _finite_matrix("precision", self.precision, 2)
        if precision.shape != (means.shape[1],) * 2:
            raise ValueError(f"precision must be (D, D) = {(means.shape[1],) * 2} for means "
                             f"{means.shape}; got {precision.shape}")
        try:  # precision = L L^T, so (f - mu)^T P (f - mu) = |(f - mu) L|^2
            whitening = np.linalg.cholesky((precision + precision.T) / 2)
        except np.linalg.LinAlgError:
            raise ValueError("precision must be symmetric positive definite") from None
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "precision", precision)
        object.__setattr__(self, "shrinkage", check_number("shrinkage", self.shrinkage, 0, 1))
        set_threshold(self, self.threshold, self.percentile)
        object.__setattr__(self, "_whitening", whitening.astype(np.float32))
        object.__setattr__(self, "_centres", (means @ whitening).astype(np.float32))

    @property
    def num_features(self) -> int:
        """D, the feature width the detector expects."""
        return int(self.means.shape[1])

    def score(self, features):
        """Squared Mahalanobis distance of each feature row to the nearest class mean.

        TensorFlow operations (float32): a tensor gives a tensor (usable in a
        traced graph), an array gives a numpy array.

        Parameters
        ----------
        features : array_like or tf.Tensor, (N, D)

        Returns
        -------
        np.ndarray or tf.Tensor, (N,)
        """
        if isinstance(features, (tf.Tensor, tf.Variable)):
            if features.shape.rank != 2 or features.shape[-1] != self.num_features:
                raise ValueError(f"features must be (N, {self.num_features}); got shape "
                                 f"{features.shape}")
            return self._score(tf.cast(features, tf.float32))
        f = _finite_matrix("features", features, 2)
        if f.shape[1] != self.num_features:
            raise ValueError(f"features must be (N, {self.num_features}); got shape {f.shape}")
        return self._score(tf.constant(f, tf.float32)).numpy()

    def _score(self, f: tf.Tensor) -> tf.Tensor:
        z = tf.matmul(f, tf.constant(self._whitening))
        gaps = z[:, None, :] - tf.constant(self._centres)[None]
        return tf.reduce_min(tf.reduce_sum(tf.square(gaps), axis=-1), axis=1)

    def flag(self, features):
        """True where the score is above :attr:`threshold` ("unlike the training images").

        Raises
        ------
        ValueError
            No threshold yet (see :meth:`with_threshold`).
        """
        if self.threshold is None:
            raise ValueError("the detector has no threshold: call with_threshold(validation "
                             "features) first")
        return self.score(features) > self.threshold

    def with_threshold(self, features, *, percentile: float = 95.0) -> MahalanobisDetector:
        """A copy whose threshold is ``percentile`` of these in-distribution scores.

        Parameters
        ----------
        features : array_like, (N, D)
            Penultimate features of in-distribution validation images (not the
            training images: their scores are optimistically low).
        percentile : float in (0, 100], default 95
            About ``100 - percentile`` % of images like these will be flagged.
        """
        percentile = check_percentile(percentile)
        threshold = float(np.percentile(self.score(features), percentile))
        return dataclasses.replace(self, threshold=threshold, percentile=percentile)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as numpy arrays (for ``np.savez``; ``.tolist()`` each for JSON).

        An unset threshold or percentile is left out.
        """
        return {"means": self.means, "precision": self.precision,
                "shrinkage": np.float64(self.shrinkage),
                **threshold_arrays(self.threshold, self.percentile)}

    @classmethod
    def from_arrays(cls, arrays: Mapping) -> MahalanobisDetector:
        """Rebuild a detector from :meth:`to_arrays` (arrays, an ``np.load`` result or lists).

        Raises
        ------
        ValueError
            A missing key; means or precision of the wrong shape, not finite, or
            a precision that is not positive definite; shrinkage outside [0, 1];
            a negative or non-finite threshold; a percentile outside (0, 100].
        """
        missing = [k for k in ("means", "precision", "shrinkage") if k not in arrays]
        if missing:
            raise ValueError(f"detector state misses {', '.join(missing)}")
        return cls(np.asarray(arrays["means"]), np.asarray(arrays["precision"]),
                   read_scalar(arrays, "shrinkage"), read_scalar(arrays, "threshold"),
                   read_scalar(arrays, "percentile"))


def check_percentile(percentile) -> float:
    """``percentile`` as a float in (0, 100]; a ValueError naming it otherwise."""
    return check_number("percentile", percentile, 0, 100, include_minimum=False)


def set_threshold(detector, threshold: float | None, percentile: float | None) -> None:
    """Check a frozen detector's threshold (>= 0) and percentile (in (0, 100]), each when
    set, and store them on it (what both detectors' ``__post_init__`` call)."""
    if threshold is not None:
        object.__setattr__(detector, "threshold", check_number("threshold", threshold, 0))
    if percentile is not None:
        object.__setattr__(detector, "percentile", check_percentile(percentile))


def threshold_arrays(threshold: float | None, percentile: float | None) -> dict[str, np.ndarray]:
    """A detector's threshold and percentile as saved arrays, each left out when unset."""
    return {k: np.float64(v) for k, v in (("threshold", threshold), ("percentile", percentile))
            if v is not None}


def read_scalar(arrays: Mapping, key: str):
    """The one number ``arrays[key]`` holds (None when absent); a ValueError naming ``key``
    for anything but one number."""
    if key not in arrays:
        return None
    value = np.asarray(arrays[key])
    if value.shape != ():
        raise ValueError(f"{key} must be one number; got shape {value.shape}")
    return value.item()


def fit_mahalanobis(features, labels, *, shrinkage: float | None = None) -> MahalanobisDetector:
    """Fit class means and a shared shrunk covariance on training features (no threshold).

    Parameters
    ----------
    features : array_like, (N, D)
        Penultimate features of the training images
        (:func:`risc_tf.features.model_features`).
    labels : array_like, (N,)
        Their classes; a mean is fitted for each class present.
    shrinkage : float in [0, 1], optional
        ``S = (1 - a) C + a tr(C)/D I`` for the pooled within-class covariance
        ``C`` (scikit-learn's ``shrunk_covariance``); default: the Ledoit-Wolf estimate of ``a``.

    Returns
    -------
    MahalanobisDetector

    Raises
    ------
    ValueError
        Features not a finite ``(N, D)`` array, labels of another length, no more
        images than classes, a shrinkage outside [0, 1], or a covariance that
        cannot be inverted (use a shrinkage > 0).
    """
    f = _finite_matrix("features", features, 2)
    y = check_labels(labels, n=len(f))
    classes = np.unique(y)
    if len(f) <= len(classes):
        raise ValueError(f"fit_mahalanobis needs more images than classes; got {len(f)} "
                         f"images of {len(classes)} classes")
    means = np.stack([f[y == c].mean(axis=0) for c in classes])
    centred = f - means[np.searchsorted(classes, y)]
    if shrinkage is None:
        covariance, shrinkage = ledoit_wolf(centred, assume_centered=True)
    else:
        shrinkage = check_number("shrinkage", shrinkage, 0, 1)
        covariance = shrunk_covariance(centred.T @ centred / len(f), shrinkage)
    try:
        precision = np.linalg.inv(covariance)
        np.linalg.cholesky(precision)
    except np.linalg.LinAlgError:
        raise ValueError(
            f"the feature covariance (shrinkage {shrinkage:g}) cannot be inverted; use a "
            "shrinkage > 0 or more training images") from None
    return MahalanobisDetector(means, (precision + precision.T) / 2, float(shrinkage))


def ood_auroc(in_scores, out_scores) -> float:
    """Area under the ROC curve of telling other images (positive) from in-distribution ones.

    1 when every other image scores above every in-distribution image, 0.5 for
    a score that cannot tell them apart (``sklearn.metrics.roc_auc_score``).

    Examples
    --------
    >>> ood_auroc([1.0, 2.0, 3.0], [2.5, 4.0])
    0.8333333333333334
    """
    inside = np.asarray(in_scores, np.float64).reshape(-1)
    other = np.asarray(out_scores, np.float64).reshape(-1)
    for name, s in (("in_scores", inside), ("out_scores", other)):
        if s.size == 0 or not np.all(np.isfinite(s)):
            raise ValueError(f"{name} must be a non-empty array of finite scores")
    truth = np.r_[np.zeros(len(inside)), np.ones(len(other))]
    return float(roc_auc_score(truth, np.r_[inside, other]))
