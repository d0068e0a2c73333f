"""risc-tf tune: grids, resuming, the choice, and errors (small backbone, tiny budget)."""

import json

import pytest

from risc_tf.cli import main
from risc_tf.experiments.config import ReproduceConfig
from risc_tf.experiments.tune import grid_points, tune_recipe
from tests.conftest import DATA_ROOT, requires_data


def test_grid_points_cartesian_or_explicit():
    assert grid_points({"augment": ["none", "light"], "epochs": [1, 2]}) == [
        {"augment": "none", "epochs": 1}, {"augment": "none", "epochs": 2},
        {"augment": "light", "epochs": 1}, {"augment": "light", "epochs": 2}]
    points = [{"angles": [0, 90, 180, 270], "jitter": 45}, {"fill": "circle"}]
    assert grid_points(points) == points
    for bad, match in (({"colour": [1]}, "not a setting"), ({"seed": [1, 2]}, "not a setting"),
                       ({"download_timeout": [1]}, "not a setting"),  # one data load
                       ({"augment": []}, "non-empty"), ([], "at least one point")):
        with pytest.raises(ValueError, match=match):
            grid_points(bad)


@pytest.mark.slow
@requires_data
@pytest.mark.realdata
def test_tune_scores_on_validation_resumes_and_chooses(tmp_path, monkeypatch):
    base = ReproduceConfig("pneumoniamnist", tmp_path / "t", data_root=DATA_ROOT,
                           backbone="small", subset=48, epochs=1, rotnet_epochs=1,
                           batch_size=16, recalibration_batches=1, sweep_step=90.0, verbose=0)
    loaded = []
    import risc_tf.data

    real = risc_tf.data.load_medmnist
    monkeypatch.setattr(risc_tf.data, "load_medmnist",
                        lambda flag, split, *a, **k: loaded.append(split) or
                        real(flag, split, *a, **k))
    grid = {"classifier_init": ["scratch", "rotnet"]}
    state = tune_recipe(base, grid, seeds=(0, 1))
    assert "test" not in loaded  # the test split is never read
    scores = [[p["seeds"][s]["score"] for s in ("0", "1")] for p in state["points"]]
    means = [sum(s) / 2 for s in scores]
    assert state["choice"]["settings"] == state["points"][means.index(max(means))]["settings"]
    assert len(list((tmp_path / "t" / "rotnets").glob("*.keras"))) == 2  # one per seed, cached
    md = (tmp_path / "t" / "tune.md").read_text()
    assert "**Choice:**" in md and "validation" in md
    again = tune_recipe(base, grid, seeds=(0, 1))  # resumes: nothing recomputed
    assert again["points"][0]["seeds"]["0"]["finished"] == \
        state["points"][0]["seeds"]["0"]["finished"]
    with pytest.raises(FileExistsError, match="another search"):
        tune_recipe(base, {"augment": ["none"]})
    risc = tune_recipe(ReproduceConfig(**{**base.__dict__, "output": tmp_path / "r"}),
                       [{"angles": [0, 90, 180, 270]},
                        {"angles": [0, 45, 90, 135, 180, 225, 270, 315], "jitter": 22.5}],
                       objective="risc")
    for point in risc["points"]:
        result = point["seeds"]["0"]
        assert result["score"] == result["sweep"]["summary"]["risc_hard"]["mean"]
        assert result["sweep"]["rotnet_mae_deg"] >= 0


def test_tune_command_errors(tmp_path, capsys):
    def error(*argv):
        with pytest.raises(SystemExit) as err:
            main(["tune", "--dataset", "pneumoniamnist", "--output", str(tmp_path), *argv])
        assert err.value.code == 2
        return capsys.readouterr().err

    assert "must map each setting" in error("--grid", "[1, 2]")
    assert "JSON object" in error("--grid", "{not json")
    assert "not a setting" in error("--grid", json.dumps({"colour": ["red"]}),
                                    "--data-root", str(DATA_ROOT))
