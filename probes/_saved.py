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


def other_sets(dataset: str, data_root: str, size: int,
               splits: tuple[str, ...] = ("val", "test")) -> dict:
    """The other MedMNIST sets in the data folder (``risc_tf.experiments.run.OTHER_SETS``
    but ``dataset``): name -> split -> images; a folder with none stops the probe."""
    import risc_tf
    from risc_tf.experiments.run import OTHER_SETS

    others = {}
    for flag in OTHER_SETS:
        if flag == dataset:
            continue
        try:
            others[flag] = {s: risc_tf.load_medmnist(flag, s, root=data_root, size=size)[0]
                            for s in splits}
        except (FileNotFoundError, ValueError):  # not in the folder: not measured
            continue
    if not others:
        raise SystemExit(f"no other MedMNIST set in {data_root} to measure against")
    return others


def parse_runs(description: str, argv: list[str] | None):
    """The command line of a probe over saved runs: ``runs`` (checked, see
    :func:`check_saved_run`), ``--data-root`` (``$RISC_TF_DATA``, else
    ``../shared/data/medmnist``) and ``--output``."""
    import argparse

    from devdata import DATA_ROOT

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("runs", nargs="+", help="finished risc-tf reproduce seed folders")
    parser.add_argument("--data-root", default=os.environ.get("RISC_TF_DATA", str(DATA_ROOT)))
    parser.add_argument("--output", help="write the JSON here too")
    args = parser.parse_args(argv)
    args.runs = [check_saved_run(r) for r in args.runs]
    return args


def refit_trust(run: str | os.PathLike, data_root: str | None, folder: str | os.PathLike,
                **options) -> tuple[Path, dict]:
    """The run's pipeline with its trust refitted by this checkout's ``fit_trust`` (on the
    run's validation and training splits, with the run's seed, as ``risc-tf reproduce``
    does; ``options`` go to ``fit_trust``, e.g. ``ood_layers``), saved in ``folder``; and
    the fit's record."""
    import risc_tf
    from risc_tf.experiments.results import load_results
    from risc_tf.trust import fit_trust

    run = check_saved_run(run)
    cfg = load_results(run / "results.json").config
    root = data_root or cfg["data_root"]
    val, train = (risc_tf.load_medmnist(cfg["dataset"], s, root=root, size=cfg["size"])
                  for s in ("val", "train"))
    pipe, record = fit_trust(risc_tf.RISCPipeline.load(run), *val, *train, seed=cfg["seed"],
                             **options)
    return pipe.save(folder), record
