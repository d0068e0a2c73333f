"""Peak memory of ``risc-tf predict`` against the number of files (issue 22, item 4).

For each count N (default 200, 2,000 and 20,000) a folder of N small PNG files
is written from the real PneumoniaMNIST test split (28x28 8-bit, one in four
turned by a quarter turn so that upright copies and review cards are made),
and ``risc-tf predict`` runs on it in a fresh process with every output that
keeps state: the CSV, ``--fix-orientation`` copies and a ``--report`` page.
Two numbers per run:

* the peak resident memory of that process (``ru_maxrss``), start-up,
  TensorFlow and the model included: its median over ``--repeats`` fresh
  processes per count (the peak of one process varies by 10-30 MB from run to
  run, which a single run per count cannot tell from growth);
* the resident memory *inside* the run (``/proc/self/statm``, Linux) after
  every 1,000th row written, so the growth from the 2,000th to the last file
  of one run is read directly, without the start-up noise.

The goal: memory bounded in the number of files, growth below 20 MB from 2,000
to 20,000 files.

The pipeline is a small-backbone RotNet and classifier with random weights
(memory does not depend on the weight values), saved once, or ``--pipeline``.
Files live in a temporary folder that is removed at the end.

Run from the repository root (about 15 minutes for the three counts, three
repeats each, on 2 cores)::

    TF_CPP_MIN_LOG_LEVEL=3 python -m benchmarks.bench_predict_memory
    python -m benchmarks.bench_predict_memory --counts 200 2000  # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from devdata import DATA_ROOT


def write_folder(folder: Path, count: int, images: np.ndarray) -> None:
    """``count`` PNG files cycling through ``images``; every fourth one turned by 90 degrees."""
    folder.mkdir(parents=True)
    for i in range(count):
        image = images[i % len(images)]
        if i % 4 == 3:
            image = np.rot90(image, 1 + (i // 4) % 3)
        Image.fromarray(np.ascontiguousarray(image)).save(folder / f"scan{i:06d}.png")


def make_pipeline(path: Path) -> Path:
    import keras

    from risc_tf import RISCPipeline, build_classifier, build_rotnet

    keras.utils.set_random_seed(0)
    pipe = RISCPipeline(build_rotnet(backbone="small"), build_classifier(2, backbone="small"),
                        class_names=["normal", "pneumonia"])
    return pipe.save(path)


_WRAPPER = """
import resource, sys, time
import risc_tf
from risc_tf import rowfiles

print("SOURCE", risc_tf.__file__, flush=True)
from risc_tf.cli import main

trace = []

def rss_mb():
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:  # not Linux: no reading inside the run
        return None

add = rowfiles.RowWriter.add

def counted_add(self, row):
    add(self, row)
    counted_add.rows += 1
    if counted_add.rows % 1000 == 0:
        trace.append((counted_add.rows, rss_mb()))

counted_add.rows = 0
rowfiles.RowWriter.add = counted_add
start, cpu = time.perf_counter(), time.process_time()
code = main(sys.argv[1:])
print("PEAK", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - start,
      time.process_time() - cpu, flush=True)
print("TRACE", " ".join(f"{n}:{m}" for n, m in trace if m is not None), flush=True)
sys.exit(code)
"""


def run_once(argv: list[str]) -> tuple[float, float, dict[int, float]]:
    """Peak resident memory (MB), seconds and the in-run trace of one ``risc-tf`` run."""
    run = run_measured(argv)
    return run["peak_mb"], run["seconds"], run["trace"]


def predict_argv(pipeline: str, folder: Path, out: Path) -> list[str]:
    """``risc-tf predict`` on ``folder`` with every output that keeps state, written in ``out``:
    the CSV, ``--fix-orientation`` copies and a ``--report`` page."""
    return ["predict", "--pipeline", pipeline, str(folder), "--output", str(out / "pred.csv"),
            "--fix-orientation", str(out / "upright"), "--report", str(out / "review.html"),
            "--quiet"]


def child_env(pythonpath: str | None = None) -> dict:
    """The environment of a measured child process: TensorFlow's C++ logs off, and
    ``pythonpath`` (if given) first on the user's ``PYTHONPATH``."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
    return env


def run_measured(argv: list[str], cwd: str | None = None,
                 pythonpath: str | None = None) -> dict:
    """One ``risc-tf`` run: ``peak_mb``, wall ``seconds``, ``cpu_seconds`` (user + system,
    every thread), ``trace`` and ``source`` (the ``risc_tf/__init__.py`` it imported).

    ``python -c`` puts its working folder first on ``sys.path``, ahead of
    ``PYTHONPATH``: run from the repository root it imports that checkout's
    risc_tf whatever ``PYTHONPATH`` says, so code-against-code runs pass a neutral
    ``cwd`` with the folder to import from as ``pythonpath`` (put first).

    The run is started from a tiny wrapper process (:data:`_WRAPPER`) that
    reports its own ``ru_maxrss`` once the command has finished, so other
    children of this script do not mix in, and the resident memory after every
    1,000th predictions row ({rows: MB}; empty off Linux).
    """
    done = subprocess.run([sys.executable, "-c", _WRAPPER, *argv], capture_output=True,
                          text=True, env=child_env(pythonpath), check=False, cwd=cwd)
    lines = {ln.split(" ", 1)[0]: ln.split()[1:] for ln in done.stdout.splitlines()
             if ln.startswith(("PEAK ", "TRACE", "SOURCE "))}
    if done.returncode != 0 or "PEAK" not in lines:
        raise RuntimeError(f"risc-tf {' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    kib, seconds, cpu = lines["PEAK"]
    scale = 1024 if sys.platform != "darwin" else 1  # Linux: KiB, macOS: bytes
    trace = {int(n): float(m) for n, m in (item.split(":") for item in lines.get("TRACE", []))}
    return {"peak_mb": int(kib) * scale / 2**20, "seconds": float(seconds),
            "cpu_seconds": float(cpu), "trace": trace,
            "source": " ".join(lines.get("SOURCE", []))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[200, 2000, 20000])
    parser.add_argument("--pipeline", help="a saved pipeline (default: a small random one)")
    parser.add_argument("--data-root", default=DATA_ROOT)
    parser.add_argument("--repeats", type=int, default=3,
                        help="fresh processes per count (the median peak is reported)")
    parser.add_argument("--batch-size", type=int,
                        help="risc-tf predict's --batch-size (default: the command's)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    from risc_tf.data import load_medmnist

    images, _ = load_medmnist("pneumoniamnist", "test", root=args.data_root)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_predict_memory_") as tmp:
        tmp = Path(tmp)
        pipeline = args.pipeline or str(make_pipeline(tmp / "pipeline"))
        for count in args.counts:
            folder = tmp / f"scans{count}"
            write_folder(folder, count, images)
            peaks, times, traces = [], [], []
            for repeat in range(args.repeats):
                out = tmp / f"out{count}-{repeat}"
                out.mkdir()
                argv = predict_argv(pipeline, folder, out)
                if args.batch_size:
                    argv += ["--batch-size", str(args.batch_size)]
                peak, seconds, trace = run_once(argv)
                peaks.append(round(peak, 1))
                times.append(round(seconds, 1))
                traces.append(trace)
                shutil.rmtree(out)
            entry = {"files": count, "peak_rss_mb": peaks,
                     "median_peak_rss_mb": round(float(np.median(peaks)), 1),
                     "seconds": times,
                     "files_per_s": round(count / float(np.median(times)), 1),
                     "rss_by_rows_mb": traces}
            growth = [t[max(t)] - t[2000] for t in traces if 2000 in t and max(t) > 2000]
            if growth:
                entry["in_run_growth_from_2000_mb"] = [round(g, 1) for g in growth]
            results.append(entry)
            text = (f"{count:7d} files: peak RSS median {entry['median_peak_rss_mb']:7.1f} MB "
                    f"(runs: {', '.join(f'{p:.1f}' for p in peaks)}), "
                    f"{entry['files_per_s']:.0f} files/s, start-up included")
            if len(results) > 1:
                change = entry["median_peak_rss_mb"] - results[-2]["median_peak_rss_mb"]
                text += f"; median {change:+.1f} MB from {results[-2]['files']}"
            if growth:
                text += (f"; inside the run, file 2,000 -> {max(traces[0]):,}: "
                         f"{', '.join(f'{g:+.1f}' for g in growth)} MB")
            print(text, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "time": time.ctime()},
                                              indent=1))


if __name__ == "__main__":
    main()
