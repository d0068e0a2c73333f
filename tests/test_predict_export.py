"""risc-tf predict on a folder of a user's files, and the serving exports (SavedModel, LiteRT)."""

import csv
import json
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
from PIL import Image

from risc_tf import RISCPipeline, build_classifier, build_rotnet, preprocess_images
from risc_tf.cli import main
from risc_tf.decisions import quarter_turns_to_undo
from risc_tf.scans import predict_files

SIZE = 16


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    keras.utils.set_random_seed(0)
    rotnet = build_rotnet((SIZE, SIZE, 3), backbone="small", hidden_units=(8, 8))
    classifier = build_classifier(2, (SIZE, SIZE, 3), backbone="small")
    pipe = RISCPipeline(rotnet, classifier, class_names=["normal", "pneumonia"])
    return pipe, pipe.save(tmp_path_factory.mktemp("pipe") / "pipeline")


@pytest.fixture()
def scans(tmp_path):
    """A folder of a user's scans: 8-bit and 16-bit PNG, a JPEG, a subfolder, bad files."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "scans"
    (folder / "sub").mkdir(parents=True)
    images = {}
    for i in range(5):
        img = rng.integers(0, 256, (30 + i, 24), dtype=np.uint8)
        Image.fromarray(img).save(folder / f"scan{i}.png")
        images[f"scan{i}.png"] = img
    deep = (rng.integers(0, 4096, (20, 20)) * 16).astype(np.uint16)
    Image.fromarray(deep).save(folder / "deep16.png")
    images["deep16.png"] = deep
    Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(
        folder / "sub" / "colour.jpg")
    (folder / "notes.png").write_text("not an image")
    (folder / "tiny.png").write_bytes(b"")
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(folder / "dot.png")
    return folder, images


def _rows(path):
    with open(path, newline="") as f:
        return {os.path.basename(r["path"]): r for r in csv.DictReader(f)}


def test_predict_files_streams_one_row_per_file_in_order(saved, scans):
    pipe, _ = saved
    folder, _ = scans
    with warnings.catch_warnings():  # the documented shapes and dtypes do not warn
        warnings.simplefilter("error")
        results = list(predict_files(pipe, folder, batch_size=2))
    names = [os.path.basename(r.row["path"]) for r in results]
    assert names == sorted(names) and len(names) == 9  # 6 images + 3 bad files, subfolder not
    status = {n: r.row["status"] for n, r in zip(names, results)}
    assert status["notes.png"] == status["tiny.png"] == status["dot.png"] == "unreadable"
    assert "1x1" in next(r.row["reason"] for r in results if r.row["path"].endswith("dot.png"))
    readable = [r for r in results if r.row["status"] != "unreadable"]
    direct = pipe.predict_details([r.image for r in readable])
    assert [r.row["class_index"] for r in readable] == direct.class_index.tolist()
    assert quarter_turns_to_undo(90.0) == 3 and quarter_turns_to_undo(-90) == 1
    assert quarter_turns_to_undo(45.0) is None


@pytest.mark.slow
def test_cli_predict_csv_copies_report_and_summary(saved, scans, tmp_path, capsys):
    pipe, path = saved
    folder, images = scans
    out, fixed, report = tmp_path / "pred.csv", tmp_path / "upright", tmp_path / "review.html"
    argv = ["predict", "--pipeline", str(path), str(folder), "--recursive", "--output", str(out),
            "--fix-orientation", str(fixed), "--report", str(report), "--quiet",
            "--min-class-probability", "0.9"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "10 files:" in printed and "3 unreadable" in printed and "unreadable: " in printed
    rows = _rows(out)
    assert set(rows) == {"scan0.png", "scan1.png", "scan2.png", "scan3.png", "scan4.png",
                         "deep16.png", "colour.jpg", "notes.png", "tiny.png", "dot.png"}
    assert rows["notes.png"]["status"] == "unreadable" and rows["notes.png"]["reason"]
    copies = 0
    for name, row in rows.items():
        if row["status"] == "unreadable":
            continue
        assert row["class_name"] in ("normal", "pneumonia")
        assert float(row["class_probability"]) < 0.9 and row["status"] == "review"
        assert "low_class_probability" in row["reason_codes"]
        turns = quarter_turns_to_undo(float(row["rotation"]))
        if row["copy_kind"] == "exact" and name in images:  # lossless, full-size original
            copy = np.asarray(Image.open(row["upright_copy"]))
            np.testing.assert_array_equal(copy, np.rot90(images[name], turns))
            assert copy.dtype == images[name].dtype  # 16-bit stays 16-bit
        elif row["copy_kind"] == "exact":  # the JPEG: re-encoded, so compare the geometry
            assert Image.open(row["upright_copy"]).size == (20, 20)
        else:  # upright, or turned off the pipeline's angle set: no copy
            assert row["upright_copy"] == ""
            assert row["rotated"] == "False" or "off_angle_set" in row["reason_codes"]
        copies += row["copy_kind"] == "exact"
    assert f"{copies} exact upright copies in {fixed}" in printed
    page = report.read_text()
    assert "notes.png" in page and "data:image/png;base64," in page
    assert not list(tmp_path.glob(".*"))
    # an existing output is refused unless --overwrite
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 2 and "exists: pass --overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0


@pytest.mark.slow
def test_cli_predict_json_and_bad_inputs(saved, scans, tmp_path, capsys):
    _, path = saved
    folder, _ = scans
    out = tmp_path / "pred.json"
    assert main(["predict", "--pipeline", str(path), str(folder / "scan0.png"),
                 str(folder / "notes.png"), "--output", str(out), "--quiet"]) == 0
    rows = json.loads(out.read_text())
    assert [r["status"] for r in rows][1] == "unreadable" and rows[0]["class_index"] in (0, 1)
    capsys.readouterr()

    def error(*argv):
        with pytest.raises(SystemExit) as err:
            main(["predict", "--pipeline", str(path), *argv, "--quiet"])
        assert err.value.code == 2
        return capsys.readouterr().err

    assert "no such file or folder" in error(str(tmp_path / "absent"), "--output",
                                             str(tmp_path / "a.csv"))
    (tmp_path / "empty").mkdir()
    assert "empty" in error(str(tmp_path / "empty"), "--output", str(tmp_path / "a.csv"))
    assert "must end in .csv or .json" in error(str(folder), "--output", str(tmp_path / "a.txt"))
    assert "--fix-orientation" in error(str(folder), "--output", str(tmp_path / "b.csv"),
                                        "--fix-orientation", str(folder / "up"))
    assert "must be a number in [0, 1]" in error(str(folder), "--output", str(tmp_path / "c.csv"),
                                                  "--min-class-probability", "1.5")
    assert "none of the 1 files could be read" in error(str(folder / "notes.png"), "--output",
                                                        str(tmp_path / "d.csv"))
    assert not (tmp_path / "d.csv").exists()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_saved_model_export_serves_without_risc_tf(saved, tmp_path, mode):
    pipe, _ = saved
    pipe = RISCPipeline(pipe.rotnet, pipe.classifier, mode=mode, fill="circle",
                        class_names=["normal", "pneumonia"])
    x = np.random.default_rng(1).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    export = pipe.export(tmp_path / "serving" / "1")
    np.save(tmp_path / "x.npy", x)
    code = (
        "import sys; sys.modules['risc_tf'] = None\n"  # risc_tf cannot be imported
        "import json, numpy as np, tensorflow as tf\n"
        f"m = tf.saved_model.load({str(export)!r})\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        "a = m.signatures['serving_uint8'](images=tf.constant(x[..., None]))\n"
        "b = m.signatures['serving_default'](images=tf.constant(x[..., None] / 255.0, "
        "tf.float32))\n"
        "print('RESULT', json.dumps({k: v.numpy().tolist() if v.dtype != tf.string else "
        "[s.decode() for s in v.numpy()] for k, v in a.items()}), "
        "float(np.abs(a['probabilities'].numpy() - b['probabilities'].numpy()).max()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "1"}, timeout=300)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT")), None)
    assert line, done.stderr[-3000:]
    assert "loop_optimizer" not in done.stderr  # no control flow for grappler to warn about
    payload, gap = line[len("RESULT "):].rsplit(" ", 1)
    outputs, gap = json.loads(payload), float(gap)
    details = pipe.predict_details(x)
    np.testing.assert_allclose(outputs["probabilities"], pipe.predict_proba(x), atol=1e-5)
    assert outputs["class_index"] == details.class_index.tolist()
    assert outputs["class_name"] == details.class_name.tolist()
    np.testing.assert_allclose(outputs["rotation"], details.rotation)
    np.testing.assert_allclose(outputs["rotation_confidence"], details.rotation_confidence,
                               atol=1e-5)
    assert gap < 1e-5


@pytest.mark.parametrize("mode, angles, fill", [
    ("hard", (0, 90, 180, 270), "constant"),  # the quick tier's export check
    pytest.param("soft", (0, 90, 180, 270), "constant", marks=pytest.mark.slow),
    pytest.param("hard", tuple(range(0, 360, 45)), "circle", marks=pytest.mark.slow),
    pytest.param("soft", tuple(range(0, 360, 30)), "reflect", marks=pytest.mark.slow),
])
@pytest.mark.slow
def test_litert_export_runs_with_builtin_ops_and_matches_the_pipeline(saved, tmp_path, mode,
                                                                      angles, fill):
    """Quarter turns as reversals, other angles as precomputed bilinear gathers: the TFLite
    interpreter (which has no Flex delegate here) runs every angle set."""
    import tensorflow as tf

    pipe, _ = saved
    keras.utils.set_random_seed(5)
    rotnet = build_rotnet((SIZE, SIZE, 3), backbone="small", hidden_units=(8, 8), angles=angles)
    pipe = RISCPipeline(rotnet, pipe.classifier, mode=mode, fill=fill)
    path = pipe.export(tmp_path / "risc.tflite", format="litert")
    interpreter = tf.lite.Interpreter(model_path=str(path))
    x = np.random.default_rng(2).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    out = interpreter.get_signature_runner()(images=preprocess_images(x, SIZE))
    np.testing.assert_allclose(out["probabilities"], pipe.predict_proba(x), atol=1e-4)
    np.testing.assert_allclose(out["rotation"], pipe.predict_rotation(x))


@pytest.mark.slow
def test_export_errors(saved, tmp_path, capsys):
    pipe, path = saved
    with pytest.raises(ValueError, match="format must be one of"):
        pipe.export(tmp_path / "x", format="torchscript")
    with pytest.raises(ValueError, match=r"path must end in .tflite for format='litert'"):
        pipe.export(tmp_path / "x.bin", format="litert")
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError, match="exists"):
        pipe.export(tmp_path / "taken")
    with pytest.raises(SystemExit) as err:
        main(["export", "--pipeline", str(path), "--output", str(tmp_path / "taken")])
    assert err.value.code == 2 and "exists" in capsys.readouterr().err
    assert main(["export", "--pipeline", str(path), "--output", str(tmp_path / "m.tflite"),
                 "--format", "litert"]) == 0


def test_upright_copies_of_several_inputs_keep_their_folders_and_never_collide(saved, tmp_path):
    _, path = saved
    rng = np.random.default_rng(3)
    for folder in ("a", "b"):
        (tmp_path / "in" / folder).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8)).save(
            tmp_path / "in" / folder / "scan.png")
    out = tmp_path / "pred.csv"
    assert main(["predict", "--pipeline", str(path), str(tmp_path / "in" / "a"),
                 str(tmp_path / "in" / "b"), "--output", str(out), "--fix-orientation",
                 str(tmp_path / "up"), "--quiet"]) == 0
    copies = [r["upright_copy"] for r in _rows(out).values() if r["upright_copy"]]
    with open(out, newline="") as f:
        copies = [r["upright_copy"] for r in csv.DictReader(f) if r["upright_copy"]]
    assert len(copies) == len(set(copies))  # one file per input: a/scan.png, b/scan.png
    assert all(c.endswith(("a/scan.png", "b/scan.png")) for c in copies)


@pytest.mark.slow
def test_three_local_shards_merged_equal_one_run_with_a_real_pipeline(saved, tmp_path, capsys):
    """The worked example of docs/deploy.md: three workers, one merge, the same file."""
    _, path = saved
    rng = np.random.default_rng(4)
    (tmp_path / "scans" / "ward").mkdir(parents=True)
    for i in range(11):
        folder = tmp_path / "scans" / ("ward" if i % 3 == 0 else "")
        Image.fromarray(rng.integers(0, 256, (20 + i, 24), dtype=np.uint8)).save(
            folder / f"scan{i:02d}.png")
    (tmp_path / "scans" / "broken.png").write_bytes(b"\x89PNG\r\n")
    common = ["--pipeline", str(path), str(tmp_path / "scans"), "--recursive", "--quiet",
              "--fix-orientation", str(tmp_path / "up"), "--min-class-probability", "0.6"]
    assert main(["predict", *common, "--output", str(tmp_path / "one.csv")]) == 0
    one = (tmp_path / "one.csv").read_text()
    shards = []  # (--overwrite: the shards write the same copies again)
    for k in range(3):
        out = tmp_path / "shards" / f"pred-{k}.csv"
        out.parent.mkdir(exist_ok=True)
        assert main(["predict", *common, "--overwrite", "--shard", f"{k}/3",
                     "--output", str(out)]) == 0
        shards.append(str(out))
    capsys.readouterr()
    assert main(["merge", *shards, "--output", str(tmp_path / "merged.csv")]) == 0
    assert "3 shards, 12 files" in capsys.readouterr().out
    assert (tmp_path / "merged.csv").read_text() == one
