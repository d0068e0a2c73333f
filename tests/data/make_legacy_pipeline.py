"""Write tests/data/legacy_pipeline_0_1: a tiny pipeline saved by risc_tf 0.1 (commit 86687b0).

Run with that version on the path, e.g.::

    git worktree add /tmp/old86 86687b0
    PYTHONPATH=/tmp/old86 python tests/data/make_legacy_pipeline.py

It uses 0.1's own layers (InputNormalization, FastConv2D, FastBatchNormalization,
RotationOutput) and 0.1's RISCPipeline.save, so the files are exactly what 0.1
wrote; the models are tiny so the fixture stays a few kilobytes.
"""

from pathlib import Path

import keras
import numpy as np
from risc_tf.fastconv import FastBatchNormalization, FastConv2D

import risc_tf
from risc_tf.models import RotationOutput
from risc_tf.preprocessing import InputNormalization

keras.utils.set_random_seed(0)


def tiny(head):
    inputs = keras.Input((8, 8, 3), name="image")
    x = InputNormalization("unit", name="input_normalization")(inputs)
    x = FastConv2D(4, 3, padding="same", name="block1_conv1")(x)
    x = FastBatchNormalization(name="block1_bn1")(x)
    x = keras.layers.Activation("relu", name="block1_relu1")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, head(x))


rotnet = tiny(lambda x: RotationOutput((0, 90, 180, 270), name="rotation")(x))
classifier = tiny(lambda x: keras.layers.Dense(2, activation="softmax", name="predictions")(x))
for model in (rotnet, classifier):  # BatchNorm statistics away from the identity
    bn = model.get_layer("block1_bn1")
    bn.moving_mean.assign(np.linspace(-0.2, 0.2, 4))
    bn.moving_variance.assign(np.linspace(0.5, 2.0, 4))
folder = Path(__file__).parent / "legacy_pipeline_0_1"
pipe = risc_tf.RISCPipeline(rotnet, classifier, mode="soft", batch_size=7)
pipe.save(folder, overwrite=True)
x = np.random.default_rng(0).integers(0, 256, (5, 8, 8), dtype=np.uint8)
np.savez(folder / "expected.npz", images=x, proba=pipe.predict_proba(x),
         rotation=pipe.predict_rotation(x))
print("written", folder, sorted(p.name for p in folder.iterdir()))
