"""The whole reproduce path on real PneumoniaMNIST with the small backbone and a tiny budget."""

import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from risc_tf import RISCPipeline, load_medmnist
from risc_tf.reporting import RUN_FILE, prepare_output_dir
from risc_tf.reproduce import PAPER_RESULTS, ReproduceConfig, paper_angles, reproduce

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "medmnist"
needs_data = pytest.mark.skipif(
    not (DATA / "pneumoniamnist.npz").is_file(), reason=f"needs {DATA}/pneumoniamnist.npz"
)
METHODS = {"classifier", "rotation_augmented", "tta", "risc_hard", "risc_soft"}
PLOTS = {"training_curves.png", "confusion_matrices.png", "per_angle_accuracy.png",
         "angle_sweep.png"}


def _tiny(output, **kw) -> ReproduceConfig:
    settings = dict(data_root=DATA, backbone="small", epochs=1, subset=64, batch_size=32,
                    recalibration_batches=2, sweep_step=60.0, timing_samples=3, verbose=0)
    settings.update(kw)
    return ReproduceConfig("pneumoniamnist", output, **settings)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce") / "pneumonia"
    return out, reproduce(_tiny(out))


def _in_unit(value) -> bool:
    return value is None or 0.0 <= value <= 1.0


@needs_data
@pytest.mark.slow
@pytest.mark.realdata
def test_reproduce_writes_every_file(run):
    out, _ = run
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    expected = {"results.json", "results.md", RUN_FILE, *PLOTS,
                "models/rotation_augmented.keras", "models/risc_pipeline/rotnet.keras",
                "models/risc_pipeline/classifier.keras",
                "models/risc_pipeline/risc_pipeline.json"}
    assert expected <= files
    for name in PLOTS:
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
        assert min(matplotlib.image.imread(out / name).shape[:2]) > 200
    record = json.loads((out / RUN_FILE).read_text())
    assert record["status"] == "complete" and "results.json" in record["files"]


@needs_data
@pytest.mark.slow
@pytest.mark.realdata
def test_results_json_keys_and_ranges(run):
    out, results = run

    def strict(text):
        raise ValueError(f"non-standard JSON constant {text}")

    saved = json.loads((out / "results.json").read_text(), parse_constant=strict)
    assert saved["run"]["id"] == json.loads((out / RUN_FILE).read_text())["id"]
    assert saved["run"]["status"] == "complete" and saved["run"]["wall_time_s"] > 0
    assert {"run", "config", "machine", "dataset", "angles", "methods", "training", "rotnet",
            "evaluation", "sweep", "timing", "paper", "summary", "plots"} <= set(saved)
    d = saved["dataset"]
    assert d["split_sizes"] == {"train": 64, "val": 64, "test": 64}
    assert d["full_split_sizes"] == {"train": 4708, "val": 524, "test": 624}
    assert d["num_classes"] == 2 and d["task"] == "binary-class"
    assert saved["angles"]["rotnet"] == [0.0, 90.0, 180.0, 270.0]
    assert saved["sweep"]["angles"] == [float(a) for a in range(0, 360, 60)]
    for split in ("upright", "rotated"):
        assert set(saved["evaluation"][split]) == METHODS
        for m in saved["evaluation"][split].values():
            assert 0 <= m["acc"] <= 1 and _in_unit(m["auc"]) and m["n"] == 64
            assert np.sum(m["confusion_matrix"]) == 64
    for m in saved["evaluation"]["rotated"].values():
        assert set(m["per_angle_acc"]) <= {"0", "90", "180", "270"}
        assert all(0 <= v <= 1 for v in m["per_angle_acc"].values())
    assert 0 <= saved["rotnet"]["rotated_test_acc"] <= 1
    for name in METHODS:
        assert len(saved["sweep"]["acc"][name]) == 6
        assert all(0 <= v <= 1 for v in saved["sweep"]["acc"][name])
    for name, t in saved["training"].items():
        assert t["epochs_run"] == 1 and t["train_time_s"] > 0, name
        assert len(t["history"]["val_accuracy"]) == 1
    assert set(saved["timing"]) == METHODS | {"rotnet"}
    for t in saved["timing"].values():
        assert t["batched_ms_per_sample"] > 0 and t["single_ms_per_sample"] > 0
    assert saved["paper"] == PAPER_RESULTS["pneumoniamnist"]
    assert saved["summary"]["ranking_rotated"][0] in METHODS
    assert saved["machine"]["cores_available"] >= 1 and saved["machine"]["tensorflow"]


@needs_data
@pytest.mark.slow
@pytest.mark.realdata
def test_markdown_keeps_paper_numbers_apart(run):
    out, results = run
    md = (out / "results.md").read_text()
    assert "## Table 1" in md and "## Table 2" in md and "**Verdict.**" in md
    assert "| ACC (this run) | AUC (this run) | ACC (paper) |" in md
    row = next(line for line in md.splitlines() if line.startswith("| Rotated test, risc_hard"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == f"{results['evaluation']['rotated']['risc_hard']['acc']:.3f}"
    assert cells[3] == "0.870"  # the paper's number, in the paper column only
    for name in PLOTS:
        assert f"({name})" in md


@needs_data
@pytest.mark.slow
@pytest.mark.realdata
def test_saved_pipeline_predicts(run):
    out, _ = run
    pipe = RISCPipeline.load(out / "models" / "risc_pipeline")
    x, _ = load_medmnist("pneumoniamnist", "test", DATA)
    assert pipe.predict(x[:5]).shape == (5,)


@needs_data
@pytest.mark.realdata
def test_rerun_refuses_to_mix_runs(run, tmp_path):
    out, results = run
    with pytest.raises(FileExistsError, match="finished run"):
        reproduce(_tiny(out))
    assert json.loads((out / RUN_FILE).read_text())["id"] == results["run"]["id"]
    missing = tmp_path / "never"
    with pytest.raises(FileNotFoundError, match="pneumoniamnist.npz not found"):
        reproduce(_tiny(missing, data_root=tmp_path))
    assert not missing.exists()  # a missing data file leaves no output behind


def test_prepare_output_dir_protocol(tmp_path):
    out = tmp_path / "run"
    first = prepare_output_dir(out)
    assert json.loads((out / RUN_FILE).read_text())["status"] == "running"
    (out / "results.json").write_text("{}")
    with pytest.raises(FileExistsError, match="unfinished run"):
        prepare_output_dir(out)
    second = prepare_output_dir(out, overwrite=True)
    assert second["id"] != first["id"] and not (out / "results.json").exists()
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a risc-tf run folder"):
        prepare_output_dir(other, overwrite=True)
    assert (other / "notes.txt").read_text() == "keep me"
    with pytest.raises(FileExistsError, match="parent is a file"):
        prepare_output_dir(other / "notes.txt" / "sub")


def test_paper_angle_sets():
    assert paper_angles("pneumoniamnist") == (0.0, 90.0, 180.0, 270.0)
    assert paper_angles("organamnist") == (0.0, 90.0, 180.0, 270.0)
    assert paper_angles("retinamnist") == tuple(45.0 * i for i in range(8))
    assert _tiny("x").validate().angles == (0.0, 90.0, 180.0, 270.0)
    assert _tiny("x", angles=[0, 120, 240]).validate().angles == (0.0, 120.0, 240.0)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"epochs": 0}, "epochs must be an int >= 1"),
        ({"subset": 1}, "subset must be at least 2"),
        ({"sweep_step": 7.0}, "step must divide 360"),
        ({"angles": [0]}, "at least two rotations"),
        ({"learning_rate": -1.0}, "learning_rate must be positive"),
        ({"patience": 0}, "patience must be a positive int or None"),
    ],
)
def test_config_errors(change, match):
    with pytest.raises(ValueError, match=match):
        _tiny("x", **change).validate()


def test_config_rejects_unknown_and_multilabel_datasets():
    with pytest.raises(ValueError, match="unknown dataset"):
        ReproduceConfig("mnist", "x").validate()
    with pytest.raises(ValueError, match="multi-label"):
        ReproduceConfig("chestmnist", "x").validate()
