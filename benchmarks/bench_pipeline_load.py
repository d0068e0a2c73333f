"""Loading a saved pipeline in a fresh process, code against code, rounds interleaved.

``RISCPipeline.load`` is the part of ``risc-tf predict``'s start-up that
risc_tf controls (importing TensorFlow and Keras and the first graph trace are
the rest). Each round loads the pipeline once per variant, each in a fresh
process that has imported TensorFlow first (not timed), the order turning from
round to round; the rounds are compared pair by pair (Wilcoxon signed-rank
test), as in :mod:`benchmarks.bench_predict_throughput`, whose ``NAME=SRC``
variants (a checkout or ``git worktree`` of another commit) this takes too.
``--fold`` loads as ``predict`` does (``fold_batchnorm=True``). Run from the
repository root::

    git worktree add ../before <commit>
    python -m benchmarks.bench_pipeline_load --pipeline RUN/seed-1/models/risc_pipeline \\
        --variant before=../before --variant after=. --rounds 5 --fold
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

from benchmarks._common import cpu_model
from benchmarks.bench_predict_memory import child_env
from benchmarks.bench_predict_throughput import check_source, compare, in_turn, parse_variant

_CHILD = """
import sys, time
from risc_tf.cli import _load_tensorflow_quietly
_load_tensorflow_quietly()
import risc_tf
from risc_tf.pipeline import RISCPipeline
options = {"fold_batchnorm": True} if sys.argv[2] == "fold" else {}
start, cpu = time.perf_counter(), time.process_time()
RISCPipeline.load(sys.argv[1], **options)
print("LOAD", time.perf_counter() - start, time.process_time() - cpu, risc_tf.__file__)
"""


def load_once(pipeline: str, source: Path, fold: bool, cwd: str) -> tuple[float, float]:
    """Wall and CPU seconds of one load, in a fresh process importing ``source``'s risc_tf."""
    done = subprocess.run([sys.executable, "-c", _CHILD, pipeline, "fold" if fold else "-"],
                          capture_output=True, text=True, env=child_env(str(source)), cwd=cwd,
                          check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("LOAD ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"loading {pipeline} with {source} failed:\n{done.stderr[-3000:]}")
    _, wall, cpu, imported = line.split(" ", 3)
    check_source(str(source), imported, source)
    return float(wall), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", type=parse_variant, action="append", required=True,
                        metavar="NAME=SRC", help="code to time (the first is the base)")
    parser.add_argument("--pipeline", required=True, help="a saved pipeline")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fold", action="store_true",
                        help="load with fold_batchnorm=True, as risc-tf predict does")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    names = [name for name, _, _ in args.variant]
    if args.rounds < 2 or len(set(names)) != len(names):
        parser.error("--rounds must be >= 2 and variant names must differ")
    if any(extra for _, _, extra in args.variant):
        parser.error("a variant here is NAME=SRC (no ::ARGS: there is no command line)")
    pipeline = str(Path(args.pipeline).resolve())
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_load_") as neutral:
        for round_ in range(args.rounds):
            for name, source, _ in in_turn(args.variant, round_):
                seconds, cpu_seconds = load_once(pipeline, source, args.fold, neutral)
                wall[name].append(round(seconds, 3))
                cpu[name].append(round(cpu_seconds, 3))
                print(f"round {round_}: {name} {seconds:.2f} s (CPU {cpu_seconds:.2f} s)",
                      flush=True)
    results = compare(wall, cpu)
    for name, entry in results.items():
        line = f"{name}: median {entry['median_s']:.2f} s, CPU {entry['median_cpu_s']:.2f} s"
        if "against" in entry:
            line += (f"; {entry['wall']['median_difference']:+.2f} s a round against "
                     f"{entry['against']} (lower in {entry['wall']['lower_rounds']} of "
                     f"{args.rounds}, Wilcoxon p = {entry['wall']['wilcoxon_p']:.3f})")
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"pipeline": args.pipeline, "fold_batchnorm": args.fold, "rounds": args.rounds,
             "cpu": cpu_model(), "variants": {name: os.path.relpath(source)
                                              for name, source, _ in args.variant},
             "results": results, "time": time.ctime()}, indent=1))


if __name__ == "__main__":
    main()
