"""Whole-command throughput of ``risc-tf predict``, code against code, rounds interleaved.

Issue 20's goal is ``risc-tf predict`` on a folder of 10,000 PNG files at 300
files/s or more, start-up included. On a shared 2-vCPU machine the same run
varies from day to day and within an hour (36 to 67 s for one command), so two
versions are compared in one session, alternating: each round runs every
variant once, in fresh processes, on the same folder: 28x28 PNGs from the real
PneumoniaMNIST test split, one in four turned, with the CSV, upright copies and
a review page, as :mod:`benchmarks.bench_predict_memory` writes them. The order
turns from round to round, so that no variant always runs in the same place. The
rounds are the unit of the comparison: the per-round differences against the
first variant and their Wilcoxon signed-rank test, so a slow spell of the
machine weighs on every variant alike. Beside the wall time, each run's CPU time
(user + system, all threads): the work done, which a busy host inflates less than
the wall time.

A variant is ``NAME=SRC`` or ``NAME=SRC::ARGS``: ``SRC`` is a folder that holds
the ``risc_tf`` package to run (a checkout or a ``git worktree`` of another
commit; it goes first on ``PYTHONPATH``), ``ARGS`` extra options of
``risc-tf predict``. Run from the repository root::

    git worktree add ../before <commit>
    python -m benchmarks.bench_predict_throughput --pipeline RUN/seed-1/models/risc_pipeline \\
        --variant before=../before --variant after=. --count 10000 --rounds 10
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import cpu_model
from benchmarks.bench_predict_memory import (
    make_pipeline,
    predict_argv,
    run_measured,
    write_folder,
)
from devdata import DATA_ROOT


def parse_variant(text: str) -> tuple[str, Path, list[str]]:
    """``NAME=SRC[::ARGS]`` -> (name, source folder, extra predict options)."""
    name, sep, rest = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"a variant is NAME=SRC[::ARGS]; got {text!r}")
    source, _, extra = rest.partition("::")
    path = Path(source).resolve()
    if not (path / "risc_tf" / "__init__.py").is_file():
        raise argparse.ArgumentTypeError(f"variant {name}: {source} holds no risc_tf package")
    return name, path, shlex.split(extra)


def paired(values: list[float], base: list[float]) -> dict:
    """Per-round differences ``values - base``, their median, and Wilcoxon's p."""
    from scipy.stats import wilcoxon

    d = np.asarray(values) - np.asarray(base)
    return {"differences": np.round(d, 2).tolist(), "median_difference": float(np.median(d)),
            "lower_rounds": int(np.sum(d < 0)),
            "wilcoxon_p": float(wilcoxon(values, base).pvalue) if np.any(d) else 1.0}


def in_turn(variants: list, round_: int) -> list:
    """The variants in the order of round ``round_``: each takes every place in turn."""
    shift = round_ % len(variants)
    return variants[shift:] + variants[:shift]


def check_source(name: str, imported: str, source: Path) -> None:
    """Refuse a run of variant ``name`` that imported a risc_tf from outside ``source``."""
    if not Path(imported).resolve().is_relative_to(source):
        raise RuntimeError(f"variant {name} ran the risc_tf of {imported}, not of {source}")


def compare(times: dict[str, list[float]], cpu: dict[str, list[float]],
            count: int | None = None) -> dict:
    """Medians per variant, and each variant's per-round differences against the first
    (with ``count`` files a run, the files per second at the median too)."""
    names = list(times)
    summary = {}
    for name in names:
        median = float(np.median(times[name]))
        entry = {"seconds": times[name], "median_s": median, "cpu_seconds": cpu[name],
                 "median_cpu_s": float(np.median(cpu[name]))}
        if count is not None:
            entry["files_per_s"] = round(count / median, 1)
        if name != names[0]:
            entry["against"] = names[0]
            entry["wall"] = paired(times[name], times[names[0]])
            entry["cpu"] = paired(cpu[name], cpu[names[0]])
        summary[name] = entry
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", type=parse_variant, action="append", required=True,
                        metavar="NAME=SRC[::ARGS]", help="code to time (the first is the base)")
    parser.add_argument("--pipeline", help="a saved pipeline (default: a small random one)")
    parser.add_argument("--count", type=int, default=10000, help="files in the folder")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--data-root", default=DATA_ROOT)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    if args.rounds < 2 or args.count < 1:
        parser.error("--rounds must be >= 2 and --count >= 1")
    names = [name for name, _, _ in args.variant]
    if len(set(names)) != len(names):
        parser.error(f"variant names must differ; got {names}")

    from risc_tf.data import load_medmnist

    images, _ = load_medmnist("pneumoniamnist", "test", root=args.data_root)
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    peaks: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="bench_predict_throughput_") as tmp:
        tmp = Path(tmp)
        pipeline = str(Path(args.pipeline).resolve()) if args.pipeline else \
            str(make_pipeline(tmp / "pipeline"))
        folder = tmp / "scans"
        write_folder(folder, args.count, images)
        for round_ in range(args.rounds):
            for name, source, extra in in_turn(args.variant, round_):
                out = tmp / "out"
                out.mkdir()
                try:  # from tmp, not the repository root (see run_measured)
                    run = run_measured([*predict_argv(pipeline, folder, out), *extra],
                                       cwd=str(tmp), pythonpath=str(source))
                finally:
                    shutil.rmtree(out)
                check_source(name, run["source"], source)
                times[name].append(round(run["seconds"], 2))
                cpu[name].append(round(run["cpu_seconds"], 2))
                peaks[name].append(round(run["peak_mb"], 1))
                print(f"round {round_}: {name} {run['seconds']:.1f} s (CPU "
                      f"{run['cpu_seconds']:.1f} s), peak {run['peak_mb']:.0f} MB", flush=True)
    summary = compare(times, cpu, args.count)
    for name, entry in summary.items():
        entry["peak_rss_mb"] = peaks[name]
        entry["median_peak_rss_mb"] = float(np.median(peaks[name]))
        line = (f"{name}: median {entry['median_s']:.1f} s, {entry['files_per_s']:.0f} files/s, "
                f"CPU {entry['median_cpu_s']:.1f} s, peak {entry['median_peak_rss_mb']:.0f} MB")
        for kind in ("wall", "cpu") if "against" in entry else ():
            test = entry[kind]
            line += (f"; {kind} {test['median_difference']:+.1f} s a round against "
                     f"{entry['against']} (lower in {test['lower_rounds']} of {args.rounds}, "
                     f"Wilcoxon p = {test['wilcoxon_p']:.3f})")
        print(line)
    if args.json:
        variants = {name: {"source": os.path.relpath(source), "args": extra}
                    for name, source, extra in args.variant}
        Path(args.json).write_text(json.dumps(
            {"count": args.count, "rounds": args.rounds, "cpu": cpu_model(),
             "pipeline": args.pipeline or "a small random pipeline",
             "variants": variants, "results": summary, "time": time.ctime()}, indent=1))


if __name__ == "__main__":
    main()
