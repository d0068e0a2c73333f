"""Issue 22's bad and edge inputs run again, end to end, as a user would run them.

Every case the issue names (its nine defects and the six of the round before)
runs through real ``python -m risc_tf ...`` processes (the Python API for the
API cases: ``RISCPipeline.save`` below a file, RGBA, numpy integer and uint16
inputs). Each case is classified as the issue does, from what happened (exit
code, standard error, files on disk before and after), never from the case's
name:

- ``correct``: valid input handled (exit 0 and its outputs checked);
- ``clear_error``: bad input refused with a message naming the problem (exit 2
  or a ValueError/OSError), nothing written;
- defects: ``data_lost`` (a file that existed was changed or removed),
  ``half_written`` (a refusal or a kill that leaves outputs or temporaries
  behind, or outputs that do not agree), ``silent_wrong`` (bad input accepted,
  a wrong answer with exit 0, or an option silently not applied),
  ``valid_refused`` (valid input refused),
  ``raw_error`` (a traceback, a crash, an exception that is not a clear message,
  an internal temporary file named, or a message that does not name the
  problem).

Cases that need a local download server use one on 127.0.0.1 (the tests' server
fixtures in ``tests/test_data.py`` are pytest fixtures, so the probe has its own
two small ones); the download URL is pointed at it the way those tests do
(``risc_tf.catalog.url_and_md5`` replaced in the child process before the CLI's
``main`` runs).

The predict pipeline is the small-backbone random pipeline of
``benchmarks.bench_predict_memory.make_pipeline``; the aggregate cases use a tiny
real ``risc-tf reproduce`` run (small backbone, 64 images a split, one epoch).
About 5 minutes on 2 cores. Prints a table and exits 1 if any case is a defect.

Run from the repository root::

    python -m probes.bad_inputs --output docs/results/probes/bad_inputs.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.bench_predict_memory import make_pipeline  # noqa: E402
from devdata import DATA_ROOT  # noqa: E402
from probes._bad_cli_cases import (
    aggregate_cases,
    download_cases,
    evaluate_angles_case,
    kill_cases,
    make_run,
    option_cases,
)
from probes._bad_file_cases import (
    dicom_case,
    input_cases,
    missing_folder_case,
    name_cases,
    save_case,
)
from probes._bad_harness import (
    DATASET,
    DEFECTS,
    KINDS,
    Probe,
    classify,
    table,
)

__all__ = ["classify", "main"]

# -- the whole probe ------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", help="write the cases as JSON here")
    parser.add_argument("--files", type=int, default=400,
                        help="PNG files in the folder of the kill -9 case (default 400)")
    parser.add_argument("--quiet", action="store_true", help="no line per case as it ends")
    args = parser.parse_args(argv)
    if not (DATA_ROOT / f"{DATASET}.npz").is_file():
        raise SystemExit(f"{DATASET}.npz not found in {DATA_ROOT} (set $RISC_TF_DATA)")
    from risc_tf import RISCPipeline
    from risc_tf.data import load_medmnist

    start = time.perf_counter()
    images, _ = load_medmnist(DATASET, "test", root=DATA_ROOT)
    images = images[:100]
    with tempfile.TemporaryDirectory(prefix="bad_inputs_") as tmp:
        probe = Probe(Path(tmp), quiet=args.quiet)
        pipeline = make_pipeline(probe.tmp / "pipeline")
        pipe = RISCPipeline.load(pipeline)
        run = make_run(probe)
        aggregate_cases(probe, run)
        option_cases(probe, pipeline)
        kill_cases(probe, pipeline, images, args.files)
        name_cases(probe, pipeline, images)
        dicom_case(probe, pipeline, images)
        save_case(probe, pipe)
        missing_folder_case(probe, pipeline, probe.tmp / "kill" / "scans")
        input_cases(probe, pipe, images)
        evaluate_angles_case(probe, pipeline)
        download_cases(probe, pipeline)
        cases = probe.cases
    counts = {k: sum(c.kind == k for c in cases) for k in KINDS}
    defects = sum(counts[k] for k in DEFECTS)
    seconds = round(time.perf_counter() - start)
    print(table(cases))
    print(", ".join(f"{v} {k}" for k, v in counts.items() if v or k in DEFECTS)
          + f"; {len(cases)} cases in {seconds} s")
    if args.output:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(
            {"issue": 22, "commit": commit, "seconds": seconds, "counts": counts,
             "defects": defects, "cases": [asdict(c) for c in cases]}, indent=1) + "\n")
    return 1 if defects else 0


if __name__ == "__main__":
    sys.exit(main())
