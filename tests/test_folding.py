"""fold_batchnorm: a convolution-only copy that computes what the original computes."""

import keras
import numpy as np
import pytest

from risc_tf import (
    FoldedBatchNormalization,
    RISCPipeline,
    build_classifier,
    build_rotnet,
    fold_batchnorm,
    rotnet_angles,
)
from risc_tf.fast import batchnorm_pairs

RNG = np.random.default_rng(0)


def randomize_batchnorm(model: keras.Model) -> keras.Model:
    """Give every BatchNormalization statistics and weights far from the identity."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(RNG.normal(0, 0.5, n).astype("float32"))
            layer.moving_variance.assign(RNG.uniform(0.2, 3.0, n).astype("float32"))
            if layer.scale:
                layer.gamma.assign(RNG.uniform(0.3, 2.0, n).astype("float32"))
            if layer.center:
                layer.beta.assign(RNG.normal(0, 0.5, n).astype("float32"))
    return model


def images(n=4, size=32):
    return RNG.random((n, size, size, 3)).astype("float32")


def assert_same_outputs(model, folded, x, atol=1e-5):
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    got = keras.ops.convert_to_numpy(folded(x, training=False))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=atol)


def test_small_classifier_folds_every_batchnorm_and_keeps_its_outputs():
    model = randomize_batchnorm(build_classifier(3, backbone="small"))
    n_bn = sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert n_bn == 6 and len(batchnorm_pairs(model)) == n_bn
    folded = fold_batchnorm(model)
    assert [layer.name for layer in folded.layers] == [layer.name for layer in model.layers]
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.layers)
    conv = folded.get_layer("block1_conv1")
    assert conv.use_bias and not model.get_layer("block1_conv1").use_bias  # bias added
    assert_same_outputs(model, folded, images())


def test_the_copy_is_a_snapshot_and_the_original_is_untouched():
    model = randomize_batchnorm(build_classifier(2, backbone="small"))
    before = [w.copy() for w in model.get_weights()]
    folded = fold_batchnorm(model)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    x = images()
    snapshot = keras.ops.convert_to_numpy(folded(x))
    randomize_batchnorm(model)  # later changes to the original ...
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(folded(x)), snapshot)  # ... not seen


@pytest.mark.slow
def test_resnet50_folds_all_53_batchnorms_exactly():
    model = randomize_batchnorm(build_classifier(2, backbone="resnet50"))
    pairs = batchnorm_pairs(model)
    assert len(pairs) == 53  # every BatchNormalization of keras.applications.ResNet50
    assert pairs["conv1_bn"] == "conv1_conv" and pairs["conv5_block3_3_bn"] == "conv5_block3_3_conv"
    assert_same_outputs(model, fold_batchnorm(model), images(3))


def test_batchnorm_that_cannot_fold_is_kept_and_outputs_still_match():
    inputs = keras.Input((8, 8, 4))
    a = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="relu_conv")(inputs)
    a = keras.layers.BatchNormalization(name="after_activation")(a)  # conv has an activation
    b = keras.layers.Conv2D(6, 1, name="shared_conv")(a)
    c = keras.layers.BatchNormalization(name="after_shared")(b)  # conv output used twice
    d = keras.layers.Add()([b, c])
    e = keras.layers.Conv2D(5, 3, name="plain_conv")(d)
    f = keras.layers.BatchNormalization(center=False, scale=False, name="no_affine")(e)
    g = keras.layers.GlobalAveragePooling2D()(f)
    h = keras.layers.Dense(4, name="dense")(g)
    i = keras.layers.BatchNormalization(name="after_dense")(h)  # not a convolution
    model = randomize_batchnorm(keras.Model(inputs, i))
    assert batchnorm_pairs(model) == {"no_affine": "plain_conv"}
    folded = fold_batchnorm(model)
    assert isinstance(folded.get_layer("no_affine"), FoldedBatchNormalization)
    for kept in ("after_activation", "after_shared", "after_dense"):
        assert isinstance(folded.get_layer(kept), keras.layers.BatchNormalization)
    assert_same_outputs(model, folded, RNG.random((4, 8, 8, 4)).astype("float32"))


def test_sequential_model_folds():
    model = randomize_batchnorm(keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Conv2D(4, 3, name="conv"),
        keras.layers.BatchNormalization(name="bn"),
        keras.layers.ReLU(name="relu"),
    ]))
    folded = fold_batchnorm(model)
    assert isinstance(folded, keras.Sequential) and batchnorm_pairs(model) == {"bn": "conv"}
    assert isinstance(folded.get_layer("bn"), FoldedBatchNormalization)
    assert_same_outputs(model, folded, images(size=8))


def test_folded_model_saves_and_loads(tmp_path):
    model = randomize_batchnorm(build_rotnet(backbone="small", angles=(0, 90, 180, 270)))
    folded = fold_batchnorm(model)
    path = tmp_path / "folded.keras"
    folded.save(path)
    loaded = keras.models.load_model(path)
    assert rotnet_angles(loaded) == rotnet_angles(model)
    x = images()
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(folded(x))
    )


def _count_clones(monkeypatch) -> list:
    import risc_tf.saving as saving

    calls = []
    real = saving.replace_layers
    monkeypatch.setattr(saving, "replace_layers",
                        lambda *a, **k: calls.append(a[-1]) or real(*a, **k))
    return calls


@pytest.mark.parametrize("archive", [True, False], ids=["built once", "keras and a clone"])
def test_loading_restores_output_folded_markers_and_fast_layers(tmp_path, monkeypatch, archive):
    # risc_tf's files are built once (risc_tf.archive); others load with Keras and one clone
    import risc_tf.saving as saving
    from risc_tf.fast import FastConv2D, FoldedBatchNormalization
    from risc_tf.models import RotationOutput

    folded = fold_batchnorm(randomize_batchnorm(build_rotnet(backbone="small")))
    path = tmp_path / "folded.keras"
    saving.save_model(folded, path)
    if not archive:
        monkeypatch.setattr(saving, "load_archive", lambda *a, **k: None)
    calls = _count_clones(monkeypatch)
    loaded = saving.load_model(path)
    assert calls == ([] if archive else ["load_model"])
    kinds = {type(layer) for layer in loaded.layers}
    assert {FastConv2D, FoldedBatchNormalization} <= kinds
    assert isinstance(loaded.layers[-1], RotationOutput)
    x = images()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)),
                               keras.ops.convert_to_numpy(folded(x)), atol=1e-6)
    plain = saving.load_model(path, fast_conv=False)
    assert FastConv2D not in {type(layer) for layer in plain.layers}
    assert len(calls) == (0 if archive else 2)


@pytest.mark.parametrize("archive", [True, False], ids=["built once", "keras and a clone"])
def test_loading_can_fold(tmp_path, monkeypatch, archive):
    import risc_tf.saving as saving
    from risc_tf.fast import FastConv2D

    model = randomize_batchnorm(build_classifier(3, backbone="small"))
    half = fold_batchnorm(model)  # a file with some BatchNorm already folded ...
    path, half_path = tmp_path / "plain.keras", tmp_path / "half.keras"
    saving.save_model(model, path)
    if not archive:
        monkeypatch.setattr(saving, "load_archive", lambda *a, **k: None)
    calls = _count_clones(monkeypatch)
    loaded = saving.load_model(path, fold_batchnorm=True)
    assert calls == ([] if archive else ["load_model"])
    assert not any(isinstance(la, keras.layers.BatchNormalization) for la in loaded.layers)
    conv = loaded.get_layer("block1_conv1")
    assert type(conv) is FastConv2D and conv.use_bias
    assert [la.name for la in loaded.layers] == [la.name for la in model.layers]
    assert_same_outputs(model, loaded, images())
    # ... keeps its folded layers and folds nothing twice
    saving.save_model(half, half_path)
    again = saving.load_model(half_path, fold_batchnorm=True)
    assert_same_outputs(model, again, images())
    # the default load keeps the BatchNorm layers to train
    kept = saving.load_model(path)
    assert any(isinstance(la, keras.layers.BatchNormalization) for la in kept.layers)


def test_pipeline_loads_folded_for_inference(tmp_path):
    keras.utils.set_random_seed(0)
    pipe = RISCPipeline(randomize_batchnorm(build_rotnet(backbone="small")),
                        randomize_batchnorm(build_classifier(3, backbone="small")))
    pipe.save(tmp_path / "p")
    plain = RISCPipeline.load(tmp_path / "p")
    folded = RISCPipeline.load(tmp_path / "p", fold_batchnorm=True)
    assert isinstance(folded.classifier.get_layer("block1_bn1"), FoldedBatchNormalization)
    assert isinstance(folded.rotnet.get_layer("block1_bn1"), FoldedBatchNormalization)
    x = (images(8) * 255).astype("uint8")
    np.testing.assert_allclose(folded.predict_proba(x), plain.predict_proba(x), atol=1e-5)
    np.testing.assert_array_equal(folded.predict_rotation(x), plain.predict_rotation(x))


@pytest.mark.slow
def test_pipeline_on_folded_models_predicts_as_the_original(tmp_path):
    keras.utils.set_random_seed(0)
    rotnet = randomize_batchnorm(build_rotnet(backbone="small"))
    classifier = randomize_batchnorm(build_classifier(3, backbone="small"))
    x = (images(16) * 255).astype("uint8")
    for mode in ("hard", "soft"):
        plain = RISCPipeline(rotnet, classifier, mode=mode)
        fast = RISCPipeline(fold_batchnorm(rotnet), fold_batchnorm(classifier), mode=mode)
        np.testing.assert_allclose(fast.predict_proba(x), plain.predict_proba(x), atol=1e-5)
        np.testing.assert_array_equal(fast.predict_rotation(x), plain.predict_rotation(x))
    fast.save(tmp_path / "folded-pipeline")
    reloaded = RISCPipeline.load(tmp_path / "folded-pipeline")
    assert isinstance(reloaded.classifier.get_layer("block1_bn1"), FoldedBatchNormalization)
    np.testing.assert_array_equal(reloaded.predict_proba(x), fast.predict_proba(x))


class Subclassed(keras.Model):
    def call(self, x):
        return x


@pytest.mark.parametrize("bad", [Subclassed(), "model.keras", None])
def test_rejects_what_is_not_a_functional_model(bad):
    with pytest.raises(ValueError, match="functional keras.Model"):
        fold_batchnorm(bad)
