"""risc_tf: rotation-invariant self-supervised classification (RISC) with Keras 3.

The method, in the order of the modules:

data (:mod:`risc_tf.data`) -> preprocessing (:mod:`risc_tf.preprocessing`) ->
rotation (:mod:`risc_tf.rotation`) -> tf.data pipelines (:mod:`risc_tf.datasets`) ->
models (:mod:`risc_tf.models`) -> training (:mod:`risc_tf.training`) ->
pipeline (:mod:`risc_tf.pipeline`; :mod:`risc_tf.folding` for deployment) ->
evaluation (:mod:`risc_tf.evaluation`, :mod:`risc_tf.reproduce`) -> explanation
(:mod:`risc_tf.explain`). The ``risc-tf``
command line (:mod:`risc_tf.cli`) only wires these together.
"""

__version__ = "0.1.0"

from risc_tf.data import dataset_info, download_medmnist, flags_2d, load_medmnist
from risc_tf.datasets import (
    classification_dataset,
    rotated_test_arrays,
    rotated_test_dataset,
    rotation_dataset,
)
from risc_tf.folding import FoldedBatchNormalization, fold_batchnorm
from risc_tf.models import (
    BACKBONES,
    RotationOutput,
    build_classifier,
    build_rotnet,
    model_image_size,
    rotnet_angles,
)
from risc_tf.pipeline import RISCPipeline
from risc_tf.preprocessing import InputNormalization, check_images, preprocess_images
from risc_tf.reproduce import ReproduceConfig, reproduce
from risc_tf.rotation import (
    DEFAULT_ANGLES,
    angles_every,
    check_angles,
    counter_rotate,
    rotate,
    rotate_all,
)
from risc_tf.training import (
    BatchNormRecalibration,
    recalibrate_batchnorm,
    train_classifier,
    train_rotnet,
)

__all__ = [
    "BACKBONES",
    "DEFAULT_ANGLES",
    "BatchNormRecalibration",
    "FoldedBatchNormalization",
    "InputNormalization",
    "RISCPipeline",
    "ReproduceConfig",
    "RotationOutput",
    "angles_every",
    "build_classifier",
    "build_rotnet",
    "check_angles",
    "check_images",
    "classification_dataset",
    "counter_rotate",
    "dataset_info",
    "download_medmnist",
    "flags_2d",
    "fold_batchnorm",
    "load_medmnist",
    "model_image_size",
    "preprocess_images",
    "recalibrate_batchnorm",
    "reproduce",
    "rotate",
    "rotate_all",
    "rotated_test_arrays",
    "rotated_test_dataset",
    "rotation_dataset",
    "rotnet_angles",
    "train_classifier",
    "train_rotnet",
]
