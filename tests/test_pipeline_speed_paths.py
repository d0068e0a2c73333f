"""RISCPipeline with the fast layers: one trace per input signature, saved and loaded as is."""

import numpy as np

import risc_tf
from risc_tf.fast import FastBatchNormalization, FastConv2D


def _pipeline(mode="hard"):
    rotnet = risc_tf.build_rotnet(input_shape=(8, 8, 3), backbone="small")
    classifier = risc_tf.build_classifier(3, input_shape=(8, 8, 3), backbone="small")
    return risc_tf.RISCPipeline(rotnet, classifier, mode=mode, batch_size=4)


def test_one_trace_for_every_batch_size_and_a_single_image():
    pipe = _pipeline()
    x = np.random.default_rng(0).random((7, 8, 8, 3)).astype("float32")
    out = [pipe.predict_proba(x[:n]) for n in (1, 3, 7)]  # 7 = batches of 4 and 3
    single = pipe.predict_proba(x[0])
    np.testing.assert_allclose(single, out[2][0], atol=1e-6)
    np.testing.assert_allclose(out[1], out[2][:3], atol=1e-6)
    assert len(pipe._graphs) == 1
    assert next(iter(pipe._graphs.values())).experimental_get_tracing_count() == 1


def test_soft_mode_matches_per_rotation_classification():
    pipe = _pipeline("soft")
    x = np.random.default_rng(1).random((5, 8, 8, 3)).astype("float32")
    p_rot = pipe.rotnet.predict(x, verbose=0)
    expected = sum(
        p_rot[:, i : i + 1]
        * pipe.classifier.predict(risc_tf.counter_rotate(x, angle).numpy(), verbose=0)
        for i, angle in enumerate(pipe.angles)
    )
    np.testing.assert_allclose(pipe.predict_proba(x), expected, atol=1e-5)


def test_saved_pipeline_loads_with_fast_layers(tmp_path):
    pipe = _pipeline()
    x = np.random.default_rng(2).integers(0, 256, (3, 8, 8), dtype=np.uint8)
    loaded = risc_tf.RISCPipeline.load(pipe.save(tmp_path / "pipe"))
    for model in (loaded.rotnet, loaded.classifier):
        kinds = {type(layer) for layer in model.layers}
        assert FastConv2D in kinds and FastBatchNormalization in kinds
    np.testing.assert_allclose(loaded.predict_proba(x), pipe.predict_proba(x), atol=1e-6)
