"""Make the figures of docs/explain.md from real PneumoniaMNIST and RetinaMNIST models.

For each dataset a RISCPipeline is loaded from ``PIPELINES/<flag>_<backbone>``
or, when absent, trained there with a small budget (RotNet on the training
images without labels, then the classifier on upright training images, early
stopping on the validation split) and saved. Then the test split is scored and
the figures are written to ``--output``::

    python examples/explain_figures.py --data-root ../shared/data/medmnist \\
        --pipelines runs/explain_models --output docs/figures

writes ``explain_<name>_{fig4,fig5,risc,layers}.png`` and prints the scores
quoted in the docs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np

from risc_tf import (
    RISCPipeline,
    build_classifier,
    build_rotnet,
    dataset_info,
    load_medmnist,
    load_model,
    load_splits,
    rotated_test_arrays,
    save_model,
    train_classifier,
    train_rotnet,
)
from risc_tf.explain import (
    classifier_rotation_figure,
    layer_figure,
    risc_figure,
    rotnet_rotation_figure,
)
from risc_tf.explain.cam import predict_proba

DATASETS = {"pneumoniamnist": "pneumonia", "retinamnist": "retina"}


def get_pipeline(flag: str, args) -> tuple[RISCPipeline, dict]:
    path = args.pipelines / f"{flag}_{args.backbone}"
    if (path / "risc_pipeline.json").is_file():
        print(f"{flag}: loading {path}")
        return RISCPipeline.load(path), {"trained": False}
    data = load_splits(flag, args.data_root, subset=args.subset, splits=("train", "val"))
    (x, y), (xv, yv) = data["train"], data["val"]
    names = list(dataset_info(flag)["label"].values())
    start = time.time()
    # the paper's angle set: quarter turns (the figures rotate by 90, 180, 270)
    rotnet = build_rotnet((32, 32, 3), backbone=args.backbone)
    train_rotnet(rotnet, x, xv, epochs=args.rotnet_epochs, patience=None, verbose=2)
    classifier = build_classifier(len(names), (32, 32, 3), backbone=args.backbone)
    train_classifier(classifier, x, y, xv, yv, epochs=args.classifier_epochs, patience=None,
                     verbose=2)
    pipe = RISCPipeline(rotnet, classifier, class_names=names, metadata={"dataset": flag})
    pipe.save(path, overwrite=True)
    return pipe, {"trained": True, "train_seconds": round(time.time() - start)}


def resnet50_classifier(flag: str, args) -> tuple[keras.Model, dict]:
    """A ResNet50 classifier (the paper's backbone), for the layer comparison only."""
    path = args.pipelines / f"{flag}_resnet50_classifier.keras"
    if path.is_file():
        print(f"{flag}: loading {path}")
        return load_model(path), {"trained": False}
    data = load_splits(flag, args.data_root, subset=args.subset, splits=("train", "val"))
    (x, y), (xv, yv) = data["train"], data["val"]
    start = time.time()
    model = build_classifier(len(dataset_info(flag)["label"]), (32, 32, 3), backbone="resnet50")
    train_classifier(model, x, y, xv, yv, epochs=args.resnet50_epochs, patience=None, verbose=2)
    save_model(model, path)
    return model, {"trained": True, "train_seconds": round(time.time() - start)}


def pick(labels: np.ndarray, count: int) -> np.ndarray:
    """The first test image of each class, in class order, then the next ones, up to count."""
    firsts = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)]
    rest = [i for i in range(len(labels)) if i not in firsts]
    return np.asarray((firsts + rest)[:count])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", type=Path, default=None,
                   help="folder holding the MedMNIST .npz files (default: $RISC_TF_DATA)")
    p.add_argument("--pipelines", type=Path, default=Path("runs/explain_models"),
                   help="folder of saved pipelines (trained there when missing)")
    p.add_argument("--output", type=Path, default=Path("docs/figures"),
                   help="folder of the PNG figures")
    p.add_argument("--subset", type=int, default=None,
                   help="train on at most N images of each split (quick runs)")
    p.add_argument("--backbone", default="small")
    p.add_argument("--rotnet-epochs", type=int, default=4)
    p.add_argument("--classifier-epochs", type=int, default=4)
    p.add_argument("--method", default="gradcam")
    p.add_argument("--resnet50-epochs", type=int, default=3,
                   help="epochs of the RetinaMNIST ResNet50 classifier of the layer comparison "
                   "(0: skip it)")
    args = p.parse_args(argv)

    report = {}
    for flag, name in DATASETS.items():
        pipe, info = get_pipeline(flag, args)
        x, y = load_medmnist(flag, "test", root=args.data_root)
        names = dataset_info(flag)["label"]
        xr, yr, ar = rotated_test_arrays(x, y, pipe.angles, image_size=pipe.image_size, seed=0)
        info.update(
            backbone=args.backbone,
            rotnet_accuracy=float(np.mean(pipe.predict_rotation(xr) == ar)),
            upright_accuracy=float(np.mean(predict_proba(pipe.classifier, x).argmax(1) == y)),
            rotated_accuracy=float(np.mean(predict_proba(pipe.classifier, xr).argmax(1) == yr)),
            risc_accuracy=pipe.score(xr, yr),
        )
        report[flag] = info
        print(flag, json.dumps(info))
        shown = pick(y, 2)
        out = args.output
        options = dict(method=args.method)
        tag = f"{dataset_info(flag)['python_class']} test images {shown.tolist()}"
        classifier_rotation_figure(
            pipe.classifier, x[shown], angles=pipe.angles, class_names=names, labels=y[shown],
            title=f"{tag}: classifier ({args.backbone}) {args.method}",
            path=out / f"explain_{name}_fig4.png", **options)
        rotnet_rotation_figure(
            pipe.rotnet, x[shown], title=f"{tag}: RotNet ({args.backbone}) {args.method}",
            path=out / f"explain_{name}_fig5.png", **options)
        three = pick(y, 3)
        risc_figure(pipe, x[three], rotate_by=[90, 180, 270][: len(three)], class_names=names,
                    labels=y[three], path=out / f"explain_{name}_risc.png", **options)
        layer_figure(pipe.classifier, x[shown], path=out / f"explain_{name}_layers.png",
                     title=f"{tag}: classifier ({args.backbone}) {args.method} by layer",
                     **options)
    if args.resnet50_epochs:
        flag = "retinamnist"
        model, info = resnet50_classifier(flag, args)
        x, y = load_medmnist(flag, "test", root=args.data_root)
        info.update(backbone="resnet50",
                    upright_accuracy=float(np.mean(predict_proba(model, x).argmax(1) == y)))
        report[f"{flag}_resnet50_classifier"] = info
        shown = pick(y, 2)
        layer_figure(model, x[shown], method=args.method,
                     title=f"RetinaMNIST test images {shown.tolist()}: classifier (resnet50) "
                     f"{args.method} by layer",
                     path=args.output / "explain_retina_resnet50_layers.png")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
