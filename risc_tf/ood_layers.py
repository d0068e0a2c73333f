"""The pipeline's detector of unlike images: Mahalanobis scores on several layers.

A retina photograph, a CT slice or a drawing put through a chest X-ray classifier
may end up with penultimate features close to some X-ray's: by the last layer the
classifier has thrown away much of what makes an image an X-ray (its grey levels,
its texture), keeping what tells its classes apart. Earlier layers still see
those. :class:`LayerwiseDetector` scores each image on several layers of the
classifier (Lee et al. 2018's feature ensemble, combined without any example of
an unlike image):

1. for each layer ``l`` (by default the backbone's stage outputs,
   :func:`risc_tf.features.stage_layers`, and the penultimate features), the
   features ``f_l(x)`` (the layer's output averaged over its spatial positions)
   and a :class:`~risc_tf.ood.MahalanobisDetector` fitted on the training
   images: ``d_l(x)``, the squared Mahalanobis distance to the nearest class mean;
2. each layer's distance is divided by its scale ``s_l``, the same percentile of
   ``d_l`` over the in-distribution validation images, so that every layer
   counts alike whatever its width;
3. the score is the largest of these ratios, ``max_l d_l(x) / s_l``: an image
   is as unusual as its most unusual layer says;
4. the threshold is that percentile of the validation images' scores (95 by
   default: about 5 % of images like the training data are flagged).

A detector on the penultimate features alone (a
:class:`~risc_tf.ood.MahalanobisDetector`, the only kind risc_tf 0.2.0 fitted,
whose saved arrays still load with their score unchanged) is the special case
of one layer with scale 1 (:meth:`LayerwiseDetector.of`).
The score is made of TensorFlow operations, so it runs inside the fused
pipeline's traced graph and its exports.

References
----------
.. [1] K. Lee, K. Lee, H. Lee, J. Shin, "A simple unified framework for detecting
   out-of-distribution samples and adversarial attacks", NeurIPS 2018.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from risc_tf.features import PENULTIMATE, layer_features, stage_layers
from risc_tf.ood import (
    MahalanobisDetector,
    check_percentile,
    fit_mahalanobis,
    read_scalar,
    set_threshold,
    threshold_arrays,
)
from risc_tf.validation import check_int, check_number

__all__ = ["LayerwiseDetector", "fit_ood_detector", "ood_layers"]


@dataclasses.dataclass(frozen=True, eq=False)
class LayerwiseDetector:
    """Mahalanobis detectors on several layers' features, combined by their largest ratio.

    Make one with :func:`fit_ood_detector`, not by hand.

    Attributes
    ----------
    layers : tuple of str
        The classifier's layers read, in order (:data:`~risc_tf.features.PENULTIMATE`
        for the penultimate features).
    detectors : tuple of MahalanobisDetector
        One per layer, fitted on the training images' features of that layer.
    scales : tuple of float
        Each layer's distance is divided by its scale (a percentile of its
        validation distances; 1 for a one-layer detector saved before scales).
    threshold : float or None
        Scores above it are flagged (None until :meth:`with_threshold`).
    percentile : float or None
        The percentile of in-distribution validation scores the threshold is.
    """

    layers: tuple[str, ...]
    detectors: tuple[MahalanobisDetector, ...]
    scales: tuple[float, ...]
    threshold: float | None = None
    percentile: float | None = None

    def __post_init__(self):
        layers, detectors = tuple(self.layers), tuple(self.detectors)
        scales = tuple(check_number("scale", s, 0, include_minimum=False) for s in self.scales)
        if not layers or not all(isinstance(n, str) and n for n in layers):
            raise ValueError(f"layers must be non-empty layer names; got {self.layers!r}")
        if len(set(layers)) != len(layers):
            raise ValueError(f"layers must not repeat; got {layers}")
        if not all(isinstance(d, MahalanobisDetector) for d in detectors):
            raise ValueError("detectors must be risc_tf.ood.MahalanobisDetector objects")
        if not len(layers) == len(detectors) == len(scales):
            raise ValueError(f"one detector and one scale per layer: {len(layers)} layers, "
                             f"{len(detectors)} detectors, {len(scales)} scales")
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "detectors", detectors)
        object.__setattr__(self, "scales", scales)
        set_threshold(self, self.threshold, self.percentile)

    @classmethod
    def of(cls, detector: MahalanobisDetector) -> LayerwiseDetector:
        """A one-layer detector on the penultimate features: ``detector``'s own score and
        threshold (how a :class:`~risc_tf.ood.MahalanobisDetector` joins a pipeline)."""
        if not isinstance(detector, MahalanobisDetector):
            raise ValueError(f"ood must be a risc_tf.ood_layers.LayerwiseDetector or a "
                             f"risc_tf.ood.MahalanobisDetector; got {type(detector).__name__}")
        return cls((PENULTIMATE,), (detector,), (1.0,), detector.threshold, detector.percentile)

    @property
    def num_features(self) -> tuple[int, ...]:
        """The feature width each layer's detector expects."""
        return tuple(d.num_features for d in self.detectors)

    def layer_scores(self, features: Sequence):
        """Each layer's distance divided by its scale, ``(L, N)`` (tensors for tensors)."""
        if len(features) != len(self.layers):
            raise ValueError(f"features must hold one array per layer {self.layers}; got "
                             f"{len(features)}")
        ratios = [d.score(f) / s for d, f, s in zip(self.detectors, features, self.scales)]
        if isinstance(ratios[0], tf.Tensor):
            return tf.stack(ratios)
        return np.stack(ratios)

    def score(self, features: Sequence):
        """How unlike the training images each image is: the largest of its layer ratios.

        Parameters
        ----------
        features : sequence of array_like or tf.Tensor
            One ``(N, D_l)`` feature array per layer, in the order of :attr:`layers`
            (:func:`risc_tf.features.layer_features`).

        Returns
        -------
        np.ndarray or tf.Tensor, (N,)
            TensorFlow operations: tensors give a tensor, arrays an array.
        """
        ratios = self.layer_scores(features)
        if isinstance(ratios, tf.Tensor):
            return tf.reduce_max(ratios, axis=0)
        return ratios.max(axis=0)

    def flag(self, features: Sequence):
        """True where the score is above :attr:`threshold` ("unlike the training images")."""
        if self.threshold is None:
            raise ValueError("the detector has no threshold: call with_threshold(validation "
                             "features) first")
        return self.score(features) > self.threshold

    def with_threshold(self, features: Sequence, *, percentile: float = 95.0) -> LayerwiseDetector:
        """A copy scaled and thresholded on in-distribution validation features.

        Each layer's scale becomes ``percentile`` of its distances on ``features``,
        then the threshold ``percentile`` of the combined scores.

        Parameters
        ----------
        features : sequence of array_like
            One ``(N, D_l)`` array per layer of in-distribution validation images
            (not the training images: their distances are optimistically low).
        percentile : float in (0, 100], default 95
            About ``100 - percentile`` % of images like these will be flagged.
        """
        percentile = check_percentile(percentile)
        unscaled = dataclasses.replace(self, scales=(1.0,) * len(self.layers))
        distances = unscaled.layer_scores(features)
        scales = np.percentile(distances, percentile, axis=1)
        if not np.all(scales > 0):
            raise ValueError("the validation distances of a layer are all 0: the detector "
                             "cannot be scaled on these features")
        scaled = dataclasses.replace(self, scales=tuple(float(s) for s in scales))
        threshold = float(np.percentile(scaled.score(features), percentile))
        return dataclasses.replace(scaled, threshold=threshold, percentile=percentile)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as numpy arrays (for ``np.savez``; ``.tolist()`` each for JSON)."""
        out = {"layers": np.asarray(self.layers, str), "scales": np.asarray(self.scales)}
        for i, detector in enumerate(self.detectors):
            state = dataclasses.replace(detector, threshold=None, percentile=None).to_arrays()
            out.update({f"layer{i}_{k}": v for k, v in state.items()})
        return {**out, **threshold_arrays(self.threshold, self.percentile)}

    @classmethod
    def from_arrays(cls, arrays: Mapping) -> LayerwiseDetector:
        """Rebuild a detector from :meth:`to_arrays`, or from a
        :meth:`~risc_tf.ood.MahalanobisDetector.to_arrays` (a one-layer detector).

        Raises
        ------
        ValueError
            A missing key, or any value :class:`LayerwiseDetector` and
            :class:`~risc_tf.ood.MahalanobisDetector` refuse (named).
        """
        if "layers" not in arrays:
            return cls.of(MahalanobisDetector.from_arrays(arrays))
        layers = tuple(str(n) for n in np.asarray(arrays["layers"]).reshape(-1))
        missing = [k for k in ("scales", *(f"layer{i}_means" for i in range(len(layers))))
                   if k not in arrays]
        if missing:
            raise ValueError(f"detector state misses {', '.join(missing)}")
        detectors = tuple(MahalanobisDetector.from_arrays(
            {k.split("_", 1)[1]: v for k, v in arrays.items() if k.startswith(f"layer{i}_")})
            for i in range(len(layers)))
        return cls(layers, detectors, tuple(np.asarray(arrays["scales"], np.float64).reshape(-1)),
                   read_scalar(arrays, "threshold"), read_scalar(arrays, "percentile"))


def ood_layers(classifier: keras.Model, layers: str | Sequence[str] = "stages") -> tuple[str, ...]:
    """The layers a detector reads: ``"stages"`` (the stage outputs of
    :func:`~risc_tf.features.stage_layers`, then the penultimate features),
    ``"penultimate"`` (those alone) or a sequence of layer names, as given."""
    if layers == "stages":
        return (*stage_layers(classifier), PENULTIMATE)
    if layers == PENULTIMATE:
        return (PENULTIMATE,)
    if isinstance(layers, str) or not isinstance(layers, Sequence) or not layers:
        raise ValueError(f"layers must be 'stages', 'penultimate' or a non-empty sequence of "
                         f"layer names; got {layers!r}")
    return tuple(layers)


def fit_ood_detector(classifier: keras.Model, train_images, train_labels, val_images, *,
                     layers: str | Sequence[str] = "stages", percentile: float = 95.0,
                     shrinkage: float | None = None, batch_size: int = 256) -> LayerwiseDetector:
    """Fit a :class:`LayerwiseDetector` on the training images, scaled and thresholded on
    the validation images.

    Parameters
    ----------
    classifier : keras.Model
        The pipeline's upright classifier.
    train_images, val_images : array_like
        Model-input images (see :func:`risc_tf.features.layer_features`); upright.
    train_labels : array_like
        One class mean per class, per layer.
    layers : "stages", "penultimate" or sequence of str, default "stages"
        The layers read (:func:`ood_layers`).
    percentile : float in (0, 100], default 95
        Of the validation scores: each layer's scale and the threshold
        (:meth:`LayerwiseDetector.with_threshold`).
    shrinkage : float in [0, 1], optional
        Of each layer's covariance (:func:`~risc_tf.ood.fit_mahalanobis`).
    batch_size : int, default 256

    Returns
    -------
    LayerwiseDetector

    Examples
    --------
    >>> from risc_tf.models import build_classifier
    >>> clf = build_classifier(2, backbone="small")
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((40, 32, 32, 3), dtype=np.float32)
    >>> detector = fit_ood_detector(clf, x[:30], np.arange(30) % 2, x[30:])
    >>> detector.layers
    ('block2_relu2', 'penultimate')
    """
    batch_size = check_int("batch_size", batch_size)
    names = ood_layers(classifier, layers)
    train = layer_features(classifier, train_images, names, batch_size=batch_size)
    detectors = tuple(fit_mahalanobis(f, train_labels, shrinkage=shrinkage) for f in train)
    return LayerwiseDetector(names, detectors, (1.0,) * len(names)).with_threshold(
        layer_features(classifier, val_images, names, batch_size=batch_size),
        percentile=percentile)
