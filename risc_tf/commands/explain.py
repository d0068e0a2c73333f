"""``risc-tf explain``: heatmaps and the paper's figures for trained models.

Example::

    risc-tf explain --pipeline runs/pneumonia --dataset pneumoniamnist --split test \\
        --data-root ../shared/data/medmnist --indices 0 1 2 --method gradcam++ \\
        --output runs/explain

writes ``heatmaps.npz`` (the selected images, their indices, and the
classifier's and RotNet's heatmaps for their predicted class and rotation) and
the PNG figures chosen with ``--figures`` into ``--output``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from risc_tf.commands._common import (
    add_data_options,
    add_model_options,
    add_output_options,
    data_errors,
    non_negative_int,
    pipeline_from_args,
    positive_int,
)
from risc_tf.explain.methods import METHODS

__all__ = ["FIGURES", "add_parser"]

FIGURES = ("fig4", "fig5", "risc", "layers")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``risc-tf explain``."""
    p = subparsers.add_parser(
        "explain",
        help="heatmaps (Grad-CAM, Grad-CAM++, Score-CAM) and figures for trained models",
        description="Heatmaps and the paper's figures for trained models: writes "
                    "heatmaps.npz (the selected images, their indices, and the classifier's and "
                    "RotNet's heatmaps for their predicted class and rotation) and the PNG "
                    "figures chosen with --figures into --output.",
    )
    add_model_options(p)
    source = p.add_argument_group("images (one of)")
    source.add_argument("--npz", type=Path, help="npz file holding an image array")
    source.add_argument("--key", default="images", help="array name in --npz (default: images)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"),
                   help="dataset split (default: test)")
    add_data_options(p, angles=False, required=False, subset=False)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--indices", type=non_negative_int, nargs="+", metavar="I",
                       help="images to explain")
    which.add_argument("--count", type=positive_int, default=3,
                       help="explain the first COUNT images (default: 3)")
    p.add_argument("--method", default="gradcam", choices=METHODS)
    p.add_argument("--layer", help="classifier layer (default: risc_tf.explain.default_layer)")
    p.add_argument("--rotnet-layer", help="RotNet layer (default: risc_tf.explain.default_layer)")
    p.add_argument("--max-n", type=positive_int,
                   help="Score-CAM: keep the MAX_N most varying channels (Faster-Score-CAM)")
    p.add_argument("--figures", nargs="*", default=list(FIGURES), choices=FIGURES,
                   help="figures to write (default: all): fig4 = classifier at each rotation, "
                   "fig5 = RotNet at each rotation, risc = before/after correction, layers = "
                   "classifier by layer")
    p.add_argument("--rotate", type=float, nargs="+", metavar="DEG",
                   help="risc figure: rotate the images by these angles, cycled (default: the "
                   "RotNet's angles, cycled; 0 for images that are already rotated)")
    add_output_options(p, "output folder")
    p.set_defaults(func=run)
    return p


def _images(args):
    import numpy as np

    from risc_tf.catalog import label_names
    from risc_tf.data import load_medmnist

    if args.dataset:
        with data_errors():
            images, labels = load_medmnist(args.dataset, args.split, args.data_root, args.size,
                                           download=args.download, verify=args.verify,
                                           timeout=args.download_timeout)
        return images, labels, label_names(args.dataset)
    if not args.npz.is_file():
        raise FileNotFoundError(f"no npz file at {args.npz}")
    with np.load(args.npz, allow_pickle=False) as npz:
        if args.key not in npz.files:
            raise ValueError(f"{args.npz} has no array {args.key!r}; it has {sorted(npz.files)}")
        return npz[args.key], None, None


def run(args: argparse.Namespace) -> int:
    """Run ``risc-tf explain``; returns the exit code."""
    import numpy as np

    from risc_tf.atomic import atomic_output
    from risc_tf.experiments.rundir import ensure_output_dir
    from risc_tf.explain import panels
    from risc_tf.explain.cam import classifier_heatmaps, rotnet_heatmaps
    from risc_tf.preprocessing import check_images

    if bool(args.dataset) == bool(args.npz):
        raise ValueError("give the images with --dataset FLAG or --npz FILE (one of them)")
    output = Path(args.output)
    npz = output / "heatmaps.npz"
    if npz.exists() and not args.overwrite:
        raise FileExistsError(f"{npz} exists; pass --overwrite to replace it")
    pipe = pipeline_from_args(args)
    images, labels, names = _images(args)
    images, _ = check_images(images, name=f"images of {args.npz or args.dataset}")
    indices = np.asarray(args.indices if args.indices else range(min(args.count, len(images))))
    if indices.max() >= len(images):
        raise ValueError(f"indices must lie in [0, {len(images)}); got {indices.tolist()}")
    x = images[indices]
    y = None if labels is None else labels[indices]
    options = dict(method=args.method, max_n=args.max_n, fill=pipe.fill)
    ensure_output_dir(output)
    with atomic_output(npz, keep_suffix=True) as part:
        np.savez_compressed(
            part, indices=indices, images=x,
            classifier=classifier_heatmaps(pipe.classifier, x, layer=args.layer, **options),
            rotnet=rotnet_heatmaps(pipe.rotnet, x, layer=args.rotnet_layer, **options),
        )
    written = [npz]
    if "fig4" in args.figures:
        written.append(output / "explain_fig4_classifier.png")
        panels.classifier_rotation_figure(pipe.classifier, x, angles=pipe.angles,
                                          class_names=names, labels=y, layer=args.layer,
                                          path=written[-1], **options)
    if "fig5" in args.figures:
        written.append(output / "explain_fig5_rotnet.png")
        panels.rotnet_rotation_figure(pipe.rotnet, x, layer=args.rotnet_layer,
                                      path=written[-1], **options)
    if "risc" in args.figures:
        cycle = args.rotate or pipe.angles
        rotate_by = [cycle[i % len(cycle)] for i in range(len(x))]
        written.append(output / "explain_risc.png")
        panels.risc_figure(pipe, x, rotate_by=rotate_by, class_names=names, labels=y,
                           layer=args.layer, rotnet_layer=args.rotnet_layer, path=written[-1],
                           method=args.method, max_n=args.max_n)
    if "layers" in args.figures:
        written.append(output / "explain_layers.png")
        panels.layer_figure(pipe.classifier, x, path=written[-1], **options)
    for path in written:
        print(path)
    return 0
