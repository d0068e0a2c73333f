"""The ``risc-tf`` command line: help, clear errors, and real runs with a tiny budget."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from risc_tf.cli import main
from tests.conftest import DATA_ROOT as DATA
from tests.conftest import requires_data as needs_data
from tests.test_data import silent_server  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ("train-rotnet", "train-classifier", "evaluate", "reproduce")
ALL_COMMANDS = (*SUBCOMMANDS, "aggregate", "explain", "predict", "merge", "export", "tune")
TINY = ["--backbone", "small", "--epochs", "1", "--batch-size", "32", "--quiet"]


def _error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


def make_organamnist(folder: Path, seed: int = 0) -> Path:
    """A small file in OrganAMNIST's format: 28x28 uint8 grayscale, 11 classes, (N, 1) labels.

    Each class is an asymmetric bright shape at its own place, so the images have an
    orientation for a RotNet to find and a class for a classifier to find.
    """
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", 44), ("val", 22), ("test", 33)):
        labels = (np.arange(n) % 11).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            r, k = 3 + 2 * (c % 6), 3 + 3 * (c // 6)
            images[i, r : r + 10, k : k + 4] = 220  # vertical bar
            images[i, r + 7 : r + 10, k : k + 12] = 220  # foot: breaks the symmetry
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels[:, None]
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / "organamnist.npz", **arrays)
    return folder


def test_help_of_every_subcommand(capsys):
    for name in SUBCOMMANDS:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        for option in ("--dataset", "--data-root", "--size", "--batch-size", "--seed",
                       "--output"):
            assert option in out, (name, option)
        if name != "evaluate":
            for option in ("--backbone", "--weights", "--epochs", "--optimizer",
                           "--lr-schedule", "--fill"):
                assert option in out, (name, option)
        # only the commands that train under a tf.distribute strategy offer one
        assert ("--strategy" in out) == name.startswith("train-"), name
        if name in ("train-classifier", "reproduce"):
            for option in ("--class-weight", "--label-smoothing", "--augment", "--tilt"):
                assert option in out, (name, option)
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    out = capsys.readouterr().out
    for option in ("--recipe", "--seeds", "--protocol", "--classifier-init", "--sweep-split"):
        assert option in out, option
    with pytest.raises(SystemExit):
        main(["tune", "--help"])
    out = capsys.readouterr().out  # a search never loads the test split: no test-set options
    assert "--recipe" in out and "--objective" in out
    for option in ("--test-angles", "--protocol", "--sweep-split", "--timing-samples"):
        assert option not in out, option


def _run_cli(*argv, env_extra=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the CLI must silence TensorFlow itself
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "risc_tf", *argv], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)


def test_help_version_and_argument_errors_do_not_load_tensorflow():
    code = (
        "import sys\n"
        "from risc_tf.cli import main\n"
        "for argv in (['--help'], ['--version'], ['reproduce', '--help'],\n"
        "             ['reproduce', '--dataset', 'pneumoniamnist', '--epochs', '0',\n"
        "              '--output', 'x'], ['predict', '--help'], ['explain', '--help'],\n"
        "             ['merge', '--help'], ['merge', 'nowhere.csv', '--output', 'm.csv'],\n"
        "             ['predict', '--pipeline', 'p', '.', '--output', 'p.csv',\n"
        "              '--shard', '3/2']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('LOADED', sorted(m for m in ('tensorflow', 'keras', 'matplotlib', 'sklearn')\n"
        "                        if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert "LOADED []" in done.stdout, done.stdout[-500:] + done.stderr[-2000:]
    version = _run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("risc-tf 0.")


def test_import_risc_tf_loads_neither_matplotlib_nor_sklearn():
    code = ("import sys, risc_tf\n"
            "print(sorted(m for m in ('matplotlib', 'sklearn', 'tensorflow') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr[-2000:]


@pytest.mark.slow
def test_no_tensorflow_start_up_noise_in_command_output(tmp_path):
    """A command that loads TensorFlow prints its one error line and nothing of TensorFlow's."""
    done = _run_cli("evaluate", "--pipeline", str(tmp_path / "absent"), "--dataset",
                    "pneumoniamnist", "--output", str(tmp_path / "o"))
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [f"risc-tf evaluate: error: no saved RISCPipeline at {tmp_path}/absent: "
                     "folder does not exist"], done.stderr


def test_python_dash_m_runs_the_cli():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "risc_tf", "--help"], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 0
    assert all(name in done.stdout for name in ALL_COMMANDS)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--dataset", "cifar10"], "unknown dataset: 'cifar10'. Valid datasets: pathmnist"),
        (["--epochs", "0"], "--epochs: must be a positive integer"),
        (["--batch-size", "many"], "--batch-size: must be a positive integer"),
        (["--angles", "0,90,450"], "are the same rotation"),
        (["--angle-step", "7"], "divides 360"),
        (["--angles", "0,90", "--angle-step", "45"], "not allowed with argument"),
        (["--backbone", "resnet9"], "invalid choice: 'resnet9'"),
        (["--size", "32"], "invalid choice: 32"),
        (["--sweep-step", "0"], "divides 360"),
        (["--seeds", "0,1,1"], "--seeds: seeds must be distinct"),
        (["--seeds", "0,-1"], "--seeds: seeds must be >= 0"),
        (["--seeds", "0,x"], "--seeds: must be comma-separated integers"),
        (["--recipe", "best"], "invalid choice: 'best'"),
        (["--protocol", "random"], "invalid choice: 'random'"),
        (["--fill", "mirror"], "invalid choice: 'mirror'"),
        (["--label-smoothing", "1"], "--label-smoothing: must be a number in [0, 1)"),
        (["--tilt", "-3"], "--tilt: must be a number >= 0"),
        (["--learning-rate", "nan"], "--learning-rate: must be a positive number"),
    ],
)
def test_bad_options_fail_clearly(capsys, tmp_path, extra, match):
    argv = ["reproduce", "--dataset", "pneumoniamnist", "--output", str(tmp_path / "o"), *extra]
    assert match in _error(capsys, argv)


def test_missing_data_names_the_path_and_url(capsys, tmp_path):
    err = _error(capsys, ["reproduce", "--dataset", "organamnist", "--data-root",
                          str(tmp_path), "--output", str(tmp_path / "o")])
    assert f"organamnist.npz not found in {tmp_path}" in err
    assert "https://zenodo.org/records/10519652/files/organamnist.npz" in err
    assert "--data-root" in err and "--download" in err and not (tmp_path / "o").exists()
    assert "root=" not in err and "download=True" not in err  # the command line's own words


def test_multilabel_dataset_is_refused(capsys, tmp_path):
    err = _error(capsys, ["reproduce", "--dataset", "chestmnist", "--output", str(tmp_path)])
    assert "multi-label" in err


def test_unwritable_output_fails_before_training(capsys, tmp_path):
    data = make_organamnist(tmp_path / "data")
    blocker = tmp_path / "file"
    blocker.write_text("")
    base = ["reproduce", "--dataset", "organamnist", "--data-root", str(data), "--no-verify"]
    err = _error(capsys, [*base, "--output", str(blocker / "out")])
    assert "cannot create output folder" in err and str(blocker) in err
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        err = _error(capsys, [*base, "--output", str(locked / "out")])
        assert "cannot create output folder" in err and "ermission" in err


def test_unofficial_file_needs_no_verify(capsys, tmp_path):
    data = make_organamnist(tmp_path / "data")
    err = _error(capsys, ["reproduce", "--dataset", "organamnist", "--data-root", str(data),
                          "--output", str(tmp_path / "o")])
    assert "MD5 mismatch" in err and "--no-verify" in err


def test_evaluate_needs_models(capsys, tmp_path):
    err = _error(capsys, ["evaluate", "--dataset", "pneumoniamnist", "--output", str(tmp_path)])
    assert "--pipeline DIR, or both --rotnet FILE and --classifier FILE" in err
    err = _error(capsys, ["evaluate", "--dataset", "pneumoniamnist", "--output", str(tmp_path),
                          "--rotnet", str(tmp_path / "r.keras"), "--classifier", "c.keras"])
    assert "does not exist" in err


@pytest.mark.slow
def test_reproduce_organamnist_end_to_end_on_a_test_made_file(capsys, tmp_path):
    data = make_organamnist(tmp_path / "data")
    out = tmp_path / "organ"
    argv = ["reproduce", "--dataset", "organamnist", "--data-root", str(data), "--no-verify",
            "--output", str(out), "--sweep-step", "90", "--timing-samples", "2", *TINY]
    assert main(argv) == 0
    assert "most accurate method" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"]["num_classes"] == 11
    assert results["dataset"]["split_sizes"] == {"train": 44, "val": 22, "test": 33}
    assert results["angles"]["rotnet"] == [0.0, 90.0, 180.0, 270.0]
    assert results["config"]["verify"] is False
    assert results["paper"] == {"rotnet_acc": 0.66, "upright_acc": 0.93, "risc_rotated_acc": 0.75}
    assert np.shape(results["evaluation"]["rotated"]["risc_soft"]["confusion_matrix"]) == (11, 11)
    assert (out / "results.md").is_file() and (out / "angle_sweep.png").is_file()
    assert "ECE if calibrated" in (out / "results.md").read_text()
    # a second run into the same folder is refused, then replaced with --overwrite
    with pytest.raises(SystemExit):
        main(argv)
    assert "already holds a finished run" in capsys.readouterr().err


@needs_data
@pytest.mark.slow
@pytest.mark.realdata
def test_train_then_evaluate_on_real_data(capsys, tmp_path):
    common = ["--dataset", "pneumoniamnist", "--data-root", str(DATA), "--subset", "64",
              "--output", str(tmp_path)]
    assert main(["train-rotnet", *common, *TINY]) == 0
    assert main(["train-classifier", *common, *TINY]) == 0
    assert main(["train-classifier", *common, *TINY, "--rotation-augment"]) == 0
    capsys.readouterr()
    assert "exists; pass --overwrite" in _error(capsys, ["train-rotnet", *common, *TINY])
    history = json.loads((tmp_path / "classifier_history.json").read_text())
    assert 0 <= history["upright_test"]["acc"] <= 1 and history["epochs_run"] == 1
    assert json.loads((tmp_path / "rotation_augmented_history.json").read_text())[
        "augment_angles"] == [0.0, 90.0, 180.0, 270.0]
    assert main(["evaluate", *common, "--rotnet", str(tmp_path / "rotnet.keras"),
                 "--classifier", str(tmp_path / "classifier.keras"), "--rotation-augmented",
                 str(tmp_path / "rotation_augmented.keras")]) == 0
    out = capsys.readouterr().out
    assert "risc_hard" in out and "RotNet rotation accuracy" in out
    ev = json.loads((tmp_path / "evaluation.json").read_text())
    assert set(ev["rotated"]) == {"classifier", "rotation_augmented", "tta", "risc_hard",
                                  "risc_soft"}
    assert ev["n"] == 64 and 0 <= ev["rotnet"]["acc"] <= 1
    # test angles outside the RotNet's set: evaluated, reported, no crash
    assert main(["evaluate", *common, "--rotnet", str(tmp_path / "rotnet.keras"),
                 "--classifier", str(tmp_path / "classifier.keras"), "--angle-step", "45",
                 "--overwrite"]) == 0
    out = capsys.readouterr().out
    assert "not in the RotNet's angle set" in out
    ev = json.loads((tmp_path / "evaluation.json").read_text())
    assert ev["rotnet"]["per_angle_acc"]["45"] == "not in the RotNet's angle set"
    # the training options of the issue, and the RotNet initialisation
    init = ["--init-from", str(tmp_path / "rotnet.keras"), "--class-weight", "balanced",
            "--augment", "light", "--lr-schedule", "cosine", "--optimizer", "sgd",
            "--label-smoothing", "0.1", "--overwrite"]
    assert main(["train-classifier", *common, *TINY, *init]) == 0
    history = json.loads((tmp_path / "classifier_history.json").read_text())
    assert history["init_from"].endswith("rotnet.keras") and history["tilt"] == 0.0
    err = _error(capsys, ["train-classifier", *common, *TINY, "--freeze-backbone"])
    assert "--freeze-backbone needs --init-from" in err


@needs_data
def test_a_pipeline_config_with_missing_keys_is_one_line_exit_2(capsys, tmp_path):
    import keras

    from risc_tf import RISCPipeline, build_classifier, build_rotnet

    keras.utils.set_random_seed(0)
    path = RISCPipeline(build_rotnet(backbone="small", hidden_units=(4, 4)),
                        build_classifier(2, backbone="small")).save(tmp_path / "pipe")
    config = json.loads((path / "risc_pipeline.json").read_text())
    del config["angles"]
    (path / "risc_pipeline.json").write_text(json.dumps(config))
    err = _error(capsys, ["evaluate", "--pipeline", str(path), "--dataset", "pneumoniamnist",
                          "--data-root", str(DATA), "--output", str(tmp_path / "o")])
    assert err.count("\n") == 1 and "missing the keys ['angles']" in err
    assert not (tmp_path / "o").exists()


def test_library_remedies_read_as_options(tmp_path, capsys):
    """A library error says overwrite=True; the command line says --overwrite."""
    from risc_tf.cli import cli_message

    assert cli_message(FileExistsError("x exists; pass overwrite=True to replace it")) == \
        "x exists; pass --overwrite to replace it"
    out = tmp_path / "search"
    out.mkdir()
    (out / "tune.json").write_text("{}")  # another search
    with pytest.raises(SystemExit) as stop:
        main(["tune", "--dataset", "pneumoniamnist", "--grid", '{"augment": ["none"]}',
              "--output", str(out)])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "holds another search; pass --overwrite to start" in err
    assert "overwrite=True" not in err and (out / "tune.json").read_text() == "{}"


@pytest.mark.parametrize("command", [
    ["reproduce"], ["reproduce", "--seeds", "0,1"],
    ["tune", "--grid", '{"augment": ["none"]}'],
])
def test_a_bad_option_fails_before_the_output_is_claimed(tmp_path, capsys, command):
    """An unknown optimizer is refused before any folder is made (it used to fail after)."""
    out = tmp_path / "new"
    with pytest.raises(SystemExit) as stop:
        main([*command, "--dataset", "pneumoniamnist", "--data-root", str(tmp_path),
              "--optimizer", "adamx", "--output", str(out)])
    assert stop.value.code == 2
    assert "unknown optimizer 'adamx'" in capsys.readouterr().err
    assert not out.exists()


@needs_data
@pytest.mark.parametrize("command", [
    ["reproduce"], ["reproduce", "--seeds", "0,1"],
    ["tune", "--grid", '{"augment": ["none"]}'],
])
@pytest.mark.parametrize(("options", "match"), [
    (["--weights", "MISSING"], "missing.weights.h5', which is not an existing file"),
    (["--weights", "imagenet"], 'the "small" backbone has no ImageNet weights'),
    (["--backbone", "resnet50", "--input-size", "16"],
     "backbone 'resnet50' needs inputs of at least 32x32; got 16x16"),
])
def test_weights_and_input_size_are_refused_before_the_output_is_claimed(
        tmp_path, capsys, command, options, match):
    """The model builders' own checks, run by ReproduceConfig.validate: they used to fail in
    the builder, after run.json had claimed the folder (and refused the corrected command)."""
    out = tmp_path / "new"
    options = [str(tmp_path / "missing.weights.h5") if o == "MISSING" else o for o in options]
    err = _error(capsys, [*command, "--dataset", "pneumoniamnist", "--data-root", str(DATA),
                          "--subset", "64", "--backbone", "small", *options, "--quiet",
                          "--output", str(out)])
    assert match in err
    assert not out.exists()


def test_missing_data_leaves_no_folder_from_tune_evaluate_or_seeds(tmp_path, capsys):
    """tune used to make OUTPUT/rotnets/, evaluate OUTPUT/ and reproduce --seeds
    OUTPUT/experiment.json before reading the data."""
    import keras

    from risc_tf import build_classifier, build_rotnet
    from risc_tf.saving import save_model

    empty = tmp_path / "no-data"
    empty.mkdir()
    data = ["--dataset", "pneumoniamnist", "--data-root", str(empty)]
    out = tmp_path / "new"
    err = _error(capsys, ["tune", *data, "--grid", '{"epochs": [1]}', "--backbone", "small",
                          "--output", str(out)])
    assert "pneumoniamnist.npz not found" in err and not out.exists()
    err = _error(capsys, ["reproduce", *data, "--seeds", "0,1", "--backbone", "small",
                          "--output", str(out)])  # used to leave OUTPUT/experiment.json
    assert "pneumoniamnist.npz not found" in err and not out.exists()
    keras.utils.set_random_seed(0)
    save_model(build_rotnet(backbone="small", hidden_units=(4, 4)), tmp_path / "r.keras")
    save_model(build_classifier(2, backbone="small"), tmp_path / "c.keras")
    err = _error(capsys, ["evaluate", *data, "--rotnet", str(tmp_path / "r.keras"),
                          "--classifier", str(tmp_path / "c.keras"), "--output", str(out)])
    assert "pneumoniamnist.npz not found" in err and not out.exists()


@pytest.mark.parametrize("command", [["reproduce"], ["tune", "--grid", '{"epochs": [1]}']])
def test_download_timeout_reaches_the_download(tmp_path, capsys, monkeypatch, request, command):
    """reproduce and tune used to drop --download-timeout and wait the default 60 s."""
    from risc_tf import catalog

    url = request.getfixturevalue("silent_server")  # a socket that never answers
    monkeypatch.setattr(catalog, "url_and_md5",
                        lambda flag, size: (f"{url}/x.npz", None))
    out = tmp_path / "new"
    start = time.monotonic()
    err = _error(capsys, [*command, "--dataset", "pneumoniamnist", "--data-root",
                          str(tmp_path / "data"), "--download", "--download-timeout", "1",
                          "--backbone", "small", "--output", str(out)])
    assert "timed out (timeout 1 s)" in err
    assert time.monotonic() - start < 30
    assert not out.exists()


@needs_data
@pytest.mark.parametrize("command", ["train-rotnet", "train-classifier"])
@pytest.mark.parametrize(("options", "match"), [
    (["--weights", "MISSING"], "which is not an existing file"),
    (["--backbone", "resnet50", "--input-size", "16"], "needs inputs of at least 32x32"),
])
def test_train_commands_check_the_model_before_making_the_folder(tmp_path, capsys, command,
                                                                 options, match):
    """They used to make OUTPUT, then fail in the model builder."""
    out = tmp_path / "new"
    options = [str(tmp_path / "missing.weights.h5") if o == "MISSING" else o for o in options]
    err = _error(capsys, [command, "--dataset", "pneumoniamnist", "--data-root", str(DATA),
                          "--subset", "64", "--backbone", "small", *options, "--quiet",
                          "--output", str(out)])
    assert match in err and not out.exists()


def test_training_output_in_a_log_has_no_redraw_or_escape_codes(capsys, tmp_path):
    # Keras redraws its bar with \b, \r and bold codes on any POSIX process; in a log
    # (here: captured, not a terminal) the commands ask it for one line per epoch.
    data = make_organamnist(tmp_path / "data")
    loud = [a for a in TINY if a != "--quiet"]
    assert main(["train-rotnet", "--dataset", "organamnist", "--data-root", str(data),
                 "--no-verify", "--output", str(tmp_path / "out"), *loud]) == 0
    out = capsys.readouterr().out
    assert "val_loss" in out  # the one line of the epoch
    assert not any(code in out for code in ("\x1b", "\b", "\r")), repr(out[:300])
