"""A saved run's pipeline with its trust refitted by this checkout, saved apart.

``fit_trust`` (temperatures, review thresholds, the detector of unlike images) run again on
a finished ``risc-tf reproduce`` seed folder's validation and training splits, with the
run's seed, as ``risc-tf reproduce`` runs it, and the pipeline saved in ``--output``
(nothing is written into the run). ``--ood-layers`` picks the layers the detector reads
(``stages``, the default, or ``penultimate``): e.g. the two pipelines whose ``risc-tf
predict`` speed ``benchmarks.bench_predict_throughput`` compares, the same models with
either detector::

    python -m probes.refit_trust runs/final/NAME/seed-0 --ood-layers penultimate \\
        --output ../penultimate-pipeline
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from probes._saved import refit_trust  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a finished risc-tf reproduce seed folder")
    parser.add_argument("--ood-layers", choices=("stages", "penultimate"), default="stages")
    parser.add_argument("--data-root", help="default: the folder the run recorded")
    parser.add_argument("--output", required=True, help="where to save the pipeline")
    args = parser.parse_args(argv)
    folder, record = refit_trust(args.run, args.data_root, args.output,
                                 ood_layers=args.ood_layers)
    print(json.dumps({"pipeline": str(folder), "trust": record}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
