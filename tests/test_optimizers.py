import keras
import numpy as np
import pytest

from risc_tf.fast import FusedAdam


def _model(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((6, 6, 2)),
        keras.layers.Conv2D(4, 3, use_bias=False, name="conv"),  # a bias before BN has no gradient
        keras.layers.BatchNormalization(),
        keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax"),
    ])


@pytest.mark.parametrize("kwargs", [{}, {"beta_1": 0.8, "epsilon": 1e-4}, {"amsgrad": True}])
@pytest.mark.slow
def test_fused_adam_matches_keras_adam(kwargs):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6, 6, 2)).astype("float32")
    y = rng.integers(0, 3, 32)
    weights = []
    for optimizer in (keras.optimizers.Adam(1e-2, **kwargs), FusedAdam(1e-2, **kwargs)):
        model = _model(0)
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
        weights.append(model.get_weights())
    moved = np.abs(weights[0][0] - _model(0).get_weights()[0]).max()
    assert moved > 1e-2  # training changed the weights
    for a, b in zip(*weights):
        assert np.allclose(a, b, rtol=1e-5, atol=1e-6)


def test_fused_adam_serialises():
    opt = FusedAdam(3e-4, beta_2=0.99)
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert isinstance(clone, FusedAdam) and clone.beta_2 == 0.99
