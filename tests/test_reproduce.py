"""The whole reproduce path on real PneumoniaMNIST with the small backbone and a tiny budget,
several seeds, the aggregate with its statistics, and every error."""

import json
import shutil
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from risc_tf import RISCPipeline, load_medmnist
from risc_tf.experiments import rundir
from risc_tf.experiments.aggregation import aggregate
from risc_tf.experiments.config import ReproduceConfig, recipe_settings
from risc_tf.experiments.results import load_results
from risc_tf.experiments.run import reproduce
from risc_tf.experiments.rundir import RUN_FILE, prepare_output_dir
from risc_tf.experiments.seeds import reproduce_seeds
from risc_tf.paper import PAPER_RESULTS, paper_angles
from risc_tf.statistics import holm
from tests.conftest import DATA_ROOT, requires_data

METHODS = {"classifier", "rotation_augmented", "tta", "risc_hard", "risc_soft"}
PLOTS = {"training_curves.png", "confusion_matrices.png", "per_angle_accuracy.png",
         "angle_sweep.png", "rotnet_angle_error.png", "selective_classification.png",
         "reliability.png"}


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


#: Committed reproduce runs (per-seed folders) and their aggregates: the README's verdicts.
COMMITTED = Path(__file__).resolve().parents[1] / "docs" / "results"
COMMITTED_AGGREGATES = sorted(
    p.parent.name for p in COMMITTED.glob("*/results.json")
    if json.loads(p.read_text()).get("kind") == "aggregate")


def _copy_runs(name: str, to) -> list:
    """The per-seed results.json and run.json of a committed experiment (no plots, no models:
    all the aggregate reads)."""
    folders = []
    for seed_dir in sorted((COMMITTED / name).glob("seed-*")):
        (to / seed_dir.name).mkdir(parents=True)
        for file in ("results.json", RUN_FILE):
            shutil.copy(seed_dir / file, to / seed_dir.name / file)
        folders.append(to / seed_dir.name)
    return folders


def _rewrite_baseline(folder, base: str, risc_only: int, base_only: int, seed: int) -> None:
    """Make ``base``'s rotated-test predictions equal RISC hard's except on ``risc_only``
    images only RISC gets right and ``base_only`` images only ``base`` gets right."""
    path = folder / "results.json"
    results = json.loads(path.read_text())
    labels = np.asarray(results["test_labels"])
    risc = np.asarray(results["evaluation"]["rotated"]["risc_hard"]["predicted"])
    assert set(labels.tolist()) <= {0, 1}  # binary: a wrong answer is 1 - label
    rng = np.random.default_rng(seed)
    predicted = risc.copy()
    lose = rng.choice(np.flatnonzero(risc == labels), risc_only, replace=False)
    win = rng.choice(np.flatnonzero(risc != labels), base_only, replace=False)
    predicted[lose], predicted[win] = 1 - labels[lose], labels[win]
    entry = results["evaluation"]["rotated"][base]
    entry["predicted"], entry["acc"] = predicted.tolist(), float(np.mean(predicted == labels))
    path.write_text(json.dumps(results))


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
    # what decides the sums (and the speed): the CPU's vector units and TF's kernels
    assert saved["machine"]["tf_cpu_kernels"] in {"oneDNN", "Eigen"}
    assert set(saved["machine"]["cpu_features"]) <= set(rundir._CPU_FEATURES)
    assert f"{saved['machine']['tf_cpu_kernels']} CPU kernels" in (out / "results.md").read_text()


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
    assert cells[1] == f"{results.evaluation.rotated['risc_hard'].acc:.3f}"
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


@pytest.fixture
def finished(tmp_path):
    """A finished run folder as reproduce leaves it (results.json, run.json; a copy of a
    committed run, so that refusals are tested without training one)."""
    return _copy_runs("pneumoniamnist-paper", tmp_path / "finished")[0]


@requires_data
@pytest.mark.realdata
def test_rerun_refuses_to_mix_runs(finished, tmp_path):
    out, before = finished, (finished / RUN_FILE).read_text()
    with pytest.raises(FileExistsError, match="finished run"):
        reproduce(_tiny(out))
    assert (out / RUN_FILE).read_text() == before
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
    summary = first.summary
    assert summary.methods["risc_hard"].rotated_acc.n == 2
    ci = summary.methods["risc_hard"].rotated_acc_ci95
    assert ci.low <= summary.methods["risc_hard"].rotated_acc.mean <= ci.high
    tests = summary.tests["risc_hard"]
    assert set(tests) == {"classifier", "rotation_augmented", "tta"}
    assert set(summary.tests) == {"risc_hard", "risc_soft"}
    assert {b: t.p_holm for b, t in tests.items()} == \
        holm({b: t.combined["p_value"] for b, t in tests.items()})
    for base, t in tests.items():  # each verdict follows from its numbers
        accs = [summary.methods[m].rotated_acc.mean for m in ("risc_hard", base)]
        assert t.combined["mean_difference"] == pytest.approx(accs[0] - accs[1], abs=1e-9)
        expected = "at par" if t.p_holm >= 0.05 else \
            "better" if t.combined["mean_difference"] > 0 else "worse"
        assert t.verdict == expected
        assert (f"at par with {base} (" if expected == "at par" else
                f"{expected} than {base} (") in first.verdict
    assert first.verdict.startswith("Over 2 seeds, RISC hard reaches")
    # an interrupted seed is rerun, a finished one kept
    (out / "seed-1" / "results.json").unlink()
    again = reproduce_seeds(_tiny(out), seeds=(0, 1))
    assert json.loads((out / "seed-0" / RUN_FILE).read_text())["id"] == ids[0]
    assert json.loads((out / "seed-1" / RUN_FILE).read_text())["id"] != ids[1]
    assert again.seeds == [0, 1]
    with pytest.raises(FileExistsError, match="other settings .*subset"):
        reproduce_seeds(_tiny(out, subset=32), seeds=(0, 1))
    # aggregate of separate runs: the same numbers
    separate = aggregate([out / "seed-0", out / "seed-1"], tmp_path / "agg")
    assert separate.summary.methods == again.summary.methods
    assert load_results(tmp_path / "agg" / "results.json") == separate
    md = (tmp_path / "agg" / "results.md").read_text()
    assert "**Verdict.**" in md and "McNemar" in md
    refined = separate.summary.rotnet.sweep_refined_mae_deg
    assert refined.n == 2 and f"{refined.mean:.1f} +- " in md
    # the output may not be a run folder (it would replace the run's own results)
    before = (out / "seed-0" / "results.json").read_bytes()
    for inside in (out / "seed-0", out / "seed-0" / "agg"):
        with pytest.raises(ValueError, match="the run folder .*seed-0"):
            aggregate([out / "seed-0", out / "seed-1"], inside, overwrite=True)
    assert (out / "seed-0" / "results.json").read_bytes() == before
    assert not (out / "seed-0" / "agg").exists()


def test_aggregate_refuses_what_is_not_one_experiment(finished, tmp_path):
    out = finished
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


def test_aggregate_verdicts_follow_from_constructed_predictions(tmp_path):
    """Committed PneumoniaMNIST runs with the baselines' predictions rewritten: RISC clearly
    ahead of the classifier in every seed, level with the rotation-augmented one (ahead in
    one seed, behind in another), clearly behind TTA in every seed."""
    folders = _copy_runs("pneumoniamnist-paper", tmp_path / "runs")
    plan = {"classifier": [(60, 5), (55, 8), (62, 4)],
            "rotation_augmented": [(12, 10), (10, 12), (11, 11)],
            "tta": [(5, 60), (8, 55), (4, 62)]}
    for seed, folder in enumerate(folders):
        for base, counts in plan.items():
            _rewrite_baseline(folder, base, *counts[seed], seed)
    agg = aggregate(folders, tmp_path / "agg").to_json()
    tests = agg["summary"]["tests"]["risc_hard"]
    n_images = len(json.loads((folders[0] / "results.json").read_text())["test_labels"])
    for base, counts in plan.items():
        assert [(s["a_only"], s["b_only"]) for s in tests[base]["per_seed"]] == counts
        differences = [(a - b) / n_images for a, b in counts]
        assert tests[base]["combined"]["mean_difference"] == \
            pytest.approx(np.mean(differences), abs=1e-9)
        assert tests[base]["seeds"]["differences"] == pytest.approx(differences, abs=1e-9)
    assert tests["classifier"]["verdict"] == "better" and tests["classifier"]["p_holm"] < 1e-3
    assert tests["classifier"]["seeds_p_holm"] < 0.05
    assert tests["rotation_augmented"]["verdict"] == "at par"
    assert tests["rotation_augmented"]["p_holm"] > 0.5
    assert tests["rotation_augmented"]["seeds_p_holm"] == 1.0
    assert tests["tta"]["verdict"] == "worse" and tests["tta"]["p_holm"] < 1e-3
    hard = agg["summary"]["methods"]["risc_hard"]["rotated_acc"]
    assert agg["verdict"].startswith(
        f"Over 3 seeds, RISC hard reaches {hard['mean']:.3f} +- {hard['std']:.3f} on the "
        "rotated test set and is better than classifier (")
    assert "; at par with rotation_augmented (" in agg["verdict"]
    assert "; worse than tta (" in agg["verdict"]
    md = (tmp_path / "agg" / "results.md").read_text()
    assert f"**Verdict.** {agg['verdict']}" in md
    assert "| risc_hard | classifier | 60/5 (p " in md and md.count("| better |") >= 1


def test_aggregate_of_identical_methods_is_at_par_with_p_one(tmp_path):
    folders = _copy_runs("retinamnist-tuned", tmp_path / "runs")
    for folder in folders:
        results = json.loads((folder / "results.json").read_text())
        rotated = results["evaluation"]["rotated"]
        for base in ("classifier", "rotation_augmented", "tta"):
            rotated[base] = {**rotated[base], "predicted": rotated["risc_hard"]["predicted"],
                             "acc": rotated["risc_hard"]["acc"]}
        (folder / "results.json").write_text(json.dumps(results))
    agg = aggregate(folders, tmp_path / "agg").to_json()
    for t in agg["summary"]["tests"]["risc_hard"].values():
        assert t["verdict"] == "at par" and t["p_holm"] == 1.0 and t["seeds_p_holm"] == 1.0
        assert t["combined"]["images_differing"] == 0
    assert agg["verdict"].count("at par with ") == 3 and "better than" not in agg["verdict"]


@pytest.mark.parametrize("name", COMMITTED_AGGREGATES)
def test_committed_aggregates_regenerate_from_their_seed_runs(name, tmp_path):
    """Every multi-seed number and verdict the README publishes comes out of the committed
    per-seed results again, bit for bit."""
    saved = json.loads((COMMITTED / name / "results.json").read_text())
    agg = aggregate(sorted((COMMITTED / name).glob("seed-*")), tmp_path / "agg").to_json()
    for key in ("tests", "methods", "sweep"):
        assert agg["summary"][key] == saved["summary"][key], key
    assert agg["verdict"] == saved["verdict"]


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
        # the model builders' checks, before anything is loaded or written
        ({"weights": "missing.weights.h5"}, "'missing.weights.h5', which is not an existing"),
        ({"weights": "imagenet"}, 'the "small" backbone has no ImageNet weights'),
        ({"backbone": "resnet50", "input_size": 16}, "at least 32x32; got 16x16"),
        ({"download_timeout": 0}, "download_timeout must be a finite number > 0"),
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


@pytest.mark.slow
def test_a_circular_run_trains_for_and_saves_the_residual_it_measures(tmp_path):
    """The circular head end to end: the classifier's tilt and the saved pipeline's tilt
    tolerance both come from the RotNet's measured error on validation."""
    if not (DATA_ROOT / "pneumoniamnist.npz").is_file():
        pytest.skip(f"real MedMNIST files not found in {DATA_ROOT}")
    out = tmp_path / "circular"
    results = reproduce(_tiny(out, angles=list(range(0, 360, 30)), rotnet_head="circular",
                              rotnet_sigma=10.0, fill="circle"))
    tilt = json.loads((out / "results.json").read_text())["tilt"]
    assert results.config["tilt"] == "auto" and tilt["n"] > 0
    pipe = RISCPipeline.load(out)
    assert (pipe.head, pipe.mode) == ("circular", "angle")
    assert pipe.max_tilt == pytest.approx(min(10.0, tilt["p95_deg"]))
    assert pipe.metadata["training"]["tilt"] == "auto"
