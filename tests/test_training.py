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


X8 = np.random.default_rng(0).integers(0, 256, (32, 8, 8), dtype=np.uint8)
Y8 = np.arange(32) % 2


@pytest.fixture()
def tiny_classifier():
    keras.utils.set_random_seed(0)
    return build_classifier(2, backbone="small", input_shape=(8, 8, 3))


@pytest.mark.parametrize("kwargs, message", [
    ({"labels": np.array([0, 1, 2, 0] * 8)}, r"labels must lie in \[0, 2\)"),
    ({"labels": np.zeros(5, int)}, "32 images but 5 labels"),
    ({"val_images": X8}, "both val_images and val_labels"),
    ({"epochs": 0}, "epochs must be an int >= 1"),
    ({"optimizer": "adamm"}, "unknown optimizer 'adamm'"),
    ({"optimizer": 3}, "optimizer must be None, a Keras optimizer name"),
    ({"learning_rate": -1e-3}, "learning_rate must be a finite number > 0"),
    ({"learning_rate": 0.0}, "learning_rate must be a finite number > 0"),
    ({"lr_schedule": "step"}, "lr_schedule must be one of"),
    ({"optimizer": keras.optimizers.SGD(0.1), "learning_rate": 0.1}, "optimizer instance"),
    ({"class_weight": "balance"}, "class_weight must be one of 'balanced'"),
    ({"class_weight": {0: 1.0}}, r"missing \[1\]"),
    ({"class_weight": {0: 1.0, 1: 2.0, 5: 1.0}}, "class_weight key must be an int in"),
    ({"class_weight": {0: 1.0, 1: -2.0}}, r"class_weight\[1\] must be a finite number > 0"),
    ({"label_smoothing": 1.0}, r"label_smoothing must be a finite number in \[0, 1\)"),
    ({"augment": "heavy"}, "augment must be None, one of \\['light'\\]"),
    ({"augment": 3}, "augment must be None"),
    ({"tilt": -5}, "tilt must be"),
    ({"fill": "black"}, "fill must be one of"),
    ({"batch_size": True}, "batch_size must be an int"),
])
def test_bad_training_options_fail_before_training(tiny_classifier, kwargs, message):
    args = {"labels": Y8, **kwargs}
    labels = args.pop("labels")
    before = [w.copy() for w in tiny_classifier.get_weights()]
    with pytest.raises(ValueError, match=message):
        train_classifier(tiny_classifier, X8, labels, epochs=args.pop("epochs", 1), verbose=0,
                         **args)
    assert all(np.array_equal(a, b) for a, b in zip(before, tiny_classifier.get_weights()))


def test_rotnet_options_are_validated(tiny_classifier):
    with pytest.raises(ValueError, match="records no rotation angles"):
        train_rotnet(tiny_classifier, X8, epochs=1, verbose=0)
    rotnet = build_rotnet((8, 8, 3), backbone="small", hidden_units=(4, 4))
    with pytest.raises(ValueError, match="jitter of 50 deg is larger than half the smallest gap"):
        train_rotnet(rotnet, X8, jitter=50, epochs=1, verbose=0)


def test_optimizers_and_schedules_follow_keras_conventions():
    from risc_tf.fast import FusedAdam
    from risc_tf.training import resolve_optimizer

    assert isinstance(resolve_optimizer(), FusedAdam)
    assert isinstance(resolve_optimizer("adam", 0.01), FusedAdam)
    assert isinstance(resolve_optimizer("adamw"), keras.optimizers.AdamW)
    sgd = resolve_optimizer("sgd", 0.1)
    assert isinstance(sgd, keras.optimizers.SGD) and float(sgd.learning_rate) == pytest.approx(0.1)
    cosine = resolve_optimizer(None, 0.1, "cosine", total_steps=10)
    schedule = cosine._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    assert float(schedule(0)) == pytest.approx(0.1) and float(schedule(10)) == pytest.approx(0.0)
    decay = keras.optimizers.schedules.ExponentialDecay(0.1, 5, 0.5)
    assert resolve_optimizer("sgd", decay)._learning_rate is decay
    mine = keras.optimizers.RMSprop(0.01)
    assert resolve_optimizer(mine) is mine


def test_class_weights_balanced_and_explicit():
    from risc_tf.training import resolve_class_weight

    y = np.array([0] * 30 + [1] * 10)
    balanced = resolve_class_weight("balanced", y, 2)
    assert balanced == pytest.approx({0: 40 / 60, 1: 40 / 20})
    assert resolve_class_weight({0: 1, 1: 3.0}, y, 2) == {0: 1.0, 1: 3.0}
    assert resolve_class_weight(None, y, 2) is None


@pytest.mark.slow
def test_training_options_change_training(tiny_classifier):
    """Each option reaches model.fit: the loss of a first epoch differs from the default's."""
    start = [w.copy() for w in tiny_classifier.get_weights()]

    def first_loss(**options):
        tiny_classifier.set_weights(start)
        history = train_classifier(tiny_classifier, X8, Y8[:32] * 0 + (np.arange(32) < 8),
                                   epochs=1, batch_size=16, verbose=0, patience=None,
                                   recalibrate_bn=False, **options)
        return history.history["loss"][0]

    default = first_loss()
    assert first_loss() == pytest.approx(default, rel=1e-5)  # seeded: repeatable
    for options in ({"class_weight": "balanced"}, {"label_smoothing": 0.2},
                    {"augment": "light"}, {"optimizer": "sgd"}, {"tilt": 20.0},
                    {"fill": "circle", "tilt": 20.0}):
        assert first_loss(**options) != pytest.approx(default, rel=1e-4), options
    first_loss(lr_schedule="cosine")  # decays to 0 over the training's 2 steps
    assert float(tiny_classifier.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)
    first_loss()
    assert float(tiny_classifier.optimizer.learning_rate) == pytest.approx(1e-3)


@pytest.mark.slow
def test_user_callbacks_run_beside_the_built_in_ones(tiny_classifier):
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(sorted(logs))

    history = train_classifier(tiny_classifier, X8, Y8, X8, Y8, epochs=2, batch_size=16,
                               verbose=0, recalibration_batches=1, callbacks=[Record()],
                               augment=keras.Sequential([keras.layers.RandomContrast(0.1)]))
    assert len(seen) == 2 and "val_accuracy" in seen[0]
    assert len(history.history["val_accuracy"]) == 2


@pytest.mark.slow
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
    xr, yr, angles = rotated_test_arrays(xt, yt, seed=0, image_size=32)
    pipe = RISCPipeline(rotnet, classifier)
    accuracy = np.mean(pipe.predict_rotation(xr) == angles)
    assert accuracy > 0.8, accuracy  # chance is 0.25
    # RISC recovers the upright image for most of the rotated batch
    upright = preprocess_images(xt)
    recovered = np.mean([np.allclose(c, u, atol=1e-6) for c, u in zip(pipe.correct(xr), upright)])
    assert recovered > 0.8, recovered
    # and the classifier learned the task (majority class rate is 0.625)
    assert pipe.score(xr, yr) > 0.7


@pytest.mark.slow
def test_mixed_bfloat16_builds_and_trains_with_float32_outputs():
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(0)
        rotnet = build_rotnet((8, 8, 3), backbone="small", hidden_units=(4, 4))
        clf = build_classifier(2, (8, 8, 3), backbone="small", weights=rotnet)
        with pytest.warns(UserWarning, match="FastBatchNormalization runs the stock Keras"):
            history = train_classifier(clf, X8, Y8, epochs=1, batch_size=16, verbose=0,
                                       recalibration_batches=1)
        assert np.isfinite(history.history["loss"][0])
        out = clf(preprocess_images(X8[:2], 8))
        assert out.dtype == "float32" and rotnet(preprocess_images(X8[:2], 8)).dtype == "float32"
        assert clf.get_layer("block1_conv1").compute_dtype == "bfloat16"
        assert all(v.dtype == "float32" for v in clf.trainable_variables)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def test_an_unsupported_strategy_is_refused_before_training():
    import tensorflow as tf

    strategy = tf.distribute.experimental.CentralStorageStrategy()
    with strategy.scope():
        clf = build_classifier(2, (8, 8, 3), backbone="small")
        with pytest.raises(ValueError, match="cannot train under CentralStorageStrategy"):
            train_classifier(clf, X8, Y8, epochs=1, verbose=0)
