import json

import keras
import numpy as np
import pytest

from risc_tf import (
    RISCPipeline,
    build_classifier,
    build_rotnet,
    counter_rotate,
    preprocess_images,
    rotate,
)

SIZE = 16
rng = np.random.default_rng(0)
X = rng.integers(0, 256, (10, 28, 28), dtype=np.uint8)


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


def test_soft_mode_weighs_every_counter_rotation(models):
    rotnet, classifier = models
    pipe = RISCPipeline(rotnet, classifier, mode="soft")
    x = preprocess_images(X, SIZE)
    p_rot = rotnet.predict(x, verbose=0)
    expected = sum(
        p_rot[:, [r]] * classifier.predict(rotate(x, -a).numpy(), verbose=0)
        for r, a in enumerate((0, 90, 180, 270))
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


def test_every_input_form_and_batch_size_agree(models):
    pipe = RISCPipeline(*models, batch_size=3)
    reference = RISCPipeline(*models, batch_size=256).predict_proba(X)
    assert np.allclose(pipe.predict_proba(X), reference, atol=1e-6)
    assert np.allclose(pipe.predict_proba(X[..., None]), reference, atol=1e-6)
    assert np.allclose(pipe.predict_proba(X / 255.0), reference, atol=1e-5)
    assert np.allclose(pipe.predict_proba(np.repeat(X[..., None], 3, -1)), reference, atol=1e-5)


def test_one_trace_per_input_signature(models):
    pipe = RISCPipeline(*models, batch_size=4)
    for n in (1, 3, 7, 10):
        pipe.predict_proba(X[:n])
    graph = pipe._graphs[("proba", "|u1", (28, 28, 1))]
    assert graph.experimental_get_tracing_count() == 1


def test_save_and_load_are_bit_identical(models, tmp_path):
    pipe = RISCPipeline(*models, mode="soft", batch_size=5)
    path = pipe.save(tmp_path / "pipe")
    loaded = RISCPipeline.load(path)
    assert loaded.mode == "soft" and loaded.batch_size == 5 and loaded.angles == pipe.angles
    assert np.array_equal(loaded.predict_proba(X), pipe.predict_proba(X))
    assert json.loads((path / "risc_pipeline.json").read_text())["mode"] == "soft"
    with pytest.raises(FileExistsError, match="overwrite=True"):
        pipe.save(path)
    pipe.save(path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_load_errors(models, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        RISCPipeline.load(tmp_path / "absent")
    path = RISCPipeline(*models).save(tmp_path / "pipe")
    (path / "classifier.keras").unlink()
    with pytest.raises(FileNotFoundError, match="missing classifier.keras"):
        RISCPipeline.load(path)
    (path / "classifier.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="could not load the RISCPipeline"):
        RISCPipeline.load(path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a saved pipeline"):
        RISCPipeline(*models).save(other, overwrite=True)
    assert (other / "notes.txt").read_text() == "keep me"


def test_constructor_validation(models):
    rotnet, classifier = models
    with pytest.raises(ValueError, match="mode must be one of"):
        RISCPipeline(rotnet, classifier, mode="average")
    with pytest.raises(ValueError, match="4 outputs but 8 angles"):
        RISCPipeline(rotnet, classifier, angles=range(0, 360, 45))
    with pytest.raises(ValueError, match="batch_size"):
        RISCPipeline(rotnet, classifier, batch_size=0)
    with pytest.raises(ValueError, match="inputs differ"):
        RISCPipeline(rotnet, build_classifier(2, backbone="small"))
    with pytest.raises(ValueError, match="NaN"):
        RISCPipeline(rotnet, classifier).predict(np.full((2, 28, 28), np.nan))


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
