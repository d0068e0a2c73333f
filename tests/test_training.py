import keras
import numpy as np
import pytest
import tensorflow as tf

from risc_tf import (
    RISCPipeline,
    build_classifier,
    build_rotnet,
    preprocess_images,
    recalibrate_batchnorm,
    rotated_test_arrays,
    train_classifier,
    train_rotnet,
)


def _tiny_bn_model():
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(3, 1, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def test_recalibration_sets_moving_statistics_to_the_average_batch_statistics():
    model = _tiny_bn_model()
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc=i, size=(8, 4, 4, 2)).astype("float32") for i in range(3)]
    assert recalibrate_batchnorm(model, tf.data.Dataset.from_tensor_slices(batches), 10) == 1
    conv = model.get_layer("conv")
    feats = [conv(b).numpy().reshape(-1, 3) for b in batches]
    bn = model.get_layer("bn")
    assert np.allclose(bn.moving_mean.numpy(), np.mean([f.mean(0) for f in feats], 0), atol=1e-5)
    assert np.allclose(bn.moving_variance.numpy(), np.mean([f.var(0) for f in feats], 0), atol=1e-4)


def test_recalibration_of_a_model_without_batchnorm_is_a_no_op():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert recalibrate_batchnorm(model, tf.data.Dataset.from_tensor_slices([np.ones((1, 3))])) == 0


def test_training_arguments_are_validated():
    clf = build_classifier(2, backbone="small", input_shape=(8, 8, 3))
    x = np.zeros((4, 8, 8), np.uint8)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        train_classifier(clf, x, np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="both val_images and val_labels"):
        train_classifier(clf, x, np.zeros(4, int), x, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="epochs"):
        train_classifier(clf, x, np.zeros(4, int), epochs=0, verbose=0)
    with pytest.raises(ValueError, match="not a RotNet"):
        train_rotnet(clf, x, epochs=1, verbose=0)


def test_training_history_has_validation_curves():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 8, 8), dtype=np.uint8)
    rotnet = build_rotnet(input_shape=(8, 8, 3), backbone="small", hidden_units=(8, 8))
    history = train_rotnet(rotnet, x, x[:16], epochs=2, batch_size=16, verbose=0,
                           recalibration_batches=2, patience=None)
    assert set(history.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history.history["val_accuracy"]) == 2


@pytest.mark.slow
def test_rotnet_on_real_pneumonia_predicts_held_out_rotations(trained_pair, pneumonia):
    rotnet, classifier = trained_pair
    xt, yt = pneumonia["test"]
    xr, yr, angles = rotated_test_arrays(xt, yt, seed=0)
    pipe = RISCPipeline(rotnet, classifier)
    accuracy = np.mean(pipe.predict_rotation(xr) == angles)
    assert accuracy > 0.8, accuracy  # chance is 0.25
    # RISC recovers the upright image for most of the rotated batch
    upright = preprocess_images(xt)
    recovered = np.mean([np.allclose(c, u, atol=1e-6) for c, u in zip(pipe.correct(xr), upright)])
    assert recovered > 0.8, recovered
    # and the classifier learned the task (majority class rate is 0.625)
    assert pipe.score(xr, yr) > 0.7
