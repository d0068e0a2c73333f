"""RotNet heads: the circular head's labels, its continuous reading, its files, and the
pipeline's correction by that angle (small untrained models: the arithmetic, not accuracy)."""

import json
import zipfile

import keras
import numpy as np
import pytest

from risc_tf import RISCPipeline, build_classifier, build_rotnet, load_model, save_model
from risc_tf.angles import angles_every
from risc_tf.heads import (
    check_head,
    circular_labels,
    estimate_angle,
    head_window,
    read_angle,
    refine_angle,
)
from risc_tf.models import rotnet_head

FINE = angles_every(10.0)  # 36 bins: fine enough to test, coarse enough for 32 px


@pytest.mark.parametrize("args, message", [
    (("cone", FINE), "head must be one of"),
    (("circular", (0, 90, 180, 270)), "at least 8 angles evenly covering the circle"),
    (("circular", (0, 10, 20, 40, 80, 160, 200, 300)), "evenly covering the circle"),
    (("bins", (0, 90, 180, 270), 5.0), "sigma .* belongs to the circular head"),
    (("circular", FINE, 0.0), "sigma must be"),
    (("circular", FINE, 95.0), "sigma must be"),
])
def test_bad_heads_name_the_argument(args, message):
    with pytest.raises(ValueError, match=message):
        check_head(*args)


def test_a_circular_head_finer_than_the_input_resolves_is_refused():
    with pytest.raises(ValueError, match="too fine for 32x32 inputs.*3.58 deg"):
        build_rotnet(angles=angles_every(2.0), head="circular", backbone="small")


def test_circular_labels_peak_at_the_angle_and_wrap():
    labels = circular_labels(np.array([0.0, 355.0, 123.0]), FINE, sigma=10.0).numpy()
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, atol=1e-6)
    assert labels[0].argmax() == 0 and labels[0][1] == pytest.approx(labels[0][-1])
    assert labels[1].argmax() in (0, 35)  # 355 lies between the last bin and the first
    assert labels[2].argmax() == 12  # 120 is the nearest bin to 123
    # the continuous reading of its own soft label comes back close to the angle
    window = head_window("circular", FINE, 10.0)
    got = estimate_angle(labels, FINE, window=window).numpy()
    assert np.abs((got - np.array([0.0, 355.0, 123.0]) + 180) % 360 - 180).max() < 1.0


def test_estimate_angle_is_the_weighted_offset_and_refine_its_numpy_face():
    p = np.zeros((2, 36))
    p[0, [3, 4, 5]] = [0.25, 0.5, 0.25]  # symmetric around 40
    p[1, [35, 0, 1]] = [0.6, 0.3, 0.1]  # around 350, pulled toward 0
    got = estimate_angle(p, FINE, window=10.0).numpy()
    assert got[0] == pytest.approx(40.0)
    # within 10 deg of the most probable bin (350): 0 (+10) pulls, 10 (+20) does not
    assert got[1] == pytest.approx(350 + 0.3 * 10 / 0.9)
    np.testing.assert_allclose(refine_angle(p, FINE), got)
    angle, mass = read_angle(p.astype(np.float32), FINE, head="circular", sigma=5.0)
    assert mass.numpy()[0] == pytest.approx(1.0)
    bins_angle, confidence = read_angle(p, FINE, head="bins")
    assert bins_angle.numpy().tolist() == [40.0, 350.0] and confidence.numpy()[1] == 0.6


@pytest.fixture(scope="module")
def circular_pair():
    keras.utils.set_random_seed(3)
    rotnet = build_rotnet(angles=FINE, head="circular", sigma=8.0, backbone="small")
    return rotnet, build_classifier(2, backbone="small")


def test_a_circular_rotnet_keeps_its_head_through_a_file(circular_pair, tmp_path):
    rotnet, _ = circular_pair
    assert rotnet_head(rotnet) == ("circular", 8.0)
    path = save_model(rotnet, tmp_path / "rotnet.keras")
    assert rotnet_head(load_model(path)) == ("circular", 8.0)
    # a head this risc_tf does not know is refused by name
    with zipfile.ZipFile(path) as archive:
        entries = {n: archive.read(n) for n in archive.namelist()}
    meta = json.loads(entries["risc_tf.json"])
    meta["rotnet_head"] = {"head": "quaternion", "sigma": None}
    entries["risc_tf.json"] = json.dumps(meta).encode()
    other = tmp_path / "future.keras"
    with zipfile.ZipFile(other, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    with pytest.raises(ValueError, match="'quaternion' head, which this risc_tf does not know"):
        load_model(other)


def test_modes_must_fit_the_head(circular_pair):
    rotnet, clf = circular_pair
    with pytest.raises(ValueError, match="mode 'soft' does not apply to a RotNet with a "
                                         "'circular' head.*use mode 'hard' or 'angle'"):
        RISCPipeline(rotnet, clf, mode="soft")
    with pytest.raises(ValueError, match="mode 'angle' does not apply to a RotNet with a "
                                         "'bins' head"):
        RISCPipeline(build_rotnet(backbone="small"), clf, mode="angle")


def test_angle_mode_counter_rotates_by_the_continuous_estimate(circular_pair):
    rotnet, clf = circular_pair
    pipe = RISCPipeline(rotnet, clf, mode="angle", batch_size=4)
    x = np.random.default_rng(0).random((6, 32, 32, 3)).astype(np.float32)
    angles, proba = pipe.predict_rotation(x, return_proba=True)
    expected = read_angle(proba, FINE, head="circular", sigma=8.0)[0].numpy()
    np.testing.assert_allclose(angles, expected, atol=1e-4)
    from risc_tf.resample import resample_rotate

    corrected = pipe.correct(x)
    np.testing.assert_allclose(corrected, resample_rotate(x, -expected).numpy(), atol=1e-5)
    np.testing.assert_allclose(pipe.predict_proba(x), clf(corrected).numpy(), atol=1e-5)
    details = pipe.predict_details(x)
    np.testing.assert_allclose(details.rotation, expected, atol=1e-4)
    assert np.all((details.rotation_confidence > 0) & (details.rotation_confidence <= 1))


def test_modes_that_classify_one_image_per_input_run_whole_batches(circular_pair, monkeypatch):
    """Angle mode classifies one image per input, like hard mode, so its graph runs on
    whole batches; only soft and TTA modes (every counter-rotation of the set) shrink the
    slices to keep the same number of images per classifier call. (Angle mode once ran in
    slices of 4 * batch_size / bins images, one image at a time for 72 bins: half the
    speed of hard mode.)"""
    import risc_tf.fused

    rotnet, clf = circular_pair
    slices = []
    real = risc_tf.fused.run_in_batches

    def recording(graph, x, batch_size):
        slices.append(batch_size)
        return real(graph, x, batch_size)

    monkeypatch.setattr(risc_tf.fused, "run_in_batches", recording)
    x = np.random.default_rng(1).random((20, 32, 32, 3)).astype(np.float32)
    bins = build_rotnet(angles=FINE, backbone="small")
    for pipe, expected in ((RISCPipeline(rotnet, clf, mode="angle", batch_size=16), 16),
                           (RISCPipeline(rotnet, clf, mode="hard", batch_size=16), 16),
                           (RISCPipeline(bins, clf, mode="soft", batch_size=16), 1),
                           (RISCPipeline(bins, clf, mode="tta", batch_size=18), 2)):
        slices.clear()
        pipe.predict_proba(x)
        pipe.predict_details(x)
        assert slices == [expected, expected], (pipe.mode, slices)


def test_a_pipelines_tilt_tolerance_defaults_by_head_and_is_saved(circular_pair, tmp_path):
    rotnet, clf = circular_pair
    assert RISCPipeline(rotnet, clf, mode="angle").max_tilt == 10.0  # quarter turns decide
    pipe = RISCPipeline(rotnet, clf, mode="angle", max_tilt=6.5)
    loaded = RISCPipeline.load(pipe.save(tmp_path / "pipe"))
    assert loaded.max_tilt == 6.5
    assert "within 6.5 degrees of it" in (tmp_path / "pipe" / "MODEL_CARD.md").read_text()
    config = json.loads((tmp_path / "pipe" / "risc_pipeline.json").read_text())
    del config["max_tilt"]  # a pipeline saved before the key existed: the head's default
    (tmp_path / "pipe" / "risc_pipeline.json").write_text(json.dumps(config))
    assert RISCPipeline.load(tmp_path / "pipe").max_tilt == 10.0
    for bad in (0.0, 46.0, float("nan")):
        with pytest.raises(ValueError, match="max_tilt must be"):
            RISCPipeline(rotnet, clf, mode="angle", max_tilt=bad)


@pytest.mark.slow
def test_angle_mode_round_trips_and_exports(circular_pair, tmp_path):
    import tensorflow as tf

    rotnet, clf = circular_pair
    pipe = RISCPipeline(rotnet, clf, mode="angle", class_names=["a", "b"])
    x = np.random.default_rng(1).random((3, 32, 32, 3)).astype(np.float32)
    loaded = RISCPipeline.load(pipe.save(tmp_path / "pipe"))
    assert loaded.mode == "angle" and loaded.head == "circular"
    np.testing.assert_allclose(loaded.predict_proba(x), pipe.predict_proba(x), atol=1e-5)
    served = tf.saved_model.load(str(pipe.export(tmp_path / "served")))
    out = served.signatures["serving_default"](images=tf.constant(x))
    np.testing.assert_allclose(out["probabilities"].numpy(), pipe.predict_proba(x), atol=1e-4)
    np.testing.assert_allclose(out["rotation"].numpy(), pipe.predict_rotation(x), atol=1e-3)


@pytest.mark.slow
def test_angle_mode_converts_to_litert_with_builtin_ops(circular_pair, tmp_path):
    """The continuous counter-rotation is gathers and arithmetic: no Flex ops needed."""
    import tensorflow as tf

    rotnet, clf = circular_pair
    pipe = RISCPipeline(rotnet, clf, mode="angle")
    path = pipe.export(tmp_path / "angle.tflite", format="litert")
    runner = tf.lite.Interpreter(model_path=str(path)).get_signature_runner()
    x = np.random.default_rng(2).random((3, 32, 32, 3)).astype(np.float32)
    out = runner(images=x)
    np.testing.assert_allclose(out["probabilities"], pipe.predict_proba(x), atol=1e-4)
    np.testing.assert_allclose(out["rotation"], pipe.predict_rotation(x), atol=1e-3)
