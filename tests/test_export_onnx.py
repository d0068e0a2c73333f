"""ONNX export of the whole fused pipeline, run in onnxruntime in a process where neither
risc_tf nor TensorFlow can be imported, against the pipeline; its missing-extra message; the
export command's checks before loading anything."""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from risc_tf import RISCPipeline, build_classifier, build_rotnet, preprocess_images
from risc_tf.cli import main
from risc_tf.export import export_pipeline
from risc_tf.ood_layers import fit_ood_detector

SIZE = 16
QUARTERS = (0, 90, 180, 270)
HAS_ONNX = all(importlib.util.find_spec(m) for m in ("tf2onnx", "onnx", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason='needs pip install "risc_tf[onnx]" '
                                                     "onnxruntime")


def _pipeline(mode="hard", angles=QUARTERS, fill="constant", seed=0, ood=False):
    """Small random models with their last layers scaled up, so that their answers move with
    every pixel (a resize or a counter-rotation a little off shows in the probabilities), and
    the RotNet's logits centred on the test batches, so that it finds several rotations;
    with ``ood``, a detector of unlike images on two layers, fitted on random images."""
    keras.utils.set_random_seed(seed)
    rotnet = build_rotnet((SIZE, SIZE, 3), backbone="small", hidden_units=(8, 8), angles=angles)
    classifier = build_classifier(2, (SIZE, SIZE, 3), backbone="small")
    for model in (rotnet, classifier):
        last = model.layers[-1]
        last.set_weights([30.0 * w for w in last.get_weights()])
    features = keras.Model(rotnet.inputs, rotnet.layers[-2].output)
    x = np.concatenate([preprocess_images(b, SIZE) for b in _batches().values()])
    kernel, bias = rotnet.layers[-1].get_weights()
    logits = features.predict(x, verbose=0) @ kernel + bias
    rotnet.layers[-1].set_weights([kernel, bias - logits.mean(axis=0)])
    detector = None
    if ood:
        noise = np.random.default_rng(seed).random((60, SIZE, SIZE, 3), np.float32)
        detector = fit_ood_detector(classifier, noise[:40], np.arange(40) % 2, noise[40:])
        assert len(detector.layers) == 2  # a stage output and the penultimate features
    return RISCPipeline(rotnet, classifier, mode=mode, fill=fill, ood=detector,
                        class_names=["normal", "pneumonia"])


def _batches():
    """Batches of every kind the one input takes: sizes below, at and above the model input,
    non-square, channels 1, 3 and 4, structured (turned copies of one picture)."""
    rng = np.random.default_rng(3)
    picture = np.zeros((28, 28), np.float32)
    picture[4:12, 3:20], picture[14:25, 6:9] = 1.0, 0.6
    picture = np.clip(picture + 0.1 * rng.random((28, 28), np.float32), 0.0, 1.0)
    turned = np.stack([np.rot90(picture, k) for k in range(4)])[..., None]
    return {
        "turned_28_gray": turned,
        "model_size_rgb": rng.random((3, SIZE, SIZE, 3), np.float32),
        "wide_rgba": rng.random((2, 40, 30, 4), np.float32),
        "small_rgb": rng.random((2, 8, 8, 3), np.float32),
        "large_gray": np.kron(turned[:2, ..., 0], np.ones((4, 4), np.float32))[..., None],
    }


_RUN = """
import sys
sys.modules["risc_tf"] = None  # neither risc_tf nor TensorFlow can be imported here
sys.modules["tensorflow"] = None
import json
import numpy as np
import onnxruntime as ort
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
batches = np.load(sys.argv[2])
names = [o.name for o in session.get_outputs()]
result = {key: dict(zip(names, (v.tolist() for v in session.run(None, {"images": batches[key]}))))
          for key in batches.files}
meta = session.get_modelmeta().custom_metadata_map
print("RESULT", json.dumps({"outputs": result, "meta": meta,
                            "input": [session.get_inputs()[0].name,
                                      session.get_inputs()[0].type,
                                      session.get_inputs()[0].shape]}))
"""


def _run_in_onnxruntime(model, tmp_path):
    batches = _batches()
    np.savez(tmp_path / "batches.npz", **batches)
    done = subprocess.run([sys.executable, "-c", _RUN, str(model), str(tmp_path / "batches.npz")],
                          capture_output=True, text=True, timeout=300)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line, done.stderr[-3000:]
    return batches, json.loads(line[len("RESULT "):])


@needs_onnx
@pytest.mark.parametrize("mode, angles, fill", [
    ("hard", QUARTERS, "constant"), ("soft", QUARTERS, "circle"),
    ("hard", tuple(range(0, 360, 45)), "reflect"), ("soft", tuple(range(0, 360, 30)), "circle"),
])
@pytest.mark.slow
def test_onnx_export_runs_in_onnxruntime_as_the_pipeline(tmp_path, mode, angles, fill, capsys):
    through_cli = mode == "hard" and angles == QUARTERS
    pipe = _pipeline(mode, angles, fill, ood=through_cli)
    if through_cli:  # from a saved pipeline with its detector of unlike images
        saved = pipe.save(tmp_path / "pipeline")
        assert main(["export", "--pipeline", str(saved), "--format", "onnx",
                     "--output", str(tmp_path / "risc.onnx")]) == 0
        assert "ONNX model (opset 18" in capsys.readouterr().out
        model = tmp_path / "risc.onnx"
    else:
        model = pipe.export(tmp_path / "risc.onnx", format="onnx")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    batches, found = _run_in_onnxruntime(model, tmp_path)
    assert found["input"] == ["images", "tensor(float)", ["batch", "height", "width", "channels"]]
    assert json.loads(found["meta"]["class_names"]) == ["normal", "pneumonia"]
    assert json.loads(found["meta"]["angles"]) == list(pipe.angles)
    assert (found["meta"]["mode"], found["meta"]["fill"]) == (mode, fill)
    rotations = set()
    for key, x in batches.items():
        out, details = found["outputs"][key], pipe.predict_details(x)
        np.testing.assert_allclose(out["probabilities"], pipe.predict_proba(x), atol=1e-4,
                                   err_msg=key)
        np.testing.assert_allclose(out["rotation_confidence"], details.rotation_confidence,
                                   atol=1e-4, err_msg=key)
        np.testing.assert_allclose(out["class_probability"], details.class_probability,
                                   atol=1e-4, err_msg=key)
        assert out["class_index"] == details.class_index.tolist(), key
        assert out["class_name"] == details.class_name.tolist(), key
        assert out["rotation"] == details.rotation.tolist(), key
        if pipe.ood is not None:
            np.testing.assert_allclose(out["ood_score"], details.ood_score, rtol=1e-3,
                                       atol=1e-3, err_msg=key)
            assert out["review"] == details.review.tolist(), key
        rotations.update(out["rotation"])
    assert len(rotations) > 1  # the check saw more than one correction


@needs_onnx
@pytest.mark.slow
def test_onnx_export_replaces_only_with_overwrite(tmp_path):
    pipe = _pipeline()
    path = tmp_path / "risc.onnx"
    path.write_bytes(b"an earlier export")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        pipe.export(path, format="onnx")
    assert pipe.export(path, format="onnx", overwrite=True) == path
    assert path.read_bytes() != b"an earlier export" and path.stat().st_size > 10_000


def test_onnx_without_its_converter_names_the_extra(tmp_path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tf2onnx" else real(name, *a))
    pipe = _pipeline()
    with pytest.raises(ImportError, match=r'tf2onnx.*pip install "risc_tf\[onnx\]"'):
        pipe.export(tmp_path / "risc.onnx", format="onnx")
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary folder
    # the command checks it before loading the pipeline (which does not exist here)
    with pytest.raises(SystemExit) as err:
        main(["export", "--pipeline", str(tmp_path / "absent"), "--format", "onnx",
              "--output", str(tmp_path / "risc.onnx")])
    message = capsys.readouterr().err
    assert err.value.code == 2 and "--format onnx needs tf2onnx, not installed" in message
    assert 'pip install "risc_tf[onnx]"' in message


def test_export_command_checks_the_output_before_loading_and_names_its_flags(tmp_path, capsys):
    absent = str(tmp_path / "no-pipeline")  # loading it would fail: the output is checked first

    def error(*argv):
        with pytest.raises(SystemExit) as err:
            main(["export", "--pipeline", absent, *argv])
        assert err.value.code == 2
        return capsys.readouterr().err.strip()

    (tmp_path / "serving").mkdir()
    (tmp_path / "serving" / "saved_model.pb").write_bytes(b"")
    taken = error("--output", str(tmp_path / "serving"))
    assert "--output" in taken and "pass --overwrite" in taken and "overwrite=True" not in taken
    assert "not an export" in error("--output", str(tmp_path), "--overwrite")
    assert "--output must end in .tflite for --format litert" in error(
        "--format", "litert", "--output", str(tmp_path / "m.bin"))
    assert "--output must end in .onnx for --format onnx" in error(
        "--format", "onnx", "--output", str(tmp_path / "m.tflite"))
    # only then the pipeline: its own error
    assert "no saved RISCPipeline" in error("--output", str(tmp_path / "new"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["serving"]


def test_export_options_are_keyword_only(tmp_path):
    with pytest.raises(TypeError):
        export_pipeline(_pipeline(), tmp_path / "m.onnx", "onnx")


@needs_onnx
def test_onnx_refuses_interpolated_angle_sets_on_large_inputs(tmp_path):
    keras.utils.set_random_seed(0)
    rotnet = build_rotnet((72, 72, 3), backbone="small", hidden_units=(8, 8),
                          angles=tuple(range(0, 360, 45)))
    pipe = RISCPipeline(rotnet, build_classifier(2, (72, 72, 3), backbone="small"))
    with pytest.raises(ValueError, match="ONNX export of the angle set .* at most 64x64"):
        pipe.export(tmp_path / "m.onnx", format="onnx")
    assert not os.listdir(tmp_path)
