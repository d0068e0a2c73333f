"""A user's mixed folder through ``risc-tf predict`` with a saved pipeline's default settings.

Writes a folder of PNG files made from the pipeline's dataset (test split) and another
MedMNIST set, then runs ``risc-tf predict`` on it with the pipeline's own thresholds
(nothing passed on the command line) and counts, per kind of file, the statuses, the files
found rotated and the upright copies:

- ``upright``: test images as they are;
- ``quarter turn``: test images turned by 90, 180 or 270 degrees (each should be found
  rotated and get an exact upright copy);
- ``off-grid tilt``: test images turned by 30, 45, 135 or 315 degrees (none should be
  ``ok``: no exact copy undoes them);
- ``other modality``: test images of another MedMNIST set (none should be ``ok``: they
  are unlike the training images);
- ``corrupt``: truncated PNGs and a text file named ``.png`` (each ``unreadable``).

Run from the repository root on a finished reproduce run (its saved pipeline)::

    python -m probes.mixed_folder runs/final/NAME/seed-0 --other retinamnist \\
        --output docs/results/probes/mixed_folder_NAME.json

``--refit-trust`` first refits the pipeline's temperatures, thresholds and detector of
unlike images with this checkout's ``fit_trust`` (on the run's validation and training
splits, with the run's seed, as ``risc-tf reproduce`` does), for a run saved by an
older risc_tf.

``--data-root`` defaults to ``$RISC_TF_DATA``, else ``../shared/data/medmnist``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import risc_tf  # noqa: E402
from devdata import DATA_ROOT  # noqa: E402
from probes._output import emit  # noqa: E402
from probes._saved import check_saved_run, refit_trust  # noqa: E402
from risc_tf.experiments.results import load_results  # noqa: E402
from risc_tf.heads import check_max_tilt  # noqa: E402
from risc_tf.pipeline_files import CONFIG_FILE, RUN_PIPELINE  # noqa: E402
from risc_tf.rowfiles import read_rows  # noqa: E402

QUARTER = (90.0, 180.0, 270.0)
TILTS = (30.0, 45.0, 135.0, 315.0)


def _turned(image: np.ndarray, angle: float) -> np.ndarray:
    """``image`` (uint8) turned by ``angle`` degrees with risc_tf's rotation (black fill)."""
    x = image.astype(np.float32)[None, ..., None] / 255.0 if image.ndim == 2 else \
        image.astype(np.float32)[None] / 255.0
    out = risc_tf.rotate(x, angle).numpy()[0]
    out = np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)
    return out[..., 0] if image.ndim == 2 else out


def write_folder(folder: Path, dataset: str, other: str, root, *, per_kind: int,
                 seed: int) -> dict[str, str]:
    """The mixed folder; returns file name -> kind."""
    rng = np.random.default_rng(seed)
    x, _ = risc_tf.load_medmnist(dataset, "test", root=root)
    xo, _ = risc_tf.load_medmnist(other, "test", root=root)
    pick = rng.choice(len(x), 3 * per_kind, replace=False)
    kinds = {}

    def save(name, image, kind):
        Image.fromarray(image).save(folder / name)
        kinds[name] = kind

    for i, j in enumerate(pick[:per_kind]):
        save(f"upright_{i:03d}.png", x[j], "upright")
    for i, j in enumerate(pick[per_kind:2 * per_kind]):
        a = QUARTER[i % len(QUARTER)]
        save(f"turned_{i:03d}_{a:g}.png", _turned(x[j], a), "quarter turn")
    for i, j in enumerate(pick[2 * per_kind:]):
        a = TILTS[i % len(TILTS)]
        save(f"tilted_{i:03d}_{a:g}.png", _turned(x[j], a), "off-grid tilt")
    for i, j in enumerate(rng.choice(len(xo), per_kind, replace=False)):
        save(f"other_{i:03d}.png", xo[j], "other modality")
    whole = (folder / "upright_000.png").read_bytes()
    for i, cut in enumerate((len(whole) // 3, len(whole) // 2)):
        (folder / f"corrupt_{i}.png").write_bytes(whole[:cut])
        kinds[f"corrupt_{i}.png"] = "corrupt"
    (folder / "corrupt_text.png").write_text("not an image")
    kinds["corrupt_text.png"] = "corrupt"
    return kinds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a finished risc-tf reproduce seed folder")
    parser.add_argument("--other", default="retinamnist", help="another MedMNIST set")
    parser.add_argument("--per-kind", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", default=str(DATA_ROOT))
    parser.add_argument("--refit-trust", action="store_true",
                        help="refit the pipeline's trust with this checkout's fit_trust first")
    parser.add_argument("--output", help="write the counts as JSON here")
    args = parser.parse_args(argv)
    run = check_saved_run(args.run)
    dataset = load_results(run / "results.json").config["dataset"]
    pipeline, record = run / RUN_PIPELINE, None
    with tempfile.TemporaryDirectory() as tmp:
        if args.refit_trust:
            pipeline, record = refit_trust(run, args.data_root, Path(tmp) / "pipeline")
        folder, copies = Path(tmp) / "scans", Path(tmp) / "upright"
        folder.mkdir()
        kinds = write_folder(folder, dataset, args.other, args.data_root,
                             per_kind=args.per_kind, seed=args.seed)
        predictions = Path(tmp) / "predictions.csv"
        done = subprocess.run([sys.executable, "-m", "risc_tf", "predict", str(folder),
                               "--pipeline", str(pipeline), "--output", str(predictions),
                               "--fix-orientation", str(copies), "--quiet"],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"risc-tf predict failed: {done.stderr.strip()[-2000:]}")
        rows = list(read_rows(predictions))
        config = json.loads((pipeline / CONFIG_FILE).read_text())
    table: dict[str, Counter] = {}
    for row in rows:
        kind = kinds[Path(row["path"]).name]
        count = table.setdefault(kind, Counter())
        count["files"] += 1
        count[f"status {row['status']}"] += 1
        count["found rotated"] += bool(row.get("rotated"))
        count[f"copy {row.get('copy_kind') or 'none'}"] += 1
        for code in filter(None, (row.get("reason_codes") or "").split(";")):
            count[f"reason {code}"] += 1
    result = {"run": str(args.run), "dataset": dataset, "other": args.other,
              "trust_refitted": record,
              "per_kind": args.per_kind, "seed": args.seed,
              "max_tilt": check_max_tilt(config.get("max_tilt"), config["angles"],
                                         config.get("head") or "bins"),
              "counts": {k: dict(v) for k, v in table.items()}}
    quarter = table.get("quarter turn", Counter())
    result["goals"] = {
        "no off-grid tilt ok": table.get("off-grid tilt", Counter())["status ok"] == 0,
        "no other modality ok": table.get("other modality", Counter())["status ok"] == 0,
        "every quarter turn found and fixed":
            quarter["found rotated"] == quarter["files"] == quarter["copy exact"],
        "every corrupt file unreadable":
            table.get("corrupt", Counter())["status unreadable"] == 3,
    }
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
