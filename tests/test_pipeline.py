"""RISCPipeline: the fused chain, its inputs, confidences, persistence and errors."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from risc_tf import (
    RISCPipeline,
    build_classifier,
    build_rotnet,
    counter_rotate,
    preprocess_images,
    rotate,
)
from risc_tf.fast import FastBatchNormalization, FastConv2D

SIZE = 16
rng = np.random.default_rng(0)
X = rng.integers(0, 256, (10, 28, 28), dtype=np.uint8)
LEGACY = Path(__file__).parent / "data" / "legacy_pipeline_0_1"


@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(0)
    shape = (SIZE, SIZE, 3)
    rotnet = build_rotnet(shape, angles=(0, 90, 180, 270), backbone="small", hidden_units=(16, 16))
    classifier = build_classifier(3, shape, backbone="small")
    return rotnet, classifier


def test_hard_mode_is_argmax_counter_rotation_then_classification(models):
    rotnet, classifier = models
    pipe = RISCPipeline(rotnet, classifier, batch_size=4)
    x = preprocess_images(X, SIZE)
    angles = np.array([0, 90, 180, 270], np.float32)[rotnet.predict(x, verbose=0).argmax(1)]
    assert np.array_equal(pipe.predict_rotation(X), angles)
    corrected = counter_rotate(x, angles).numpy()
    assert np.allclose(pipe.correct(X), corrected, atol=1e-6)
    expected = classifier.predict(corrected, verbose=0)
    assert np.allclose(pipe.predict_proba(X), expected, atol=1e-6)
    assert np.array_equal(pipe.predict(X), expected.argmax(1))


@pytest.mark.parametrize("angles", [(0, 90, 180, 270), (0, 45, 90, 135, 180, 225, 270, 315)])
def test_soft_mode_weighs_every_counter_rotation(angles):
    keras.utils.set_random_seed(1)
    rotnet = build_rotnet((SIZE, SIZE, 3), angles=angles, backbone="small", hidden_units=(8, 8))
    classifier = build_classifier(3, (SIZE, SIZE, 3), backbone="small")
    pipe = RISCPipeline(rotnet, classifier, mode="soft", batch_size=3)
    x = preprocess_images(X, SIZE)
    p_rot = rotnet.predict(x, verbose=0)
    expected = sum(
        p_rot[:, [r]] * classifier.predict(rotate(x, -a).numpy(), verbose=0)
        for r, a in enumerate(angles)
    )
    proba = pipe.predict_proba(X)
    assert np.allclose(proba, expected, atol=1e-5) and np.allclose(proba.sum(1), 1, atol=1e-5)


def test_single_image_gives_single_results(models):
    pipe = RISCPipeline(*models)
    one = X[0]
    assert np.ndim(pipe.predict(one)) == 0
    assert pipe.predict_proba(one).shape == (3,)
    assert pipe.correct(one).shape == (SIZE, SIZE, 3)
    angle, proba = pipe.predict_rotation(one, return_proba=True)
    assert np.ndim(angle) == 0 and proba.shape == (4,)
    assert pipe.predict(one) == pipe.predict(X[:1])[0]


@pytest.mark.slow
def test_every_input_form_agrees(models):
    pipe = RISCPipeline(*models, batch_size=3)
    reference = RISCPipeline(*models, batch_size=256).predict_proba(X)
    rgb = np.repeat(X[..., None], 3, -1)
    forms = {
        "batch of 3": X, "channel axis": X[..., None], "floats": X / 255.0, "rgb": rgb,
        "uint16": X.astype(np.uint16) * 257, "int64": X.astype(np.int64),
        "python list": X.tolist(), "tf.Tensor": tf.constant(X),
        "rgba, opaque": np.concatenate([rgb, np.full_like(rgb[..., :1], 255)], -1),
        "dataset of images": tf.data.Dataset.from_tensor_slices(X),
        "dataset of batches": tf.data.Dataset.from_tensor_slices(X).batch(4),
    }
    for name, images in forms.items():
        np.testing.assert_allclose(pipe.predict_proba(images), reference, atol=1e-5,
                                   err_msg=name)


def test_single_rgba_image_is_one_image_and_alpha_composites_over_black(models):
    pipe = RISCPipeline(*models)
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., :3] = X[0][..., None]
    assert pipe.predict_proba(rgba).shape == (3,)  # one image, not 28 images
    np.testing.assert_allclose(pipe.predict_proba(rgba), pipe.predict_proba(np.zeros((28, 28))),
                               atol=1e-6)  # fully transparent: black


def test_images_of_different_sizes_are_resized_one_by_one(models):
    pipe = RISCPipeline(*models)
    small, tall = X[0][:20, :20], np.repeat(X[1], 2, axis=0)  # 20x20 and 56x28
    out = pipe.predict_proba([small, tall])
    np.testing.assert_allclose(out[0], pipe.predict_proba(small), atol=1e-6)
    np.testing.assert_allclose(out[1], pipe.predict_proba(tall), atol=1e-6)
    mixed = [X[0], X[1] / 255.0, X[2].astype(np.uint16) * 257]  # same size, three dtypes
    np.testing.assert_allclose(pipe.predict_proba(mixed), pipe.predict_proba(X[:3]), atol=1e-5)
    ragged = tf.data.Dataset.from_generator(
        lambda: iter([small, tall]), output_signature=tf.TensorSpec((None, None), tf.uint8))
    np.testing.assert_allclose(pipe.predict_proba(ragged), out, atol=1e-6)


def test_one_trace_per_input_signature(models):
    pipe = RISCPipeline(*models, batch_size=4)
    for n in (1, 3, 7, 10):
        pipe.predict_proba(X[:n])
    pipe.predict_proba(X[0])
    assert pipe.trace_count() == 1
    pipe.predict_proba(X / 255.0)  # another dtype: a second graph
    assert pipe.trace_count() == 2


def test_details_class_names_and_review_thresholds(models):
    pipe = RISCPipeline(*models, class_names=["a", "b", "c"])
    proba = pipe.predict_proba(X)
    _, p_rot = pipe.predict_rotation(X, return_proba=True)
    d = pipe.predict_details(X)
    assert len(d) == 10 and d.class_name.tolist() == pipe.classes_[proba.argmax(1)].tolist()
    np.testing.assert_allclose(d.class_probability, proba.max(1), atol=1e-6)
    np.testing.assert_allclose(d.rotation_confidence, p_rot.max(1), atol=1e-6)
    assert not d.review.any()
    cut = float(np.median(p_rot.max(1)))
    strict = RISCPipeline(*models, min_rotation_confidence=cut)
    assert strict.predict_details(X).review.tolist() == (p_rot.max(1) < cut).tolist()
    records = d.to_records()
    assert records[0]["class_name"] in ("a", "b", "c") and set(records[0]) == {
        "class_index", "class_name", "class_probability", "rotation", "rotation_confidence",
        "review", "ood_score", "unlike_training"}


def test_angles_are_the_rotnets_own(models):
    rotnet, classifier = models
    with pytest.raises(ValueError, match="disagree with the angles the RotNet records"):
        RISCPipeline(rotnet, classifier, angles=(0, 270, 180, 90))
    assert RISCPipeline(rotnet, classifier, angles=(0, 90, 180, 270)).angles == (0, 90, 180, 270)
    plain = keras.Model(rotnet.inputs, rotnet.outputs)  # the last layer still records angles
    assert RISCPipeline(plain, classifier).angles == (0.0, 90.0, 180.0, 270.0)


def test_constructor_validation(models):
    rotnet, classifier = models
    with pytest.raises(ValueError, match="mode must be one of"):
        RISCPipeline(rotnet, classifier, mode="average")
    with pytest.raises(ValueError, match="batch_size"):
        RISCPipeline(rotnet, classifier, batch_size=0)
    assert RISCPipeline(rotnet, classifier, batch_size=np.int64(8)).batch_size == 8
    with pytest.raises(ValueError, match="inputs differ"):
        RISCPipeline(rotnet, build_classifier(2, backbone="small"))
    with pytest.raises(ValueError, match="class_names must name"):
        RISCPipeline(rotnet, classifier, class_names=["a", "b"])
    with pytest.raises(ValueError, match=r"min_rotation_confidence must be .* in \[0, 1\]"):
        RISCPipeline(rotnet, classifier, min_rotation_confidence=1.5)
    with pytest.raises(ValueError, match="fill must be one of"):
        RISCPipeline(rotnet, classifier, fill="mirror")


def test_input_errors_name_the_problem(models):
    pipe = RISCPipeline(*models)
    with pytest.raises(ValueError, match="NaN"):
        pipe.predict(np.full((2, 28, 28), np.nan))
    with pytest.raises(ValueError, match="channels-first"):
        pipe.predict(np.zeros((2, 3, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"values in \[0, 255\]"):
        pipe.predict(np.full((2, 28, 28), 300, np.int32))
    with pytest.raises(ValueError, match="empty dataset"):
        pipe.predict(tf.data.Dataset.from_tensor_slices(X[:0]))
    with pytest.raises(ValueError, match="yield images"):
        pipe.predict(tf.data.Dataset.from_tensor_slices((X, X)))
    with pytest.warns(UserWarning, match="channels-first colour image"):
        pipe.predict(np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="one label per image: 10 images but 1 labels"):
        pipe.score(X, [1])
    with pytest.raises(ValueError, match="multi-label"):
        pipe.score(X[:2], [[1, 1, 0], [0, 1, 1]])
    with pytest.raises(ValueError, match="labels must be a rectangular array"):
        pipe.score(X[:2], [[1], [0, 1]])  # ragged: risc_tf's message, not numpy's
    assert pipe.score(X[0], int(pipe.predict(X[0]))) == 1.0  # one image, one label
    onehot = np.eye(3)[[0, 1, 2, 0, 1, 2, 0, 1, 2, 0]]
    assert pipe.score(X, onehot) == pipe.score(X, onehot.argmax(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipe.predict(X[:2])  # two 28x28 images: no warning


def test_save_and_load_are_bit_identical(models, tmp_path):
    pipe = RISCPipeline(*models, mode="soft", batch_size=5, fill="circle", class_names=list("xyz"),
                        min_class_probability=0.4, metadata={"dataset": "synthetic"})
    path = pipe.save(tmp_path / "pipe")
    loaded = RISCPipeline.load(path)
    assert loaded.get_config() == pipe.get_config()
    assert np.array_equal(loaded.predict_proba(X), pipe.predict_proba(X))
    for model in (loaded.rotnet, loaded.classifier):  # fast layers again after loading
        kinds = {type(layer) for layer in model.layers}
        assert FastConv2D in kinds and FastBatchNormalization in kinds
    config = json.loads((path / "risc_pipeline.json").read_text())
    assert config["format"] == 2 and config["fill"] == "circle"
    assert set(config["versions"]) == {"risc_tf", "tensorflow", "keras"}
    card = (path / "MODEL_CARD.md").read_text()
    assert "Not a medical device" in card and "synthetic" in card
    with pytest.raises(FileExistsError, match="overwrite=True"):
        pipe.save(path)
    pipe.save(path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_overwrite_keeps_the_old_pipeline_when_the_swap_fails(models, tmp_path, monkeypatch):
    old = RISCPipeline(*models, mode="hard")
    path = old.save(tmp_path / "pipe")
    real = os.replace
    calls = []

    def failing(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # after the old folder was renamed aside
            raise OSError("disk full")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError, match="disk full"):
        RISCPipeline(*models, mode="soft").save(path, overwrite=True)
    monkeypatch.undo()
    assert RISCPipeline.load(path).mode == "hard"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_load_errors(models, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        RISCPipeline.load(tmp_path / "absent")
    path = RISCPipeline(*models).save(tmp_path / "pipe")
    config = json.loads((path / "risc_pipeline.json").read_text())
    (path / "risc_pipeline.json").write_text(json.dumps({k: v for k, v in config.items()
                                                         if k not in ("angles", "fill")}))
    with pytest.raises(ValueError, match=r"missing the keys \['angles', 'fill'\]"):
        RISCPipeline.load(path)
    (path / "risc_pipeline.json").write_text("{not json")
    with pytest.raises(ValueError, match="not readable JSON"):
        RISCPipeline.load(path)
    (path / "risc_pipeline.json").write_text(json.dumps({**config, "format": 9}))
    with pytest.raises(ValueError, match="unsupported pipeline format 9"):
        RISCPipeline.load(path)
    (path / "risc_pipeline.json").write_text(json.dumps(config))
    (path / "classifier.keras").unlink()
    with pytest.raises(FileNotFoundError, match="no classifier.keras"):
        RISCPipeline.load(path)
    (path / "classifier.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .keras file"):
        RISCPipeline.load(path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a saved pipeline"):
        RISCPipeline(*models).save(other, overwrite=True)
    assert (other / "notes.txt").read_text() == "keep me"
    with pytest.raises(FileNotFoundError, match="not a saved RISCPipeline"):
        RISCPipeline.load(other)


def test_a_reproduce_run_folder_loads_its_pipeline(models, tmp_path):
    RISCPipeline(*models).save(tmp_path / "run" / "models" / "risc_pipeline")
    assert RISCPipeline.load(tmp_path / "run").angles == (0.0, 90.0, 180.0, 270.0)
    (tmp_path / "unfinished").mkdir()
    (tmp_path / "unfinished" / "run.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="run folder without a saved pipeline"):
        RISCPipeline.load(tmp_path / "unfinished")


@pytest.mark.slow
def test_saved_models_load_with_plain_keras_in_a_fresh_process(models, tmp_path):
    path = RISCPipeline(*models).save(tmp_path / "pipe")
    x = preprocess_images(X, SIZE)
    np.save(tmp_path / "x.npy", x)
    code = (
        "import sys; sys.modules['risc_tf'] = None\n"  # risc_tf cannot be imported
        "import keras, numpy as np\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        f"for name in ('rotnet', 'classifier'):\n"
        f"    m = keras.models.load_model({str(path)!r} + f'/{{name}}.keras')\n"
        f"    np.save({str(tmp_path)!r} + f'/{{name}}.npy', m.predict(x, verbose=0))\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    rotnet, classifier = models
    np.testing.assert_allclose(np.load(tmp_path / "rotnet.npy"),
                               rotnet.predict(x, verbose=0), atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "classifier.npy"),
                               classifier.predict(x, verbose=0), atol=1e-6)


def test_pipelines_saved_by_risc_tf_0_1_still_load():
    """tests/data/legacy_pipeline_0_1 was written by risc_tf 0.1 (make_legacy_pipeline.py)."""
    pipe = RISCPipeline.load(LEGACY)
    expected = np.load(LEGACY / "expected.npz")
    assert pipe.mode == "soft" and pipe.batch_size == 7 and pipe.fill == "constant"
    np.testing.assert_allclose(pipe.predict_proba(expected["images"]), expected["proba"],
                               atol=1e-6)
    np.testing.assert_array_equal(pipe.predict_rotation(expected["images"]),
                                  expected["rotation"])


@pytest.mark.slow
def test_saved_pipeline_carries_no_optimizer_state(models, tmp_path):
    import zipfile

    rotnet, classifier = models
    trained = keras.models.clone_model(classifier)
    trained.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    trained.fit(np.zeros((4, SIZE, SIZE, 3)), np.zeros(4, int), verbose=0)
    path = RISCPipeline(rotnet, trained).save(tmp_path / "pipe")
    with zipfile.ZipFile(path / "classifier.keras") as archive:
        config = json.loads(archive.read("config.json"))
    assert not config.get("compile_config")
    trained.save(tmp_path / "with_optimizer.keras")  # Adam's two moments: about 3x the size
    ours = (path / "classifier.keras").stat().st_size
    assert 2 * ours < (tmp_path / "with_optimizer.keras").stat().st_size


@pytest.mark.slow
def test_streams_keep_their_order_and_settings_changes_take_effect(models):
    pipe = RISCPipeline(*models)
    mixed = tf.data.Dataset.from_generator(
        lambda: iter([X[0], X[1:4], X[4]]),
        output_signature=tf.TensorSpec(None, tf.uint8))
    np.testing.assert_allclose(pipe.predict_proba(mixed), pipe.predict_proba(X[:5]), atol=1e-6)
    hard = pipe.predict_proba(X)
    pipe.mode = "soft"  # a new graph, not the hard one cached
    np.testing.assert_allclose(pipe.predict_proba(X),
                               RISCPipeline(*models, mode="soft").predict_proba(X), atol=1e-6)
    assert not np.allclose(pipe.predict_proba(X), hard)


def test_save_under_a_file_names_the_part_of_the_path_that_is_a_file(tmp_path):
    """It used to raise pathlib's bare FileExistsError."""
    keras.utils.set_random_seed(0)
    pipe = RISCPipeline(build_rotnet(backbone="small"), build_classifier(2, backbone="small"))
    blocker = tmp_path / "models"
    blocker.write_text("a file, not a folder")
    with pytest.raises(NotADirectoryError, match=r"models is a file, not a folder"):
        pipe.save(blocker / "run" / "pipeline")
    assert blocker.read_text() == "a file, not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]  # nothing half-written
