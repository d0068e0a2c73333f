"""risc-tf predict end to end with a stub pipeline (no TensorFlow): decisions, copies, the
review page, killed runs, file names that are not UTF-8, memory, shards and merge."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import risc_tf.commands.predict as predict_command
from risc_tf.cli import main
from risc_tf.io import read_image
from tests.predict_stub import code_image, install

without_graph_rewrites = predict_command.without_graph_rewrites  # before a stub replaces it

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKER = HERE / "predict_worker.py"


def _write(folder: Path, codes, *, prefix: str = "c") -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    images = {}
    for i, code in enumerate(codes):
        image = code_image(code, seed=i)
        name = f"{prefix}{i:03d}.png"
        Image.fromarray(image).save(folder / name)
        images[name] = image
    return images


def _rows(path: Path) -> dict:
    with open(path, newline="", encoding="utf-8") as f:
        return {os.path.basename(r["path"]): r for r in csv.DictReader(f)}


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture()
def stub(monkeypatch):
    return install(monkeypatch)


def test_statuses_reasons_and_exact_copies_follow_the_decisions(stub, tmp_path, capsys):
    images = _write(tmp_path / "scans", range(8))
    (tmp_path / "scans" / "z_bad.png").write_text("not an image")
    out, up, page = tmp_path / "pred.csv", tmp_path / "up", tmp_path / "review.html"
    assert main(["predict", "--pipeline", "P", str(tmp_path / "scans"), "--output", str(out),
                 "--fix-orientation", str(up), "--report", str(page),
                 "--min-class-probability", "0.6", "--quiet"]) == 0
    assert stub[0].loaded_folded  # inference only: BatchNorm folded into the convolutions
    printed = capsys.readouterr().out
    assert "9 files: 5 ok, 3 to review, 1 unreadable; 6 found rotated, 4 exact upright " \
           "copies in" in printed
    rows = _rows(out)
    status = {name: row["status"] for name, row in rows.items()}
    assert status == {"c000.png": "ok", "c001.png": "ok", "c002.png": "ok", "c003.png": "ok",
                      "c004.png": "review", "c005.png": "review", "c006.png": "review",
                      "c007.png": "ok", "z_bad.png": "unreadable"}
    assert rows["c004.png"]["reason_codes"] == "off_angle_set"
    assert "turned about 45 degrees, between the pipeline's angles 0 and 90" in \
        rows["c004.png"]["reason"]
    assert float(rows["c005.png"]["estimated_rotation"]) == pytest.approx(139.5)
    assert rows["c006.png"]["reason"] == "class probability 0.550 < 0.6"
    assert rows["c000.png"]["rotated"] == "False" and rows["c004.png"]["rotated"] == "True"
    for name, turns in (("c001.png", 3), ("c002.png", 2), ("c003.png", 1), ("c007.png", 3)):
        assert rows[name]["copy_kind"] == "exact"
        copy = read_image(rows[name]["upright_copy"])
        assert np.array_equal(copy, np.rot90(images[name], turns))  # lossless quarter turn
    for name in ("c000.png", "c004.png", "c005.png", "c006.png"):  # off the set: no copy
        assert rows[name]["upright_copy"] == "" and rows[name]["copy_kind"] == ""
    assert sorted(p.name for p in up.iterdir()) == ["c001.png", "c002.png", "c003.png",
                                                     "c007.png"]
    text = page.read_text(encoding="utf-8")
    assert "To check (7)" in text  # 3 review (one upright) + 4 rotated and ok
    assert text.count('<article class="card ') == 7 and "c006.png" in text
    assert ">exact copies 4</span>" in text and "straightened copies" not in text
    assert "about 140°" in text and "Unreadable files (1)" in text


def test_straighten_writes_resampled_copies_counted_apart(stub, tmp_path, capsys):
    images = _write(tmp_path / "scans", [1, 4, 5])
    out, up, page = tmp_path / "pred.json", tmp_path / "up", tmp_path / "review.html"
    assert main(["predict", "--pipeline", "P", str(tmp_path / "scans"), "--output", str(out),
                 "--fix-orientation", str(up), "--report", str(page), "--straighten",
                 "--quiet"]) == 0
    assert "1 exact upright copies and 2 straightened (resampled) copies" in \
        capsys.readouterr().out
    rows = {os.path.basename(r["path"]): r for r in json.loads(out.read_text())}
    assert rows["c000.png"]["copy_kind"] == "exact"
    for name, angle in (("c001.png", -45.0), ("c002.png", -139.5)):
        row = rows[name]
        assert row["copy_kind"] == "straightened" and row["status"] == "review"  # still checked
        copy = read_image(row["upright_copy"])
        h, w = images[name].shape
        rad = np.radians(angle)
        assert copy.shape == (pytest.approx(h * abs(np.cos(rad)) + w * abs(np.sin(rad)), abs=2),
                              pytest.approx(w * abs(np.cos(rad)) + h * abs(np.sin(rad)), abs=2))
        assert copy[0, 0] == 0  # the expanded canvas is black
    text = page.read_text(encoding="utf-8")
    assert ">exact copies 1</span>" in text and ">straightened copies 2</span>" in text
    assert "straightened (resampled)" in text


def test_an_unsure_rotation_gets_no_copy(stub, tmp_path):
    _write(tmp_path / "scans", [1, 7])
    out = tmp_path / "pred.csv"
    assert main(["predict", "--pipeline", "P", str(tmp_path / "scans"), "--output", str(out),
                 "--fix-orientation", str(tmp_path / "up"), "--min-rotation-confidence", "0.9",
                 "--quiet"]) == 0
    rows = _rows(out)
    assert rows["c000.png"]["copy_kind"] == "exact"
    assert rows["c001.png"]["status"] == "review" and rows["c001.png"]["upright_copy"] == ""
    assert rows["c001.png"]["reason_codes"] == "low_rotation_confidence"


def _copies_written(up: Path) -> int:
    """Copies written so far, staged (hidden folder) or not."""
    return len(list(up.rglob("*.png"))) if up.is_dir() else 0


@pytest.mark.slow
def test_a_killed_run_leaves_none_of_its_outputs_and_the_next_run_cleans_up(tmp_path, stub,
                                                                            capsys):
    _write(tmp_path / "scans", [1] * 60)
    out, up = tmp_path / "out" / "pred.csv", tmp_path / "out" / "up"
    out.parent.mkdir()
    argv = ["predict", "--pipeline", "P", str(tmp_path / "scans"), "--output", str(out),
            "--fix-orientation", str(up), "--report", str(tmp_path / "out" / "r.html"),
            "--batch-size", "4", "--quiet"]
    worker = subprocess.Popen([sys.executable, str(WORKER), "0.2", *argv], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while _copies_written(up) < 8 and time.monotonic() < deadline:
            assert worker.poll() is None, worker.stderr.read().decode()
            time.sleep(0.05)
        assert _copies_written(up) >= 8, "the run did not start writing copies"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    # What a killed run leaves: its hidden staging folder and lock, no visible output.
    assert sorted(p.name for p in out.parent.iterdir()) == ["up"]
    visible = [p for p in up.rglob("*") if not p.relative_to(up).parts[0].startswith(".")]
    assert visible == []
    assert len([n for n in _hidden(up) if n.endswith(".lock")]) == 1
    assert len([n for n in _hidden(up) if not n.endswith(".lock")]) == 1
    # The same command again: it cleans up and does the whole work.
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "cleaned up after interrupted runs: removed the temporary files of 1" in printed
    rows = _rows(out)
    assert len(rows) == 60 and all(Path(r["upright_copy"]).is_file() for r in rows.values())
    assert _hidden(up) == [] and _hidden(out.parent) == []
    assert len(list(up.glob("*.png"))) == 60


def test_a_failing_run_writes_nothing(stub, tmp_path, monkeypatch):
    _write(tmp_path / "scans", [1, 1, 1])
    out, up = tmp_path / "pred.csv", tmp_path / "up"
    import risc_tf.prediction_run as run

    calls = []

    def fail_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    original = run.write_upright_copy
    monkeypatch.setattr(run, "write_upright_copy", fail_on_third)
    with pytest.raises(SystemExit) as err:
        main(["predict", "--pipeline", "P", str(tmp_path / "scans"), "--output", str(out),
              "--fix-orientation", str(up), "--quiet"])
    assert err.value.code == 130
    assert not out.exists() and list(up.iterdir()) == [] and _hidden(tmp_path) == []


def _weird(folder: Path) -> tuple[str, str]:
    """A PNG whose name is not UTF-8 (byte 0xff), turned 90 degrees; its escaped name."""
    folder.mkdir(parents=True, exist_ok=True)
    name = os.fsdecode(b"scan\xff.png")
    try:
        Image.fromarray(code_image(1)).save(folder / name)
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    return name, "scan\\xff.png"


def test_file_names_that_are_not_utf8_are_escaped_everywhere(stub, tmp_path, capsys):
    name, escaped = _weird(tmp_path / "scans")
    for suffix in ("csv", "json"):
        out = tmp_path / f"pred.{suffix}"
        assert main(["predict", "--pipeline", "P", str(tmp_path / "scans"), "--output",
                     str(out), "--fix-orientation", str(tmp_path / f"up{suffix}"), "--report",
                     str(tmp_path / f"r{suffix}.html"), "--quiet"]) == 0
        text = out.read_text(encoding="utf-8")  # valid UTF-8
        assert escaped in (text if suffix == "csv" else json.loads(text)[0]["path"])
        assert (tmp_path / f"up{suffix}" / name).is_file()  # the copy keeps the real name
        assert escaped in (tmp_path / f"r{suffix}.html").read_text(encoding="utf-8")
    rows = json.loads((tmp_path / "pred.json").read_text(encoding="utf-8"))
    assert rows[0]["path"].endswith(escaped) and rows[0]["upright_copy"].endswith(escaped)
    assert os.fsencode(rows[0]["path"].replace("\\xff", "\udcff")) == \
        os.fsencode(tmp_path / "scans" / name)  # the documented way back to the file
    assert f"written: {tmp_path / 'pred.json'}" in capsys.readouterr().out


@pytest.mark.parametrize("encoding", ["ascii:strict", "utf-8:strict"])
@pytest.mark.slow
def test_every_message_prints_under_a_strict_stdout(tmp_path, encoding):
    name, escaped = _weird(tmp_path / "scans")
    (tmp_path / "scans" / os.fsdecode(b"broken\xfe.png")).write_text("x")  # printed: unreadable
    env = {**os.environ, "PYTHONIOENCODING": encoding, "PYTHONPATH": str(ROOT)}
    base = [sys.executable, str(WORKER), "0", "predict", "--pipeline", "P"]
    done = subprocess.run([*base, str(tmp_path / "scans"), "--output", str(tmp_path / "p.csv"),
                           "--fix-orientation", str(tmp_path / "up")],
                          capture_output=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert b"unreadable: " + os.fsencode(tmp_path) + b"/scans/broken\\xfe.png" in done.stdout
    done.stdout.decode("ascii" if encoding.startswith("ascii") else "utf-8")  # strictly valid
    assert b"\x1b" not in done.stdout + done.stderr and b"\r" not in done.stderr
    # an error naming the file prints as well
    done = subprocess.run([*base, str(tmp_path / "scans" / name), "--output",
                           str(tmp_path / "q.txt")], capture_output=True, env=env, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 2 and b"must end in .csv or .json" in done.stderr
    missing = os.fsdecode(os.fsencode(tmp_path) + b"/gone\xfd.png")
    done = subprocess.run([*base, missing, "--output", str(tmp_path / "q.csv")],
                          capture_output=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 2 and b"no such file or folder" in done.stderr
    assert b"gone\\xfd.png" in done.stderr  # the same escaped form as in the outputs


def test_missing_output_folder_is_named_before_anything_is_read(stub, tmp_path, capsys,
                                                                monkeypatch):
    _write(tmp_path / "scans", [0])
    import risc_tf.prediction_run

    monkeypatch.setattr(risc_tf.prediction_run, "read_record",
                        lambda *a: pytest.fail("an image was read"))

    def error(*extra):
        with pytest.raises(SystemExit) as err:
            main(["predict", "--pipeline", "P", str(tmp_path / "scans"), "--quiet", *extra])
        assert err.value.code == 2
        return capsys.readouterr().err

    message = error("--output", str(tmp_path / "missing" / "deeper" / "pred.csv"))
    assert f"the folder {tmp_path / 'missing'} does not exist" in message
    assert "--output" in message and ".tmp" not in message
    message = error("--output", str(tmp_path / "p.csv"), "--report",
                    str(tmp_path / "nowhere" / "r.html"))
    assert f"--report {tmp_path / 'nowhere' / 'r.html'}: the folder" in message
    (tmp_path / "afile").write_text("x")
    message = error("--output", str(tmp_path / "p.csv"), "--fix-orientation",
                    str(tmp_path / "afile" / "up"))
    assert "--fix-orientation" in message and "is a file, not a folder" in message
    (tmp_path / "p.csv").write_text("x")
    assert "exists: pass --overwrite" in error("--output", str(tmp_path / "p.csv"))
    assert stub == []  # no pipeline was loaded


def test_predict_turns_graph_rewrites_off_in_its_own_process(stub, tmp_path, monkeypatch):
    import tensorflow as tf

    calls = []
    monkeypatch.setattr(predict_command, "without_graph_rewrites", lambda: calls.append(1))
    _write(tmp_path / "scans", [0, 1])
    assert main(["predict", "--pipeline", "P", str(tmp_path / "scans"), "--output",
                 str(tmp_path / "p.csv"), "--quiet"]) == 0
    assert calls == [1]
    before = tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)
    try:
        without_graph_rewrites()
        assert tf.config.optimizer.get_experimental_options()["disable_meta_optimizer"]
    finally:  # the test process goes on as it was
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": before})


@pytest.mark.slow
def test_memory_does_not_grow_with_the_number_of_files(stub, tmp_path):
    """Nothing is kept per file but its path: 800 files take little more memory than 200
    (the benchmark benchmarks/bench_predict_memory.py measures the whole process). Batches
    of 50, so that both runs hold the three batches in flight (read, predicted, written)."""
    peaks = []
    for n in (20, 200, 800):  # the first run loads what is loaded once
        _write(tmp_path / f"s{n}", [1, 0, 4, 6] * (n // 4))
        argv = ["predict", "--pipeline", "P", str(tmp_path / f"s{n}"), "--output",
                str(tmp_path / f"p{n}.csv"), "--fix-orientation", str(tmp_path / f"up{n}"),
                "--report", str(tmp_path / f"r{n}.html"), "--min-class-probability", "0.6",
                "--batch-size", "50", "--quiet"]
        tracemalloc.start()
        assert main(argv) == 0
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[2] - peaks[1] < 400_000, peaks  # bytes, for 600 more files


def test_a_run_that_fails_midway_stops_the_pipeline_worker(tmp_path):
    import threading

    from risc_tf.prediction_run import plan_predictions, run_predictions
    from tests.predict_stub import StubPipeline

    def workers():
        return [t for t in threading.enumerate() if t.name.startswith("risc_tf-predict")]

    _write(tmp_path / "scans", [0, 1, 2, 3] * 5)
    plan = plan_predictions([tmp_path / "scans"], tmp_path / "p.csv", batch_size=2)

    def fail_on_the_third(result):
        fail_on_the_third.seen += 1
        if fail_on_the_third.seen == 3:
            raise RuntimeError("the disk is full")

    fail_on_the_third.seen = 0
    before = workers()
    with pytest.raises(RuntimeError, match="disk is full") as caught:
        run_predictions(StubPipeline(), plan, on_file=fail_on_the_third)
    assert caught.value is not None  # the traceback (and its frames) are still held here
    assert workers() == before and not (tmp_path / "p.csv").exists()


def test_progress_writes_no_escape_codes_when_not_a_terminal(stub, tmp_path, capsys):
    _write(tmp_path / "scans", [1] * 30)
    assert main(["predict", "--pipeline", "P", str(tmp_path / "scans"), "--output",
                 str(tmp_path / "p.csv")]) == 0
    captured = capsys.readouterr()
    for stream in (captured.out, captured.err):
        assert "\x1b" not in stream and "\r" not in stream and "\b" not in stream
    lines = captured.err.splitlines()
    assert lines[-1].startswith("30/30 files (100%)") and len(lines) <= 11


def _shard_runs(tmp_path: Path, n: int, fmt: str, extra=("--batch-size", "1")) -> list[Path]:
    outs = []
    for k in range(n):
        out = tmp_path / "shards" / f"pred-{k}.{fmt}"
        out.parent.mkdir(exist_ok=True)
        assert main(["predict", "--pipeline", "P", str(tmp_path / "scans"), "--output",
                     str(out), "--shard", f"{k}/{n}", "--fix-orientation",
                     str(tmp_path / "up"), "--quiet", *extra]) == 0
        outs.append(out)
    return outs


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_three_shards_merged_equal_one_run(stub, tmp_path, capsys, fmt):
    _write(tmp_path / "scans", [0, 1, 2, 3, 4, 5, 6, 7] * 2 + [1, 2])  # 18 files
    (tmp_path / "scans" / "c_bad.png").write_text("x")
    assert main(["predict", "--pipeline", "P", str(tmp_path / "scans"), "--output",
                 str(tmp_path / f"one.{fmt}"), "--fix-orientation", str(tmp_path / "up1"),
                 "--quiet", "--batch-size", "4"]) == 0
    shards = _shard_runs(tmp_path, 3, fmt, extra=("--batch-size", "4"))
    records = [json.loads(p.with_name(p.name + ".shard.json").read_text()) for p in shards]
    assert [(r["files"]["start"], r["files"]["stop"], r["rows"]) for r in records] == \
        [(0, 4, 4), (4, 12, 8), (12, 19, 7)]  # contiguous blocks of whole batches of 4
    capsys.readouterr()
    merged = tmp_path / f"merged.{fmt}"
    assert main(["merge", *map(str, reversed(shards)), "--output", str(merged)]) == 0
    assert "3 shards, 19 files" in capsys.readouterr().out
    one = (tmp_path / f"one.{fmt}").read_text().replace(str(tmp_path / "up1"),
                                                         str(tmp_path / "up"))
    assert merged.read_text() == one
    assert sorted(p.name for p in (tmp_path / "up").iterdir()) == \
        sorted(p.name for p in (tmp_path / "up1").iterdir())


@pytest.mark.parametrize("shard", ["3/2", "0/0", "2/2", "-1/3", "a/b", "1/2/3", "1"])
def test_bad_shard_is_refused_naming_the_argument(tmp_path, capsys, shard):
    with pytest.raises(SystemExit) as err:
        main(["predict", "--pipeline", "P", str(tmp_path), "--output", str(tmp_path / "p.csv"),
              "--shard", shard])
    assert err.value.code == 2
    assert "argument --shard: " in capsys.readouterr().err


def test_merge_refuses_mismatched_missing_overlapping_and_edited_shards(stub, tmp_path, capsys):
    _write(tmp_path / "scans", [0, 1, 2, 3, 4, 5])
    shards = _shard_runs(tmp_path, 3, "csv")
    merged = tmp_path / "merged.csv"

    def error(*paths, output=merged):
        with pytest.raises(SystemExit) as err:
            main(["merge", *map(str, paths), "--output", str(output)])
        assert err.value.code == 2
        assert not merged.exists() and _hidden(tmp_path) == []
        return capsys.readouterr().err

    assert "shard(s) missing: 1/3 (files 2-3)" in error(shards[0], shards[2])
    assert f"{shards[1]} and {shards[1]} are both shard 1/3: overlapping" in \
        error(*shards, shards[1])
    other = tmp_path / "other" / "pred-1.csv"
    other.parent.mkdir()
    assert main(["predict", "--pipeline", "P7", str(tmp_path / "scans"), "--output",
                 str(other), "--shard", "1/3", "--fix-orientation", str(tmp_path / "up"),
                 "--quiet", "--overwrite", "--batch-size", "1"]) == 0
    assert "are shards of different pipelines" in error(shards[0], other, shards[2])
    assert main(["predict", "--pipeline", "P", str(tmp_path / "scans"), "--output",
                 str(other), "--shard", "1/3", "--fix-orientation", str(tmp_path / "up"),
                 "--quiet", "--overwrite", "--min-class-probability", "0.7",
                 "--batch-size", "1"]) == 0
    message = error(shards[0], other, shards[2])
    assert "are shards of different settings: min_class_probability 0.0 != 0.7" in message
    assert main(["predict", "--pipeline", "P", str(tmp_path / "scans"), "--output",
                 str(other), "--shard", "1/3", "--fix-orientation", str(tmp_path / "up"),
                 "--quiet", "--overwrite", "--batch-size", "2"]) == 0
    assert "different settings: batch_size 1 != 2" in error(shards[0], other, shards[2])
    (tmp_path / "loose.csv").write_text(shards[0].read_text())
    assert "has no shard record" in error(tmp_path / "loose.csv", shards[1], shards[2])
    assert "is one of the shards" in error(*shards, output=shards[0])
    lines = shards[2].read_text().splitlines(keepends=True)
    shards[2].write_text("".join(lines[:-1]))
    assert "has 1 rows; its record says 2" in error(*shards)
    capsys.readouterr()


def test_a_shard_without_files_writes_empty_outputs(stub, tmp_path):
    _write(tmp_path / "scans", [1, 2])
    shards = _shard_runs(tmp_path, 3, "csv")
    assert [len(_rows(p)) for p in shards] == [0, 1, 1]
    assert main(["merge", *map(str, shards), "--output", str(tmp_path / "m.csv")]) == 0
    assert len(_rows(tmp_path / "m.csv")) == 2
    assert re.match("path,status", (tmp_path / "m.csv").read_text())
