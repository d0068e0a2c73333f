"""deterministic=True (issue 23): bit-identical repeats, what it refuses, seeds, the CLI option."""

import dataclasses
import inspect
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from risc_tf import build_classifier, build_rotnet, train_classifier, train_rotnet
from risc_tf.determinism import (
    check_deterministic,
    op_determinism,
    op_determinism_enabled,
    unseeded_layers,
)
from risc_tf.training import FitOptions
from tests.conftest import DATA_ROOT, requires_data
from tests.test_cli import ROOT, _error

X8 = np.random.default_rng(0).integers(0, 256, (32, 8, 8), dtype=np.uint8)
Y8 = np.arange(32) % 2
TINY = dict(epochs=1, batch_size=16, verbose=0, recalibration_batches=1)


def _weights(model) -> list[np.ndarray]:
    return [w.copy() for w in model.get_weights()]


def _same(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.fixture()
def tiny():
    keras.utils.set_random_seed(0)
    return {"classifier": build_classifier(2, (8, 8, 3), backbone="small"),
            "rotnet": build_rotnet((8, 8, 3), backbone="small", hidden_units=(4, 4))}


def _train(kind, models, **options):
    if kind == "rotnet":
        return train_rotnet(models["rotnet"], X8, **{**TINY, **options})
    return train_classifier(models["classifier"], X8, Y8, **{**TINY, **options})


# --- bad input: a clear error before any training ---------------------------------------------

@pytest.mark.parametrize("kind", ["rotnet", "classifier"])
@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "0", True, None])
def test_a_seed_that_is_not_a_non_negative_int_fails_before_training(tiny, kind, seed):
    before = _weights(tiny[kind])
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 4294967295\]; got "):
        _train(kind, tiny, seed=seed, deterministic=True)
    assert _same(before, tiny[kind].get_weights())


@pytest.mark.parametrize("kind", ["rotnet", "classifier"])
@pytest.mark.parametrize("value", ["yes", 1, None])
def test_deterministic_must_be_true_or_false(tiny, kind, value):
    with pytest.raises(ValueError, match="deterministic must be True or False; got "):
        _train(kind, tiny, deterministic=value)


@pytest.mark.slow
def test_an_augment_layer_without_a_seed_is_refused_with_deterministic(tiny):
    """Measured: an unseeded Keras random layer gives other weights in each process even
    under op determinism (its generator is seeded from Python's random state at build)."""
    clf = tiny["classifier"]
    before = _weights(clf)
    augment = keras.Sequential([keras.layers.RandomFlip(seed=1),
                                keras.layers.RandomContrast(0.2, name="contrast")])
    with pytest.raises(ValueError, match="RandomContrast 'contrast' has seed=None") as err:
        train_classifier(clf, X8, Y8, augment=augment, deterministic=True, **TINY)
    assert "RandomFlip" not in str(err.value)
    assert _same(before, clf.get_weights())
    assert unseeded_layers(augment) == ["RandomContrast 'contrast'"]
    assert unseeded_layers("light") == [] and unseeded_layers(None) == []
    assert check_deterministic(False, augment=augment) is False  # only the option refuses it
    seeded = keras.Sequential([keras.layers.RandomContrast(0.2, seed=3)])
    train_classifier(clf, X8, Y8, augment=seeded, deterministic=True, **TINY)


# --- what the option switches on, and only while training -------------------------------------

class _Seen(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        self.enabled = op_determinism_enabled()


@pytest.mark.parametrize("kind", ["rotnet", "classifier"])
@pytest.mark.slow
def test_op_determinism_is_on_while_training_and_off_again_after(tiny, kind):
    assert not op_determinism_enabled()
    for flag in (True, False):
        seen = _Seen()
        _train(kind, tiny, deterministic=flag, callbacks=[seen])
        assert seen.enabled is flag
        assert not op_determinism_enabled()


def test_op_determinism_keeps_a_program_wide_setting():
    with op_determinism():
        assert op_determinism_enabled()
        with op_determinism():
            assert op_determinism_enabled()
        assert op_determinism_enabled()  # the outer block's setting survives the inner one
        with op_determinism(False):
            assert op_determinism_enabled()
    assert not op_determinism_enabled()


def _op_types(fn, spec) -> set[str]:
    return {op.type for op in tf.function(fn).get_concrete_function(spec).graph.get_operations()}


def test_frozen_fast_batchnorm_in_a_training_step_runs_stock_under_determinism():
    """Its fused kernel's gradient with moving statistics has no deterministic GPU kernel."""
    from risc_tf.fast import FastBatchNormalization

    layer = FastBatchNormalization()
    layer.build((None, 4, 4, 3))
    layer.moving_variance.assign([2.0, 3.0, 4.0])
    x = tf.random.stateless_normal((2, 4, 4, 3), seed=[1, 2])
    spec = tf.TensorSpec((2, 4, 4, 3))
    layer.trainable = False
    fused = layer(x, training=True)
    assert "FusedBatchNormV3" in _op_types(lambda a: layer(a, training=True), spec)
    with op_determinism():
        assert "FusedBatchNormV3" not in _op_types(lambda a: layer(a, training=True), spec)
        np.testing.assert_allclose(layer(x, training=True), fused, rtol=1e-5, atol=1e-6)
        assert "FusedBatchNormV3" in _op_types(lambda a: layer(a, training=False), spec)
        layer.trainable = True  # learning: the fused kernel is deterministic
        assert "FusedBatchNormV3" in _op_types(lambda a: layer(a, training=True), spec)


@pytest.mark.parametrize("side, kind", [(1, "tap"), (2, "dense"), (8, "flip")])
def test_fast_conv_gradients_repeat_bit_for_bit_under_determinism(monkeypatch, side, kind):
    from risc_tf.fast import FastConv2D

    monkeypatch.setenv("RISC_TF_CONV_POLICY", "eigen")  # every plan kind
    layer = FastConv2D(8, 3, padding="same")
    x = tf.random.stateless_normal((4, side, side, 16), seed=[3, side])
    layer.build(x.shape)
    assert layer.rewrite_plan(x.shape).kind == kind

    def grads():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * y)
        return [g.numpy() for g in tape.gradient(loss, [x, *layer.trainable_variables])]

    with op_determinism():
        first = grads()
        assert _same(first, grads())


# --- issue 21: the shared options have one definition -----------------------------------------

def test_the_shared_training_options_have_one_definition():
    shared = {f.name: f.default for f in dataclasses.fields(FitOptions)}
    assert len(shared) == 14
    for helper in (train_rotnet, train_classifier):
        params = inspect.signature(helper).parameters
        assert all(params[name].kind is inspect.Parameter.KEYWORD_ONLY for name in shared)
        assert {name: params[name].default for name in shared} == shared
    assert "deterministic : bool" in train_rotnet.__doc__
    options = FitOptions(patience=0, seed=np.int64(3), deterministic=np.True_,
                         callbacks=[keras.callbacks.History()])
    assert options.patience is None and options.seed == 3 and type(options.seed) is int
    assert options.deterministic is True and isinstance(options.callbacks, tuple)
    assert set(options.as_kwargs()) == set(shared)


@pytest.mark.parametrize("kwargs, message", [
    ({"recalibrate_bn": "no"}, "recalibrate_bn must be True or False"),
    ({"jit_compile": 1}, "jit_compile must be True or False"),
    ({"callbacks": [1]}, "callbacks must be a list of keras.callbacks.Callback"),
    ({"callbacks": keras.callbacks.History()}, "callbacks must be a list"),
    ({"verbose": 3}, r"verbose must be an int in \[0, 2\]"),
    ({"patience": -1}, "patience must be an int >= 0"),
    ({"fill": "black"}, "fill must be one of"),
    ({"lr_schedule": "step"}, "lr_schedule must be one of"),
])
def test_fit_options_are_checked_once_and_named(tiny, kwargs, message):
    with pytest.raises(ValueError, match=message):
        FitOptions(**kwargs)
    before = _weights(tiny["rotnet"])
    with pytest.raises(ValueError, match=message):
        _train("rotnet", tiny, **kwargs)
    assert _same(before, tiny["rotnet"].get_weights())


# --- seeding before the model is built (the command line and tune) ----------------------------

@pytest.mark.slow
def test_the_stages_seed_keras_before_the_model_is_built(monkeypatch):
    """train-rotnet, train-classifier, reproduce and tune build through risc_tf.stages: the
    initial weights follow the run's seed, whatever ran before."""
    import risc_tf.stages

    initial, build = [], risc_tf.stages.build_classifier

    def recording(*args, **kwargs):
        model = build(*args, **kwargs)
        initial.append(_weights(model))
        return model

    monkeypatch.setattr(risc_tf.stages, "build_classifier", recording)
    for noise in (1, 2):
        keras.utils.set_random_seed(noise)  # what ran before must not matter
        risc_tf.stages.build_and_train_classifier(
            X8, Y8, X8[:16], Y8[:16], num_classes=2, input_size=8, backbone="small",
            epochs=1, batch_size=16, recalibration_batches=1, seed=7, verbose=0)
    assert _same(*initial)


@pytest.mark.slow
def test_tune_seeds_each_point_before_building(monkeypatch, tmp_path):
    import risc_tf.stages
    from risc_tf.experiments.config import ReproduceConfig
    from risc_tf.experiments.tune import _evaluate_point

    initial, build = [], risc_tf.stages.build_classifier

    def recording(*args, **kwargs):
        model = build(*args, **kwargs)
        initial.append(_weights(model))
        return model

    monkeypatch.setattr(risc_tf.stages, "build_classifier", recording)
    config = ReproduceConfig("pneumoniamnist", tmp_path, backbone="small", input_size=8,
                             epochs=1, batch_size=16, recalibration_batches=1, seed=5,
                             verbose=0).validate()
    splits = {"train": (X8, Y8), "val": (X8[:16], Y8[:16])}
    for noise in (1, 2):
        keras.utils.set_random_seed(noise)  # an earlier point, or a resumed search
        _evaluate_point(config, splits, "classifier", tmp_path)
    assert _same(*initial)


# --- the command line ---------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["reproduce", "train-rotnet", "train-classifier", "tune"])
@pytest.mark.parametrize("seed", ["-1", "1.5", "x", "4294967296"])
def test_cli_refuses_a_bad_seed(capsys, tmp_path, command, seed):
    argv = [command, "--dataset", "pneumoniamnist", "--output", str(tmp_path / "o"),
            "--seed", seed, "--deterministic"]
    if command == "tune":
        argv += ["--grid", '{"epochs": [1]}']
    assert "--seed: must be an integer in [0, 4294967295]" in _error(capsys, argv)
    assert not (tmp_path / "o").exists()


def test_cli_seed_lists_are_bounded(capsys, tmp_path):
    argv = ["reproduce", "--dataset", "pneumoniamnist", "--output", str(tmp_path / "o"),
            "--seeds", "0,4294967296"]
    assert "--seeds: seeds must be <= 4294967295" in _error(capsys, argv)


def test_cli_deterministic_reaches_the_library():
    from risc_tf.cli import build_parser
    from risc_tf.commands._common import training_options
    from risc_tf.commands.reproduce import config_from_args

    parser = build_parser()
    base = ["--dataset", "pneumoniamnist", "--output", "o"]
    for command in ("train-rotnet", "train-classifier"):
        for flag in ([], ["--deterministic"]):
            args = parser.parse_args([command, *base, *flag])
            assert training_options(args)["deterministic"] is bool(flag)
    for command, extra in (("reproduce", []), ("tune", ["--grid", '{"epochs": [1]}'])):
        args = parser.parse_args([command, *base, *extra, "--deterministic", "--seed", "9"])
        config = config_from_args(args).validate()
        assert config.deterministic is True and config.seed == 9
        assert config.rotnet_options()["deterministic"] is True
        assert config.classifier_options()["deterministic"] is True
        assert config_from_args(parser.parse_args([command, *base, *extra])).deterministic \
            is False


# --- two runs, bit for bit ----------------------------------------------------------------------

_RUN = """
import hashlib, json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras, numpy as np
import risc_tf

deterministic = sys.argv[1] == "1"
x, y = risc_tf.load_medmnist("pneumoniamnist", "train", root=sys.argv[2])
xv, yv = risc_tf.load_medmnist("pneumoniamnist", "val", root=sys.argv[2])
x, y, xv, yv = x[:320], y[:320], xv[:96], yv[:96]
options = dict(epochs=1, batch_size=32, recalibration_batches=3, verbose=0, seed=11,
               deterministic=deterministic)
keras.utils.set_random_seed(11)
rotnet = risc_tf.build_rotnet(backbone="small")
risc_tf.train_rotnet(rotnet, x, xv, jitter=10.0, **options)
clf = risc_tf.build_classifier(2, backbone="small")
risc_tf.train_classifier(clf, x, y, xv, yv, augment="light", tilt=10.0, **options)
out = {}
for name, model in (("rotnet", rotnet), ("classifier", clf)):
    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    predicted = model.predict(risc_tf.preprocess_images(xv), verbose=0)
    out[name] = {"weights": digest.hexdigest(),
                 "predictions": hashlib.sha256(predicted.tobytes()).hexdigest()}
print("RESULT " + json.dumps(out))
"""


def _run_twice(deterministic: bool) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    results = []
    for _ in range(2):  # fresh processes: nothing of the first run lingers in the second
        done = subprocess.run([sys.executable, "-c", _RUN, str(int(deterministic)),
                               str(DATA_ROOT)], capture_output=True, text=True, env=env,
                              timeout=900)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        assert done.returncode == 0 and lines, done.stderr[-3000:]
        results.append(json.loads(lines[-1][len("RESULT "):]))
    return results


@pytest.mark.slow
@requires_data
def test_two_deterministic_runs_give_bit_identical_weights_and_predictions():
    """Small backbone, 320 real PneumoniaMNIST images, one epoch of each stage: the RotNet
    (with jitter and dropout) and the classifier (light augmentation, tilt), twice."""
    first, second = _run_twice(True)
    assert first == second


def _digest(folder) -> dict:
    """results.json without what may differ between two runs of one command (times, paths)."""
    results = json.loads((folder / "results.json").read_text())
    for key in ("run", "timing", "machine"):
        results.pop(key)
    results["config"].pop("output")
    results["summary"].pop("table2")
    for record in results["training"].values():
        record.pop("train_time_s")
    return results


@pytest.mark.slow
@requires_data
def test_reproduce_deterministic_twice_gives_identical_results_and_records_the_option(tmp_path):
    from risc_tf import RISCPipeline

    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    argv = ["reproduce", "--dataset", "pneumoniamnist", "--data-root", str(DATA_ROOT),
            "--backbone", "small", "--subset", "96", "--epochs", "1", "--rotnet-epochs", "1",
            "--batch-size", "32", "--sweep-step", "90", "--timing-samples", "2", "--seed", "3",
            "--deterministic", "--quiet"]
    for name in ("a", "b"):
        done = subprocess.run([sys.executable, "-m", "risc_tf", *argv, "--output",
                               str(tmp_path / name)], capture_output=True, text=True, env=env,
                              timeout=1800)
        assert done.returncode == 0, done.stderr[-3000:]
    a, b = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert a == b
    assert a["config"]["deterministic"] is True and a["config"]["seed"] == 3
    assert '"deterministic": true' in (tmp_path / "a" / "results.md").read_text()
    metadata = RISCPipeline.load(tmp_path / "a" / "models" / "risc_pipeline").metadata
    assert metadata["seed"] == 3
    assert metadata["training"]["deterministic"] is True and metadata["training"]["seed"] == 3
