"""Finished ``risc-tf reproduce`` seed folders, loaded for a probe (nothing is trained)."""

from __future__ import annotations

import os
from pathlib import Path


def check_saved_run(run: str | os.PathLike) -> Path:
    """``run`` as a Path if it is a finished ``risc-tf reproduce`` seed folder with its models;
    SystemExit naming it otherwise."""
    run = Path(run)
    if not (run / "results.json").exists() or not (run / "models" / "risc_pipeline").exists():
        raise SystemExit(f"{run}: not a finished reproduce seed folder with its saved models")
    return run


def load_saved_run(run: str | os.PathLike, split: str, data_root: str | None = None):
    """A finished ``risc-tf reproduce`` seed folder: its config, saved pipeline and one split.

    Returns ``(results, pipeline, images, labels)`` (results a
    :class:`~risc_tf.experiments.results.RunResults`); ``data_root`` defaults to the one the
    run recorded; a folder that is not a saved run stops it (:func:`check_saved_run`).
    """
    import risc_tf
    from risc_tf.experiments.results import load_results

    run = check_saved_run(run)
    results = load_results(run / "results.json")
    cfg = results.config
    pipe = risc_tf.RISCPipeline.load(run / "models" / "risc_pipeline")
    x, y = risc_tf.load_medmnist(cfg["dataset"], split, root=data_root or cfg["data_root"],
                                 size=cfg["size"])
    return results, pipe, x, y
