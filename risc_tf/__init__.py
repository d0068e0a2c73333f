"""risc_tf: rotation-invariant self-supervised classification (RISC) with Keras 3.

The method, in the order of the modules:

data (:mod:`risc_tf.data` for MedMNIST, :mod:`risc_tf.io` for a user's own
image files) -> preprocessing (:mod:`risc_tf.preprocessing`) -> rotation
(:mod:`risc_tf.angles`, :mod:`risc_tf.rotation`) -> tf.data pipelines
(:mod:`risc_tf.datasets`) -> models (:mod:`risc_tf.models`, fast CPU layers in
:mod:`risc_tf.fast`, files in :mod:`risc_tf.saving`) -> training
(:mod:`risc_tf.training`) -> pipeline (:mod:`risc_tf.pipeline`, serving in
:mod:`risc_tf.export`) -> evaluation (:mod:`risc_tf.evaluation`,
:mod:`risc_tf.statistics`, :mod:`risc_tf.experiments`) -> explanation
(:mod:`risc_tf.explain`). The ``risc-tf`` command line (:mod:`risc_tf.cli`)
only wires these together.

Importing the package is cheap: each public name below is imported from its
module on first use (TensorFlow loads when a name that needs it is first
used), so ``risc-tf --help`` starts without TensorFlow.

TensorFlow's C++ log lines (start-up, ``cuInit``, graph optimizers) are kept
quiet unless ``TF_CPP_MIN_LOG_LEVEL`` is set before risc_tf is imported (see
:mod:`risc_tf.tf_logs`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from risc_tf._version import __version__
from risc_tf.lazy import lazy_exports
from risc_tf.tf_logs import quiet_by_default

quiet_by_default()  # before anything imports TensorFlow

#: public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # data
    "dataset_info": "risc_tf.catalog",
    "download_medmnist": "risc_tf.download",
    "flags_2d": "risc_tf.catalog",
    "load_medmnist": "risc_tf.data",
    "load_splits": "risc_tf.data",
    "load_images": "risc_tf.io",
    "iter_images": "risc_tf.io",
    # preprocessing
    "check_images": "risc_tf.preprocessing",
    "preprocess_images": "risc_tf.preprocessing",
    # rotation
    "DEFAULT_ANGLES": "risc_tf.angles",
    "FILLS": "risc_tf.angles",
    "angles_every": "risc_tf.angles",
    "check_angles": "risc_tf.angles",
    "match_angles": "risc_tf.angles",
    "refine_angle": "risc_tf.heads",
    "counter_rotate": "risc_tf.rotation",
    "rotate": "risc_tf.rotation",
    "rotate_all": "risc_tf.rotation",
    # tf.data
    "classification_dataset": "risc_tf.datasets",
    "rotated_test_arrays": "risc_tf.datasets",
    "rotated_test_dataset": "risc_tf.datasets",
    "rotation_dataset": "risc_tf.datasets",
    # models
    "BACKBONES": "risc_tf.backbones",
    "RotationOutput": "risc_tf.models",
    "build_classifier": "risc_tf.models",
    "build_rotnet": "risc_tf.models",
    "model_image_size": "risc_tf.models",
    "rotnet_angles": "risc_tf.models",
    "FoldedBatchNormalization": "risc_tf.fast",
    "fold_batchnorm": "risc_tf.fast",
    "load_model": "risc_tf.saving",
    "save_model": "risc_tf.saving",
    # training
    "BatchNormRecalibration": "risc_tf.recalibration",
    "recalibrate_batchnorm": "risc_tf.recalibration",
    "train_classifier": "risc_tf.training",
    "train_rotnet": "risc_tf.training",
    # pipeline and evaluation
    "RISCPipeline": "risc_tf.pipeline",
    "ReproduceConfig": "risc_tf.experiments",
    "reproduce": "risc_tf.experiments",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from risc_tf.angles import (
        DEFAULT_ANGLES,
        FILLS,
        angles_every,
        check_angles,
        match_angles,
    )
    from risc_tf.backbones import BACKBONES
    from risc_tf.catalog import dataset_info, flags_2d
    from risc_tf.data import load_medmnist, load_splits
    from risc_tf.datasets import (
        classification_dataset,
        rotated_test_arrays,
        rotated_test_dataset,
        rotation_dataset,
    )
    from risc_tf.download import download_medmnist
    from risc_tf.experiments import ReproduceConfig, reproduce
    from risc_tf.fast import FoldedBatchNormalization, fold_batchnorm
    from risc_tf.heads import refine_angle
    from risc_tf.io import iter_images, load_images
    from risc_tf.models import (
        RotationOutput,
        build_classifier,
        build_rotnet,
        model_image_size,
        rotnet_angles,
    )
    from risc_tf.pipeline import RISCPipeline
    from risc_tf.preprocessing import check_images, preprocess_images
    from risc_tf.recalibration import BatchNormRecalibration, recalibrate_batchnorm
    from risc_tf.rotation import counter_rotate, rotate, rotate_all
    from risc_tf.saving import load_model, save_model
    from risc_tf.training import train_classifier, train_rotnet
