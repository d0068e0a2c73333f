"""Issue 22's probe, the command-line cases: aggregate into a run (item 1), invalid options
(item 2), kill -9 during predict (item 3), extra evaluation angles and downloads (the
round before).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_predict_memory import write_folder
from devdata import DATA_ROOT
from probes._bad_harness import (
    DATASET,
    STAGING,
    Probe,
    changes,
    classify,
    csv_rows,
    error_line,
    hidden_and_temporary,
    left,
    snapshot,
)


# -- item 1: aggregate into a run folder ---------------------------------------------------
def make_run(probe: Probe) -> Path:
    run = probe.tmp / "run"
    done = probe.cli("reproduce", "--dataset", DATASET, "--data-root", DATA_ROOT,
                     "--backbone", "small", "--subset", "64", "--epochs", "1",
                     "--rotnet-epochs", "1", "--batch-size", "32", "--sweep-step", "90",
                     "--timing-samples", "2", "--quiet", "--output", run, timeout=900)
    if done.code != 0 or not (run / "results.json").is_file():
        raise SystemExit(f"the tiny reproduce run failed (exit {done.code}):\n"
                         f"{done.stderr[-2000:]}")
    if not probe.quiet:
        print(f"  (tiny reproduce run made in {done.seconds:.0f} s)", flush=True)
    return run


def aggregate_cases(probe: Probe, run: Path) -> None:
    results = (run / "results.json").read_bytes()
    for name, output, valid in (
            ("aggregate RUN --output RUN --overwrite", run, False),
            ("aggregate RUN --output RUN/aggregate --overwrite", run / "aggregate", False),
            ("aggregate RUN --output OUT (outside the run; valid)", probe.tmp / "agg", True)):
        before = snapshot(run)
        argv = ["aggregate", run, "--output", output] + (["--overwrite"] if not valid else [])
        done = probe.cli(*argv)
        lost, added = changes(before, snapshot(run))
        wrong = []
        if (run / "results.json").read_bytes() != results and "results.json" not in lost:
            lost.append("results.json")
        if valid:
            target = output / "results.json"
            if not target.is_file() or json.loads(target.read_text()).get("kind") != "aggregate":
                wrong.append(f"{target.name} not an aggregate")
            wrong += [f"added to the run folder: {p}" for p in added]
        verdict = classify(valid, done.code, done.stderr, names=("run folder",), lost=lost,
                           written=[f"RUN/{p}" for p in added], wrong=wrong,
                           note="results.json unchanged (bytes)" if not lost else "")
        probe.add("1", name, probe.show(["risc-tf", *argv]), done.code, verdict, done.seconds)


# -- item 2: invalid options of reproduce and tune, and missing data -----------------------
def option_cases(probe: Probe, pipeline: Path) -> None:
    empty = probe.tmp / "no-data"
    empty.mkdir()
    missing = probe.tmp / "missing.weights.h5"

    def small(**changed) -> list:
        """A tiny experiment's options, some of them changed (``None``: left out)."""
        values = {"dataset": DATASET, "data_root": DATA_ROOT, "backbone": "small",
                  "subset": "64", "epochs": "1", "rotnet_epochs": "1", **changed}
        words = [[f"--{k.replace('_', '-')}", v] for k, v in values.items() if v is not None]
        return [w for pair in words for w in pair] + ["--quiet"]

    grid1 = ["--grid", '{"epochs": [1]}']
    cases = [
        ("reproduce --optimizer adamx", ["reproduce", *small(optimizer="adamx")], ("adamx",)),
        ("reproduce --seeds 0,1 --optimizer adamx",
         ["reproduce", *small(seeds="0,1", optimizer="adamx")], ("adamx",)),
        ("reproduce --jitter 60 (quarter turns)", ["reproduce", *small(jitter="60")],
         ("jitter",)),
        ("reproduce --rotnet-head circular with 4 angles",
         ["reproduce", *small(rotnet_head="circular")], ("circular",)),
        ("reproduce --weights MISSING-FILE", ["reproduce", *small(weights=missing)],
         ("missing.weights.h5",)),
        ("reproduce --weights imagenet --backbone small",
         ["reproduce", *small(weights="imagenet")], ("imagenet",)),
        ("reproduce --backbone resnet50 --input-size 16",
         ["reproduce", *small(backbone="resnet50", input_size="16")], ("32x32",)),
        ("reproduce --data-root EMPTY (no .npz)", ["reproduce", *small(data_root=empty)],
         ("pneumoniamnist.npz",)),
        ("reproduce --seeds 0,1 --data-root EMPTY (no .npz)",
         ["reproduce", *small(seeds="0,1", data_root=empty)], ("pneumoniamnist.npz",)),
        ("tune --grid '{\"optimizer\": [\"adamx\"]}'",
         ["tune", *small(), "--grid", '{"optimizer": ["adamx"]}'], ("adamx",)),
        ("tune --grid '{\"nosuch\": [1]}'", ["tune", *small(), "--grid", '{"nosuch": [1]}'],
         ("nosuch",)),
        ("tune --grid 'not json'", ["tune", *small(), "--grid", "not json"], ("--grid",)),
        ("tune --weights MISSING-FILE", ["tune", *small(weights=missing), *grid1],
         ("missing.weights.h5",)),
        ("tune --data-root EMPTY (no .npz)", ["tune", *small(data_root=empty), *grid1],
         ("pneumoniamnist.npz",)),
        ("evaluate --data-root EMPTY (no .npz)",
         ["evaluate", "--pipeline", pipeline, *small(data_root=empty, backbone=None,
                                                     subset="16", epochs=None,
                                                     rotnet_epochs=None)],
         ("pneumoniamnist.npz",)),
    ]
    blocked_checked = False
    for i, (name, argv, names) in enumerate(cases):
        new = probe.tmp / f"new-{i}"
        argv = [*argv, "--output", new]
        done = probe.cli(*argv, timeout=240)
        written = left(new, probe.tmp)
        note = ""
        marker = new / "run.json"
        if marker.is_file():
            status = json.loads(marker.read_text()).get("status")
            note = f"run.json says status {status!r}"
            if not blocked_checked:  # what the leftover does to the corrected command
                blocked_checked = True
                fixed = probe.cli("reproduce", *small(), "--output", new, timeout=600)
                note += (f"; the corrected command (no --weights) then exits {fixed.code}: "
                         f"{error_line(fixed.stderr)[:160] if fixed.code else 'ran'}")
        elif written and all(p.endswith("/") for p in written):
            note = "empty folders only"
        verdict = classify(False, done.code, done.stderr, names=names,
                           written=[w.replace(f"new-{i}", "NEW") for w in written], note=note)
        shown = probe.show(["risc-tf", *argv]).replace(f"new-{i}", "NEW")
        probe.add("2", name, shown, done.code, verdict, done.seconds)


# -- item 3: kill -9 during predict --fix-orientation, then the same command again --------
def kill_cases(probe: Probe, pipeline: Path, images: np.ndarray, count: int) -> None:
    base = probe.tmp / "kill"
    scans, out, up = base / "scans", base / "out", base / "upright"
    write_folder(scans, count, images)
    out.mkdir()
    argv = ["predict", "--pipeline", pipeline, scans, "--output", out / "pred.csv",
            "--fix-orientation", up, "--batch-size", "8", "--quiet"]
    command = probe.show(["risc-tf", *argv])
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "risc_tf", *argv],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    staged, deadline = 0, time.monotonic() + 300
    while child.poll() is None and time.monotonic() < deadline:
        folders = list(up.glob(STAGING + "*")) if up.is_dir() else []
        staged = sum(1 for f in folders if f.is_dir() for p in f.rglob("*") if p.is_file())
        if staged >= max(20, count // 10):
            break
        time.sleep(0.01)
    finished = child.poll() is not None
    if not finished:
        os.kill(child.pid, signal.SIGKILL)
    child.communicate()
    seconds = round(time.perf_counter() - start, 1)
    if finished:
        probe.add("3", "kill -9 during predict --fix-orientation", f"{command}; kill -9",
                  child.returncode, ("skipped", f"the run ended (exit {child.returncode}) "
                                     "before the probe saw files staged: nothing was killed"),
                  seconds)
        return
    visible_copies = sorted(p.name for p in up.iterdir() if not p.name.startswith(".")) \
        if up.is_dir() else []
    hidden = sorted(p.name for p in up.iterdir() if p.name.startswith(".")) \
        if up.is_dir() else []
    out_left = sorted(os.listdir(out))
    temps = hidden_and_temporary(out, up, scans)
    half = []
    if visible_copies:
        half.append(f"{len(visible_copies)} upright copies visible with no predictions file")
    if out_left:
        half.append(f"left in the output folder: {out_left}")
    kinds = sorted({re.sub(r"\.risc-tf-staging\.[^.]+", ".risc-tf-staging.TOKEN", h)
                    for h in hidden})
    evidence = (f"killed with {staged} files in its staging folder; left: "
                f"{', '.join(kinds) or 'nothing'}; "
                f"{len(visible_copies)} visible copies, output folder {out_left or 'empty'}; "
                f"{len(temps)} staging/temporary entries (docs/deploy.md: only the hidden "
                "folder and its lock)")
    verdict = classify(True, 0, half=half, note=evidence)
    probe.add("3", "kill -9 during predict --fix-orientation: what is left", f"{command}; "
              "kill -9 PID", -9, verdict, seconds)

    done = probe.cli(*argv)
    half, wrong = [], []
    if done.code == 0:
        stale = hidden_and_temporary(out, up, scans)
        if stale:
            half.append(f"stale temporaries after the rerun: {stale[:3]}")
        documented = "cleaned up after interrupted runs: removed the temporary files of 1"
        if documented not in done.stdout:
            wrong.append(f"no {documented!r} line (docs/deploy.md)")
        rows = csv_rows(out / "pred.csv")
        names = sorted(Path(r["path"]).name for r in rows)
        expected = sorted(p.name for p in scans.iterdir())
        if names != expected:
            wrong.append(f"CSV lists {len(names)} of {len(expected)} files")
        listed = {str(Path(r["upright_copy"]).resolve()) for r in rows if r["upright_copy"]}
        on_disk = {str(p.resolve()) for p in up.rglob("*")
                   if p.is_file() and not p.name.startswith(".")}
        if on_disk - listed:
            half.append(f"{len(on_disk - listed)} copies on disk not in the CSV")
        if listed - on_disk:
            half.append(f"{len(listed - on_disk)} copies in the CSV not on disk")
        note = (f"{len(rows)} rows for {len(expected)} files, {len(on_disk)} copies all listed"
                if not (half or wrong) else "")
        if documented in done.stdout:
            note += "; printed the documented clean-up line"
    else:
        note = ""
    verdict = classify(True, done.code, done.stderr, half=half, wrong=wrong, note=note)
    probe.add("3", "the same predict again after the kill", command, done.code, verdict,
              done.seconds)


def evaluate_angles_case(probe: Probe, pipeline: Path) -> None:
    out = probe.tmp / "evaluate45"
    argv = ["evaluate", "--pipeline", pipeline, "--dataset", DATASET, "--data-root", DATA_ROOT,
            "--subset", "32", "--angle-step", "45", "--output", out, "--quiet"]
    done = probe.cli(*argv)
    wrong = []
    if done.code == 0:
        result = json.loads((out / "evaluation.json").read_text())
        per = result["rotnet"]["per_angle_acc"]
        outside = sorted(float(a) for a, v in per.items() if isinstance(v, str))
        if len(per) != 8 or outside != [45.0, 135.0, 225.0, 315.0]:
            wrong.append(f"per-angle entries {sorted(per)}, outside the set {outside}")
    verdict = classify(True, done.code, done.stderr, wrong=wrong,
                       note="45/135/225/315 reported as outside the RotNet's set"
                       if done.code == 0 and not wrong else "")
    probe.add("prev", "evaluate --angle-step 45 on a 4-angle RotNet", probe.show(
        ["risc-tf", *argv]), done.code, verdict, done.seconds)


@contextlib.contextmanager
def http_server(folder: Path):
    """An HTTP server on 127.0.0.1 serving ``folder``; yields its base URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextlib.contextmanager
def silent_server():
    """A socket on 127.0.0.1 that accepts connections and never answers; yields its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    accepted, stop = [], threading.Event()

    def accept():
        sock.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(sock.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        sock.close()


#: The CLI with the download URL and MD5 pointed elsewhere (argv: URL MD5 COMMAND...).
_PATCHED_CLI = """
import sys
from risc_tf import catalog
url, md5 = sys.argv[1], sys.argv[2] or None
catalog.url_and_md5 = lambda flag, size: (url, md5)
from risc_tf.cli import main
sys.exit(main(sys.argv[3:]))
"""


def download_cases(probe: Probe, pipeline: Path) -> None:
    npz = DATA_ROOT / f"{DATASET}.npz"
    md5 = hashlib.md5(npz.read_bytes()).hexdigest()
    with silent_server() as silent, http_server(DATA_ROOT) as server:
        # a stalled download: a server that never answers, a 2-second timeout
        root, new = probe.tmp / "dl-stalled", probe.tmp / "dl-stalled-out"
        root.mkdir()
        argv = ["reproduce", "--dataset", DATASET, "--data-root", root, "--backbone", "small",
                "--subset", "64", "--epochs", "1", "--rotnet-epochs", "1", "--download",
                "--download-timeout", "2", "--output", new, "--quiet"]
        done = probe.run([sys.executable, "-c", _PATCHED_CLI, f"{silent}/{DATASET}.npz", "",
                          *argv], timeout=120)
        said = re.search(r"\(timeout ([\d.]+) s\)", done.stderr)
        wrong = []
        if said and float(said.group(1)) != 2:
            wrong.append(f"--download-timeout 2 ignored: the message says timeout "
                         f"{said.group(1)} s, {done.seconds:.0f} s in all")
        verdict = classify(False, done.code, done.stderr, names=("timed out",), wrong=wrong,
                           written=left(new, probe.tmp) + left(root, probe.tmp)[1:])
        probe.add("prev", "a stalled download (server never answers, --download-timeout 2)",
                  probe.show(["risc-tf", *argv]) + "  (URL: a silent 127.0.0.1 socket)",
                  done.code, verdict, done.seconds)

        # a killed download, then the same command against a working server
        root, out = probe.tmp / "dl-killed", probe.tmp / "dl-killed-out"
        root.mkdir()
        argv = ["evaluate", "--pipeline", pipeline, "--dataset", DATASET, "--data-root", root,
                "--download", "--download-timeout", "60", "--subset", "16", "--output", out,
                "--quiet"]
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", _PATCHED_CLI,
                                  f"{silent}/{DATASET}.npz", "", *argv],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while (not list(root.glob(".download-*")) and child.poll() is None
               and time.monotonic() < deadline):
            time.sleep(0.1)
        killed = child.poll() is None
        if killed:
            os.kill(child.pid, signal.SIGKILL)
        child.wait()
        after_kill = sorted(p.name for p in root.iterdir())
        done = probe.run([sys.executable, "-c", _PATCHED_CLI, f"{server}/{npz.name}", md5,
                          *argv])
        seconds = round(time.perf_counter() - start, 1)
        wrong, half = [], []
        if not killed:
            wrong.append(f"the download ended (exit {child.returncode}) before the kill")
        if done.code == 0:
            now = sorted(p.name for p in root.iterdir())
            if now != [npz.name]:
                half.append(f"data folder after the rerun: {now}")
            if hashlib.md5((root / npz.name).read_bytes()).hexdigest() != md5:
                wrong.append("the downloaded file differs from the served one")
            if not (out / "evaluation.json").is_file():
                wrong.append("no evaluation.json")
        verdict = classify(True, done.code, done.stderr, half=half, wrong=wrong,
                           note=f"after kill -9: {after_kill}; rerun left only {npz.name}"
                           if done.code == 0 and not (half or wrong) else
                           f"after kill -9: {after_kill}")
        probe.add("prev", "a killed download, then the same command",
                  probe.show(["risc-tf", *argv]) + "; kill -9; same command (local server)",
                  done.code, verdict, seconds)


