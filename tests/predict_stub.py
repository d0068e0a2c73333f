"""A stand-in for RISCPipeline in the predict tests: no TensorFlow, answers chosen by the test.

The top-left pixel of each image (its first value) is a code that selects the
RotNet's probabilities and the classifier's from :data:`CODES`, so a test
writes files whose answers it knows: turned exactly, off the angle set, unsure.
:func:`install` puts the stub where ``risc-tf predict`` loads its pipeline
(``risc_tf.pipeline.RISCPipeline.load``) without importing TensorFlow.
"""

from __future__ import annotations

import sys
import time
import types

import numpy as np

ANGLES = (0.0, 90.0, 180.0, 270.0)
#: code -> (RotNet probabilities over ANGLES, class probabilities)
CODES = {
    0: ([0.98, 0.01, 0.0, 0.01], [0.9, 0.1]),  # upright, sure
    1: ([0.01, 0.98, 0.01, 0.0], [0.2, 0.8]),  # turned 90, sure
    2: ([0.0, 0.01, 0.98, 0.01], [0.9, 0.1]),  # turned 180
    3: ([0.01, 0.0, 0.01, 0.98], [0.9, 0.1]),  # turned 270
    4: ([0.5, 0.5, 0.0, 0.0], [0.9, 0.1]),  # about 45: off the angle set
    5: ([0.0, 0.45, 0.55, 0.0], [0.9, 0.1]),  # about 140: off the angle set
    6: ([0.98, 0.01, 0.0, 0.01], [0.55, 0.45]),  # upright, unsure class
    7: ([0.1, 0.7, 0.1, 0.1], [0.9, 0.1]),  # turned 90, unsure rotation
}


def code_image(code: int, shape=(24, 20), seed: int = 0) -> np.ndarray:
    """A uint8 image whose answers are ``CODES[code]`` (values >= 8 elsewhere)."""
    image = np.random.default_rng(seed).integers(8, 256, shape, dtype=np.uint8)
    image.flat[0] = code
    return image


class _Model:
    def __init__(self, seed: int):
        self.weights = [np.random.default_rng(seed).standard_normal(5).astype(np.float32)]

    def get_weights(self):
        return self.weights


class StubPipeline:
    """The attributes and methods of RISCPipeline that predict uses."""

    angles = ANGLES

    def __init__(self, *, seed: int = 0, delay: float = 0.0, min_rotation_confidence=0.0,
                 min_class_probability=0.0):
        self.classes_ = np.array(["normal", "pneumonia"])
        self.min_rotation_confidence = min_rotation_confidence
        self.min_class_probability = min_class_probability
        self.rotnet, self.classifier = _Model(seed), _Model(seed + 1)
        self.delay, self.calls = delay, 0

    def _codes(self, images):
        return [int(np.asarray(im).flat[0]) if int(np.asarray(im).flat[0]) in CODES else 0
                for im in images]

    def predict_rotation(self, images, *, return_proba=False):
        proba = np.array([CODES[c][0] for c in self._codes(images)], np.float32)
        angles = np.asarray(ANGLES, np.float32)[proba.argmax(1)]
        return (angles, proba) if return_proba else angles

    def predict_details(self, images):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        codes = self._codes(images)
        p_rot = np.array([CODES[c][0] for c in codes], np.float32)
        p_cls = np.array([CODES[c][1] for c in codes], np.float32)
        index, rot = p_cls.argmax(1), p_rot.argmax(1)
        class_p, rot_p = p_cls.max(1), p_rot.max(1)
        review = (rot_p < self.min_rotation_confidence) | (class_p < self.min_class_probability)
        return types.SimpleNamespace(
            class_index=index, class_name=self.classes_[index], class_probability=class_p,
            rotation=np.asarray(ANGLES, np.float32)[rot], rotation_confidence=rot_p,
            review=review)

    def get_config(self):
        return {"angles": list(self.angles), "class_names": self.classes_.tolist(),
                "min_rotation_confidence": self.min_rotation_confidence,
                "min_class_probability": self.min_class_probability}


def install(monkeypatch=None, **options) -> list:
    """Make ``RISCPipeline.load(path)`` return a new :class:`StubPipeline` (``seed`` from the
    path's last character when it is a digit); returns the list of pipelines loaded."""
    loaded = []

    class RISCPipeline:
        @staticmethod
        def load(path, *, fold_batchnorm=False):
            tail = str(path)[-1]
            pipe = StubPipeline(seed=int(tail) if tail.isdigit() else 0, **options)
            pipe.loaded_folded = fold_batchnorm  # how the command asked for it
            loaded.append(pipe)
            return pipe

    module = types.ModuleType("risc_tf.pipeline")
    module.RISCPipeline = RISCPipeline
    import risc_tf.cli
    import risc_tf.commands.predict as command

    if monkeypatch is None:
        sys.modules["risc_tf.pipeline"] = module
        risc_tf.cli._load_tensorflow_quietly = lambda: None
        command.without_graph_rewrites = lambda: None
    else:  # no TensorFlow, and no process-wide setting left in the test process
        monkeypatch.setitem(sys.modules, "risc_tf.pipeline", module)
        monkeypatch.setattr(risc_tf.cli, "_load_tensorflow_quietly", lambda: None)
        monkeypatch.setattr(command, "without_graph_rewrites", lambda: None)
    return loaded
