"""Evaluation protocols of risc_tf.evaluation: methods, test sets, sweep, selective."""

import keras
import numpy as np
import pytest

from risc_tf import RISCPipeline, build_classifier, build_rotnet, rotate
from risc_tf.evaluation import (
    build_methods,
    evaluate_models,
    evaluation_sets,
    selective_evaluation,
    time_inference,
)
from risc_tf.metrics import accuracy
from risc_tf.sweep import angle_sweep


@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(0)
    rotnet = build_rotnet(backbone="small")
    clf = build_classifier(3, backbone="small")
    aug = build_classifier(3, backbone="small")
    return rotnet, clf, aug


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    return x, np.arange(12) % 3


@pytest.mark.slow
def test_tta_is_invariant_to_quarter_turns(models, images):
    rotnet, clf, _ = models
    x = evaluation_sets(*images, (0, 90, 180, 270), image_size=32)["upright"][0]
    tta = RISCPipeline(rotnet, clf, mode="tta", batch_size=5).predict_proba
    p0 = tta(x)
    p90 = tta(rotate(x, 90).numpy())
    np.testing.assert_allclose(p0, p90, atol=1e-5)
    np.testing.assert_allclose(p0.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_methods_sets_and_evaluation(models, images):
    rotnet, clf, aug = models
    angles = (0.0, 90.0, 180.0, 270.0)
    methods = build_methods(rotnet, clf, aug, batch_size=8)
    assert list(methods) == ["classifier", "rotation_augmented", "tta", "risc_hard", "risc_soft"]
    sets = evaluation_sets(*images, angles, image_size=32, seed=1)
    x, y, a = sets["rotated"]
    assert x.shape == (12, 32, 32, 3) and set(a) <= set(angles)
    assert 0.0 <= x.min() and x.max() <= 1.0
    result = evaluate_models(methods, rotnet, sets)
    assert set(result) == {"upright", "rotated", "rotnet"}
    for split in ("upright", "rotated"):
        assert set(result[split]) == set(methods)
        for m in methods:
            assert len(result[split][m]["predicted"]) == 12
    assert 0 <= result["rotnet"]["acc"] <= 1 and result["rotnet"]["n_in_set"] == 12
    assert np.asarray(result["rotnet"]["confusion_matrix"]).shape == (4, 4)
    for fn in methods.values():
        np.testing.assert_allclose(fn(x).sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("angles", [(0, 90, 180, 270), tuple(range(0, 360, 45))])
@pytest.mark.parametrize("fill", ["constant", "circle"])
def test_shared_pass_gives_the_methods_own_predictions(images, angles, fill):
    """TTA and both RISC modes from one pass per counter-rotation equal their own graphs."""
    keras.utils.set_random_seed(2)
    rotnet = build_rotnet(angles=angles, backbone="small")
    clf = build_classifier(3, backbone="small")
    own = build_methods(rotnet, clf, batch_size=8, fill=fill)
    shared = build_methods(rotnet, clf, batch_size=8, fill=fill, shared=True)
    x = evaluation_sets(*images, angles, image_size=32, seed=4, fill=fill)["rotated"][0]
    for name in own:
        np.testing.assert_allclose(shared[name](x), own[name](x), atol=2e-5, err_msg=name)
    # a new input (same shape, other content) is not served from the previous one
    other = rotate(x, 90, fill).numpy()
    np.testing.assert_allclose(shared["risc_soft"](other), own["risc_soft"](other), atol=2e-5)
    p_rot, p_y = RISCPipeline(rotnet, clf, fill=fill).predict_every_rotation(x[0])
    assert p_rot.shape == (len(angles),) and p_y.shape == (len(angles), 3)


def test_test_angles_outside_the_rotnet_set_are_reported_not_crashed(models, images):
    """Issue: evaluate --angle-step 45 on a 4-angle RotNet crashed with KeyError: 225.0."""
    rotnet, clf, _ = models
    methods = build_methods(rotnet, clf)
    sets = evaluation_sets(*images, tuple(range(0, 360, 45)), image_size=32, seed=3)
    result = evaluate_models(methods, rotnet, sets)
    per_angle = result["rotnet"]["per_angle_acc"]
    outside = {k for k, v in per_angle.items() if isinstance(v, str)}
    assert outside and all(float(k) % 90 for k in outside)
    assert all(per_angle[k] == "not in the RotNet's angle set" for k in outside)
    assert set(result["rotated"]["risc_hard"]["per_angle_acc"]) == set(per_angle)


@pytest.mark.slow
def test_uniform_protocol_bins_angles_by_the_rotnet_set(models, images):
    rotnet, clf, _ = models
    sets = evaluation_sets(*images, (0, 90), image_size=32, seed=2, protocol="uniform")
    a = sets["rotated"][2]
    assert len(set(np.round(a, 3))) == 12 and a.min() >= 0 and a.max() < 360
    result = evaluate_models(build_methods(rotnet, clf), rotnet, sets, protocol="uniform")
    assert set(result["rotated"]["classifier"]["per_angle_acc"]) <= {"0", "90", "180", "270"}
    assert result["rotnet"]["acc"] is None and 0 <= result["rotnet"]["mae_deg"] <= 180
    assert set(result["rotnet"]["per_angle_acc"]) <= {"0", "90", "180", "270"}  # binned


def test_circle_fill_masks_every_evaluation_image(models, images):
    sets = evaluation_sets(*images, (0, 45), image_size=32, fill="circle")
    for x in (sets["upright"][0], sets["rotated"][0]):
        assert np.all(x[:, 0, 0] == 0) and np.all(x[:, -1, -1] == 0)  # corners outside


@pytest.mark.slow
def test_angle_sweep_selective_and_timing(models, images):
    rotnet, clf, _ = models
    methods = build_methods(rotnet, clf)
    x = evaluation_sets(*images, (0, 90), image_size=32)["upright"][0]
    sweep = angle_sweep(methods, x, images[1], angles=(0, 45, 180), rotnet=rotnet, verbose=0)
    assert sweep["angles"] == [0.0, 45.0, 180.0]
    for name in methods:
        assert len(sweep["acc"][name]) == 3 and all(0 <= v <= 1 for v in sweep["acc"][name])
        assert sweep["summary"][name]["worst_angle"] in (0.0, 45.0, 180.0)
    assert sweep["acc"]["classifier"][0] == pytest.approx(
        accuracy(images[1], methods["classifier"](x).argmax(1)))
    assert len(sweep["rotnet_mae_deg"]) == 3 and sweep["rotnet_mae_deg_mean"] >= 0
    assert len(sweep["rotnet_refined_mae_deg"]) == 3
    assert 0 <= sweep["rotnet_refined_mae_deg_mean"] <= 180
    pipe = RISCPipeline(rotnet, clf)
    selective = selective_evaluation(pipe, x, images[1], thresholds=[0.0, 1.0])
    assert selective["rotation_confidence"]["coverage"][0] == 1.0
    assert selective["class_probability"]["accuracy"][0] == pytest.approx(
        pipe.score(x, images[1]))
    t = time_inference(methods["risc_hard"], x, single=3)
    assert t["n_single"] == 3 and t["n_batched"] == 12
    assert t["batched_ms_per_sample"] > 0 and t["single_ms_per_sample"] > 0


def test_methods_take_model_input_only(models):
    rotnet, clf, _ = models
    with pytest.raises(ValueError, match="model input"):
        build_methods(rotnet, clf)["classifier"](np.zeros((2, 28, 28), np.uint8))
