"""Peak memory of ``risc-tf predict`` against the number of files (issue 22, item 4).

For each count N (default 200, 2,000 and 20,000) a folder of N small PNG files
is written from the real PneumoniaMNIST test split (28x28 8-bit, one in four
turned by a quarter turn so that upright copies and review cards are made),
and ``risc-tf predict`` runs on it in a fresh process with every output that
keeps state: the CSV, ``--fix-orientation`` copies and a ``--report`` page.
The peak resident memory of that process (``ru_maxrss`` of the child) is
printed per N, with the growth between consecutive counts. The goal: memory
bounded in the number of files, growth below 20 MB from 2,000 to 20,000 files.

The pipeline is a small-backbone RotNet and classifier with random weights
(memory does not depend on the weight values), saved once, or ``--pipeline``.
Files live in a temporary folder that is removed at the end.

Run from the repository root (about 10 minutes for the three counts on 2 cores)::

    TF_CPP_MIN_LOG_LEVEL=3 python -m benchmarks.bench_predict_memory
    python -m benchmarks.bench_predict_memory --counts 200 2000  # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
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


def peak_rss_mb(argv: list[str]) -> tuple[float, float]:
    """Peak resident memory (MB) and seconds of one ``risc-tf`` run in a new process.

    The run is started from a tiny wrapper process that reports its own
    ``ru_maxrss`` once the command has finished, so other children of this
    script do not mix in.
    """
    code = (
        "import resource, sys, time\n"
        "from risc_tf.cli import main\n"
        "start = time.perf_counter()\n"
        "code = main(sys.argv[1:])\n"
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
        "time.perf_counter() - start, flush=True)\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          env=env, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("PEAK ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"risc-tf {' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    _, kib, seconds = line.split()
    scale = 1024 if sys.platform != "darwin" else 1  # Linux: KiB, macOS: bytes
    return int(kib) * scale / 2**20, float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[200, 2000, 20000])
    parser.add_argument("--pipeline", help="a saved pipeline (default: a small random one)")
    parser.add_argument("--data-root", default=DATA_ROOT)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    from risc_tf.data import load_medmnist

    images, _ = load_medmnist("pneumoniamnist", "test", root=args.data_root)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_predict_memory_") as tmp:
        tmp = Path(tmp)
        pipeline = args.pipeline or str(make_pipeline(tmp / "pipeline"))
        for count in args.counts:
            folder, out = tmp / f"scans{count}", tmp / f"out{count}"
            write_folder(folder, count, images)
            out.mkdir()
            argv = ["predict", "--pipeline", pipeline, str(folder), "--output",
                    str(out / "pred.csv"), "--fix-orientation", str(out / "upright"),
                    "--report", str(out / "review.html"), "--quiet"]
            peak, seconds = peak_rss_mb(argv)
            results.append({"files": count, "peak_rss_mb": round(peak, 1),
                            "seconds": round(seconds, 1),
                            "files_per_s": round(count / seconds, 1)})
            growth = "" if len(results) == 1 else \
                f"  (+{peak - results[-2]['peak_rss_mb']:.1f} MB from {results[-2]['files']})"
            print(f"{count:7d} files: peak RSS {peak:7.1f} MB, {seconds:6.1f} s "
                  f"({count / seconds:.0f} files/s, start-up included){growth}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "time": time.ctime()},
                                              indent=1))


if __name__ == "__main__":
    main()
