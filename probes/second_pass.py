"""Does a second look help a circular RotNet? One estimate against two, on validation.

The continuous-angle correction counter-rotates each image by the RotNet's estimate. A
second pass would show the RotNet the corrected image, read the residual it still sees
and add it to the first estimate (the image is then turned once, by the sum, from the
original: still one resample). This probe measures, for a saved circular RotNet, the
angular error of the first estimate and of the composed one over a sweep of the
**validation** split (every ``--step`` degrees, the RotNet's fill), with nothing trained:
if the second pass does not lower the error here, it is not worth a second RotNet pass
at prediction time.

Run from the repository root on a RotNet file (e.g. one ``risc-tf tune`` cached in
``OUTPUT/rotnets/``, or ``models/rotnet.keras`` of a run)::

    python -m probes.second_pass runs/tune-pneumonia-angle/rotnets/rotnet-XXXX.keras \\
        --dataset pneumoniamnist --fill circle --output second_pass.json

``--data-root`` defaults to ``$RISC_TF_DATA``, else ``../shared/data/medmnist``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks._common import machine  # noqa: E402
from devdata import DATA_ROOT  # noqa: E402


def _errors(errors: np.ndarray) -> dict:
    return {"mean_deg": float(errors.mean()), "median_deg": float(np.median(errors)),
            "p95_deg": float(np.percentile(errors, 95)), "worst_deg": float(errors.max())}


def measure(rotnet_path: Path, dataset: str, data_root: str, fill: str, step: float,
            input_size: int = 32, batch_size: int = 256) -> dict:
    """First-pass and composed (two-pass) angular errors of a circular RotNet on validation."""
    import risc_tf
    from risc_tf.angles import angle_difference, angles_every
    from risc_tf.evaluation import evaluation_sets
    from risc_tf.heads import read_angle
    from risc_tf.resample import resample_rotate
    from risc_tf.rotation import rotate

    rotnet = risc_tf.load_model(rotnet_path)
    head = rotnet.layers[-1]
    if head.head != "circular":
        raise SystemExit(f"{rotnet_path}: a {head.head!r} head; the probe is for circular heads")
    angles, sigma = tuple(head.angles), head.sigma
    x, y = risc_tf.load_medmnist(dataset, "val", root=data_root)
    upright = evaluation_sets(x, y, angles, image_size=input_size, fill=fill)["upright"][0]

    def read(images):
        proba = rotnet.predict(images, batch_size=batch_size, verbose=0)
        return read_angle(proba, angles, head="circular", sigma=sigma)[0].numpy()

    first, second = [], []
    sweep = angles_every(step)
    for angle in sweep:
        turned = rotate(upright, angle, fill)
        one = read(turned)
        corrected = resample_rotate(turned, -one, fill)
        residual = read(corrected)
        two = np.mod(one + residual, 360.0)
        first.append(np.abs(angle_difference(np.full(len(one), angle), one)))
        second.append(np.abs(angle_difference(np.full(len(two), angle), two)))
    first, second = np.stack(first), np.stack(second)  # (angles, images)
    diff = first.mean(axis=0) - second.mean(axis=0)  # per image: how much pass 2 gains
    return {"rotnet": str(rotnet_path), "dataset": dataset, "split": "val", "fill": fill,
            "bins": len(angles), "sigma": sigma, "sweep_step": step, "images": len(upright),
            "first_pass": _errors(first), "two_passes": _errors(second),
            "per_angle_mean_deg": {"first_pass": first.mean(axis=1).tolist(),
                                   "two_passes": second.mean(axis=1).tolist()},
            "images_better_with_two": int((diff > 0).sum()),
            "images_worse_with_two": int((diff < 0).sum())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rotnet", type=Path, help="a saved circular RotNet (.keras)")
    parser.add_argument("--dataset", default="pneumoniamnist")
    parser.add_argument("--data-root", default=str(DATA_ROOT))
    parser.add_argument("--fill", default="circle")
    parser.add_argument("--step", type=float, default=10.0, help="sweep step (degrees)")
    parser.add_argument("--output", type=Path, help="write the numbers as JSON here")
    args = parser.parse_args(argv)
    if not args.rotnet.is_file():
        raise SystemExit(f"{args.rotnet}: no such RotNet file")
    row = measure(args.rotnet, args.dataset, args.data_root, args.fill, args.step)
    for key in ("first_pass", "two_passes"):
        e = row[key]
        print(f"{key.replace('_', ' ')}: mean {e['mean_deg']:.2f} deg, median "
              f"{e['median_deg']:.2f}, 95th percentile {e['p95_deg']:.2f}, worst "
              f"{e['worst_deg']:.1f}")
    print(f"images better / worse with two passes: {row['images_better_with_two']} / "
          f"{row['images_worse_with_two']} of {row['images']}")
    if args.output:
        args.output.write_text(json.dumps({"command": " ".join(sys.argv), "machine": machine(),
                                           **row}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
