"""The whole reproduce path on real PneumoniaMNIST with the small backbone and a tiny budget,
several seeds, the aggregate with its statistics, and every error."""

import json
import shutil

import matplotlib.image
import numpy as np
import pytest

from risc_tf import RISCPipeline, load_medmnist
from risc_tf.experiments.aggregation import aggregate
from risc_tf.experiments.config import ReproduceConfig, recipe_settings
from risc_tf.experiments.run import reproduce
from risc_tf.experiments.rundir import RUN_FILE, prepare_output_dir
from risc_tf.experiments.seeds import reproduce_seeds
from risc_tf.paper import PAPER_RESULTS, paper_angles
from tests.conftest import DATA_ROOT, requires_data

METHODS = {"classifier", "rotation_augmented", "tta", "risc_hard", "risc_soft"}
PLOTS = {"training_curves.png", "confusion_matrices.png", "per_angle_accuracy.png",
         "angle_sweep.png", "selective_classification.png"}


def _tiny(output, **kw) -> ReproduceConfig:
    settings = dict(data_root=DATA_ROOT, backbone="small", epochs=1, rotnet_epochs=1, subset=64,
                    batch_size=32, recalibration_batches=2, sweep_step=60.0, timing_samples=3,
                    verbose=0)
    settings.update(kw)
    return ReproduceConfig("pneumoniamnist", output, **settings)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    if not (DATA_ROOT / "pneumoniamnist.npz").is_file():
        pytest.skip(f"real MedMNIST files not found in {DATA_ROOT}")
    out = tmp_path_factory.mktemp("reproduce") / "pneumonia"
    return out, reproduce(_tiny(out))


def _in_unit(value) -> bool:
    return value is None or 0.0 <= value <= 1.0


@requires_data
@pytest.mark.slow
@pytest.mark.realdata
def test_reproduce_writes_every_file(run):
    out, _ = run
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    expected = {"results.json", "results.md", RUN_FILE, *PLOTS,
                "models/rotation_augmented.keras", "models/risc_pipeline/rotnet.keras",
                "models/risc_pipeline/classifier.keras",
                "models/risc_pipeline/risc_pipeline.json", "models/risc_pipeline/MODEL_CARD.md"}
    assert expected <= files
    for name in PLOTS:
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
        assert min(matplotlib.image.imread(out / name).shape[:2]) > 200
    record = json.loads((out / RUN_FILE).read_text())
    assert record["status"] == "complete" and "results.json" in record["files"]
    assert record["command"] and "commit" in record


@requires_data
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
            "evaluation", "selective", "sweep", "timing", "paper", "summary", "plots",
            "test_labels"} <= set(saved)
    d = saved["dataset"]
    assert d["split_sizes"] == {"train": 64, "val": 64, "test": 64}
    assert d["full_split_sizes"] == {"train": 4708, "val": 524, "test": 624}
    assert d["num_classes"] == 2 and d["class_names"] == ["normal", "pneumonia"]
    assert saved["angles"]["rotnet"] == [0.0, 90.0, 180.0, 270.0]
    assert saved["config"]["recipe"] == "paper" and saved["config"]["tilt"] == 0.0
    assert saved["sweep"]["angles"] == [float(a) for a in range(0, 360, 60)]
    for split in ("upright", "rotated"):
        assert set(saved["evaluation"][split]) == METHODS
        for m in saved["evaluation"][split].values():
            assert 0 <= m["acc"] <= 1 and _in_unit(m["auc"]) and m["n"] == 64
            assert np.sum(m["confusion_matrix"]) == 64 and len(m["predicted"]) == 64
    for m in saved["evaluation"]["rotated"].values():
        assert set(m["per_angle_acc"]) <= {"0", "90", "180", "270"}
    assert 0 <= saved["rotnet"]["acc"] <= 1 and saved["rotnet"]["n_in_set"] == 64
    for name in METHODS:
        assert len(saved["sweep"]["acc"][name]) == 6
        summary = saved["sweep"]["summary"][name]
        assert summary["quarter_turn_mean"] is not None and summary["off_grid_mean"] is not None
    for split in ("val", "test"):
        curve = saved["selective"][split]["rotation_confidence"]
        assert curve["coverage"][0] == 1.0 and all(_in_unit(a) for a in curve["accuracy"])
    for name, t in saved["training"].items():
        assert t["epochs_run"] == 1 and t["train_time_s"] > 0, name
    assert set(saved["timing"]) == METHODS | {"rotnet"}
    assert saved["paper"] == PAPER_RESULTS["pneumoniamnist"]
    assert saved["machine"]["cores_available"] >= 1 and saved["machine"]["tensorflow"]


@requires_data
@pytest.mark.slow
@pytest.mark.realdata
def test_markdown_keeps_paper_numbers_apart(run):
    out, results = run
    md = (out / "results.md").read_text()
    assert "## Table 1" in md and "## Table 2" in md and "**Verdict.**" in md
    assert "## Over the whole circle" in md and "## Selective classification" in md
    assert "| ACC (this run) | AUC (this run) | ACC (paper) |" in md
    row = next(line for line in md.splitlines() if line.startswith("| Rotated test, risc_hard"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == f"{results['evaluation']['rotated']['risc_hard']['acc']:.3f}"
    assert cells[3] == "0.870"  # the paper's number, in the paper column only
    for name in PLOTS:
        assert f"({name})" in md


@requires_data
@pytest.mark.slow
@pytest.mark.realdata
def test_saved_pipeline_predicts_with_class_names_and_a_card(run):
    out, results = run
    pipe = RISCPipeline.load(out)  # the run folder itself
    x, _ = load_medmnist("pneumoniamnist", "test", DATA_ROOT)
    assert pipe.predict(x[:5]).shape == (5,)
    assert pipe.classes_.tolist() == ["normal", "pneumonia"]
    assert pipe.metadata["dataset"] == "pneumoniamnist" and pipe.metadata["seed"] == 0
    card = (out / "models" / "risc_pipeline" / "MODEL_CARD.md").read_text()
    assert "accuracy by rotation angle" in card and "Not a medical device" in card


@requires_data
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


@requires_data
@pytest.mark.slow
@pytest.mark.realdata
def test_seeds_resume_and_aggregate_with_statistics(run, tmp_path):
    out = tmp_path / "seeds"
    first = reproduce_seeds(_tiny(out), seeds=(0, 1))
    ids = {s: json.loads((out / f"seed-{s}" / RUN_FILE).read_text())["id"] for s in (0, 1)}
    assert sorted(p.name for p in out.iterdir()) == sorted([
        "seed-0", "seed-1", "experiment.json", "results.json", "results.md",
        "accuracy_intervals.png"])
    summary = first["summary"]
    assert summary["methods"]["risc_hard"]["rotated_acc"]["n"] == 2
    ci = summary["methods"]["risc_hard"]["rotated_acc_ci95"]
    assert ci["low"] <= summary["methods"]["risc_hard"]["rotated_acc"]["mean"] <= ci["high"]
    tests = summary["tests"]["risc_hard"]
    assert set(tests) == {"classifier", "rotation_augmented", "tta"}
    assert all(t["verdict"] in ("better", "at par", "worse") for t in tests.values())
    assert first["verdict"].startswith("Over 2 seeds, RISC hard reaches")
    # an interrupted seed is rerun, a finished one kept
    (out / "seed-1" / "results.json").unlink()
    again = reproduce_seeds(_tiny(out), seeds=(0, 1))
    assert json.loads((out / "seed-0" / RUN_FILE).read_text())["id"] == ids[0]
    assert json.loads((out / "seed-1" / RUN_FILE).read_text())["id"] != ids[1]
    assert again["seeds"] == [0, 1]
    with pytest.raises(FileExistsError, match="other settings .*subset"):
        reproduce_seeds(_tiny(out, subset=32), seeds=(0, 1))
    # aggregate of separate runs: the same numbers
    separate = aggregate([out / "seed-0", out / "seed-1"], tmp_path / "agg")
    assert separate["summary"]["methods"] == again["summary"]["methods"]
    md = (tmp_path / "agg" / "results.md").read_text()
    assert "**Verdict.**" in md and "McNemar" in md
    refined = separate["summary"]["rotnet"]["sweep_refined_mae_deg"]
    assert refined["n"] == 2 and f"{refined['mean']:.1f} +- " in md


@requires_data
@pytest.mark.realdata
def test_aggregate_refuses_what_is_not_one_experiment(run, tmp_path):
    out, _ = run
    with pytest.raises(ValueError, match="not a risc-tf reproduce run folder"):
        aggregate([out, tmp_path], tmp_path / "agg")
    unfinished = tmp_path / "unfinished"
    shutil.copytree(out, unfinished)
    record = json.loads((unfinished / RUN_FILE).read_text())
    (unfinished / RUN_FILE).write_text(json.dumps({**record, "status": "running"}))
    with pytest.raises(ValueError, match="unfinished.*holds an unfinished run"):
        aggregate([out, unfinished], tmp_path / "agg")
    other = tmp_path / "other"
    shutil.copytree(out, other)
    results = json.loads((other / "results.json").read_text())
    results["config"]["recipe"] = "tuned"
    results["config"]["seed"] = 5
    (other / "results.json").write_text(json.dumps(results))
    with pytest.raises(ValueError, match="other differs from .* in recipe"):
        aggregate([out, other], tmp_path / "agg")
    with pytest.raises(ValueError, match="repeat a seed"):
        aggregate([out, out], tmp_path / "agg")
    assert not (tmp_path / "agg").exists()  # nothing written


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


def test_paper_angle_sets_and_recipes():
    assert paper_angles("pneumoniamnist") == (0.0, 90.0, 180.0, 270.0)
    assert paper_angles("organamnist") == (0.0, 90.0, 180.0, 270.0)
    assert paper_angles("retinamnist") == tuple(45.0 * i for i in range(8))
    assert _tiny("x").validate().angles == (0.0, 90.0, 180.0, 270.0)
    assert _tiny("x", angles=[0, 120, 240]).validate().angles == (0.0, 120.0, 240.0)
    assert _tiny("x", angles=[0, 120, 240]).validate().tilt == 60.0  # half the gap
    paper = ReproduceConfig("pneumoniamnist", "x").validate()
    assert (paper.epochs, paper.patience, paper.optimizer, paper.learning_rate) == \
        (10, 5, "adam", 1e-3)  # the paper recipe is the earlier setup, exactly
    assert paper.classifier_init == "scratch" and paper.classifier_options()["augment"] is None
    tuned = ReproduceConfig("pneumoniamnist", "x", recipe="tuned").validate()
    assert tuned.recipe == "tuned" and {tuned.epochs, tuned.classifier_init} != {10, "scratch"}
    explicit = ReproduceConfig("pneumoniamnist", "x", recipe="tuned", augment="none").validate()
    assert explicit.classifier_options()["augment"] is None
    assert explicit.validate() == explicit  # validating twice changes nothing
    assert set(recipe_settings("paper", "any")) == set(recipe_settings("tuned", "retinamnist"))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"epochs": 0}, "epochs must be an int >= 1"),
        ({"subset": 1}, "subset must be an int >= 2"),
        ({"sweep_step": 7.0}, "step must divide 360"),
        ({"angles": [0]}, "at least two rotations"),
        ({"angles": list(range(0, 360, 2))}, "too fine for 32x32"),
        ({"learning_rate": -1.0}, "learning_rate must be a finite number > 0"),
        ({"patience": -1}, "patience must be an int >= 0"),
        ({"recipe": "fancy"}, "recipe must be one of"),
        ({"fill": "mirror"}, "fill must be one of"),
        ({"protocol": "paper"}, "protocol must be one of"),
        ({"tilt": 200}, "tilt must be"),
        ({"angles": [0, 45, 90, 135, 180, 225, 270, 315], "tilt": 30}, "larger than half"),
        ({"jitter": 50}, "jitter of 50 deg is larger than half"),
        ({"sweep_split": "train"}, "sweep_split must be one of"),
        ({"seed": -1}, r"seed must be an int in \[0, 4294967295\]; got -1"),
        ({"seed": 2**32}, r"seed must be an int in \[0, 4294967295\]; got 4294967296"),
        ({"seed": 1.0}, "seed must be an int"),
        ({"deterministic": "yes"}, "deterministic must be True or False; got 'yes'"),
    ],
)
def test_config_errors(change, match):
    with pytest.raises(ValueError, match=match):
        _tiny("x", **change).validate()


def test_bad_seed_lists():
    for seeds, match in (([0, 0], "distinct"), ([-1], r"seed must be an int in \[0, "),
                         ([0.5], "seed must be an int"), ([], "non-empty")):
        with pytest.raises(ValueError, match=match):
            reproduce_seeds(_tiny("x"), seeds)


def test_config_rejects_unknown_and_multilabel_datasets():
    with pytest.raises(ValueError, match="unknown dataset"):
        ReproduceConfig("mnist", "x").validate()
    with pytest.raises(ValueError, match="multi-label"):
        ReproduceConfig("chestmnist", "x").validate()


def test_experiments_aggregate_stays_a_function_after_its_module_is_imported():
    import importlib

    import risc_tf.experiments as experiments

    importlib.import_module("risc_tf.experiments.aggregation")
    importlib.import_module("risc_tf.experiments.seeds")
    assert callable(experiments.aggregate) and experiments.aggregate.__name__ == "aggregate"
