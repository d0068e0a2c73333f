"""``risc-tf explain``: heatmaps and the paper's figures for a saved RISCPipeline.

Example::

    risc-tf explain --pipeline runs/pneumonia --dataset pneumoniamnist --split test \\
        --root ../shared/data/medmnist --indices 0 1 2 --method gradcam++ --out runs/explain

writes ``heatmaps.npz`` (the selected images, their indices, and the
classifier's and RotNet's heatmaps for their predicted class and rotation) and
the PNG figures chosen with ``--figures`` into ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from risc_tf.data import dataset_info, load_medmnist
from risc_tf.explain import figures
from risc_tf.explain.cam import METHODS, classifier_heatmaps, rotnet_heatmaps
from risc_tf.pipeline import RISCPipeline
from risc_tf.preprocessing import check_images

FIGURES = ("fig4", "fig5", "risc", "layers")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``risc-tf explain``."""
    p = subparsers.add_parser(
        "explain",
        help="heatmaps (Grad-CAM, Grad-CAM++, Score-CAM) and figures for a saved pipeline",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--pipeline", required=True, type=Path, help="folder of a saved RISCPipeline")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", metavar="FLAG", help="MedMNIST dataset, e.g. pneumoniamnist")
    source.add_argument("--npz", type=Path, help="npz file holding an image array")
    p.add_argument("--split", default="test", choices=("train", "val", "test"),
                   help="dataset split (default: test)")
    p.add_argument("--root", type=Path, help="folder holding the MedMNIST npz files")
    p.add_argument("--key", default="images", help="array name in --npz (default: images)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--indices", type=int, nargs="+", metavar="I", help="images to explain")
    which.add_argument("--count", type=int, default=3, help="explain the first COUNT images "
                       "(default: 3)")
    p.add_argument("--method", default="gradcam", choices=METHODS)
    p.add_argument("--layer", help="classifier layer (default: risc_tf.explain.default_layer)")
    p.add_argument("--rotnet-layer", help="RotNet layer (default: risc_tf.explain.default_layer)")
    p.add_argument("--max-n", type=int, help="Score-CAM: keep the MAX_N most varying channels "
                   "(Faster-Score-CAM)")
    p.add_argument("--figures", nargs="*", default=list(FIGURES), choices=FIGURES,
                   help="figures to write (default: all): fig4 = classifier at each rotation, "
                   "fig5 = RotNet at each rotation, risc = before/after correction, layers = "
                   "classifier by layer")
    p.add_argument("--rotate", type=float, nargs="+", metavar="DEG",
                   help="risc figure: rotate the images by these angles, cycled (default: the "
                   "RotNet's angles, cycled; 0 for images that are already rotated)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.set_defaults(func=run)
    return p


def _load_images(args) -> tuple[np.ndarray, np.ndarray | None, dict | None]:
    if args.dataset:
        images, labels = load_medmnist(args.dataset, args.split, root=args.root)
        return images, labels, dataset_info(args.dataset)["label"]
    if not args.npz.is_file():
        raise FileNotFoundError(f"no npz file at {args.npz}")
    with np.load(args.npz, allow_pickle=False) as npz:
        if args.key not in npz.files:
            raise ValueError(f"{args.npz} has no array {args.key!r}; it has {sorted(npz.files)}")
        return npz[args.key], None, None


def run(args: argparse.Namespace) -> int:
    """Run ``risc-tf explain``; returns the exit code."""
    pipe = RISCPipeline.load(args.pipeline)
    images, labels, names = _load_images(args)
    images, _ = check_images(images, name=f"images of {args.npz or args.dataset}")
    indices = np.asarray(args.indices if args.indices else range(min(args.count, len(images))))
    if len(indices) == 0 or indices.min() < -len(images) or indices.max() >= len(images):
        raise ValueError(f"indices must lie in [0, {len(images)}); got {indices.tolist()}")
    x = images[indices]
    y = None if labels is None else labels[indices]
    options = dict(method=args.method, max_n=args.max_n)
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    npz = args.out / "heatmaps.npz"
    np.savez_compressed(
        npz, indices=indices, images=x,
        classifier=classifier_heatmaps(pipe.classifier, x, layer=args.layer, **options),
        rotnet=rotnet_heatmaps(pipe.rotnet, x, layer=args.rotnet_layer, **options),
    )
    written.append(npz)
    if "fig4" in args.figures:
        written.append(args.out / "explain_fig4_classifier.png")
        figures.classifier_rotation_figure(pipe.classifier, x, pipe.angles, names, y,
                                           layer=args.layer, path=written[-1], **options)
    if "fig5" in args.figures:
        written.append(args.out / "explain_fig5_rotnet.png")
        figures.rotnet_rotation_figure(pipe.rotnet, x, layer=args.rotnet_layer,
                                       path=written[-1], **options)
    if "risc" in args.figures:
        cycle = args.rotate or pipe.angles
        rotate_by = [cycle[i % len(cycle)] for i in range(len(x))]
        written.append(args.out / "explain_risc.png")
        figures.risc_figure(pipe, x, rotate_by, names, y, layer=args.layer,
                            rotnet_layer=args.rotnet_layer, path=written[-1], **options)
    if "layers" in args.figures:
        written.append(args.out / "explain_layers.png")
        figures.layer_figure(pipe.classifier, x, path=written[-1], **options)
    for path in written:
        print(path)
    return 0
