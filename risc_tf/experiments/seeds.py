"""Several seeds of one experiment, resumable, with the aggregate report at the end.

``reproduce_seeds(config, seeds)`` runs :func:`risc_tf.reproduce` once per seed
into ``OUTPUT/seed-<s>/`` and then :func:`risc_tf.experiments.aggregation.aggregate`
over them into ``OUTPUT`` itself. A seed whose folder holds a finished run of
the same settings is not run again, so repeating an interrupted command
resumes it; an unfinished seed folder is started again. ``OUTPUT/experiment.json``
marks the folder as a multi-seed experiment and records its settings: a folder
holding another experiment, or other files, is never written into.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from risc_tf.atomic import write_text
from risc_tf.data import load_splits
from risc_tf.experiments.config import PER_RUN, ReproduceConfig
from risc_tf.experiments.rundir import ensure_output_dir, now_iso, read_run
from risc_tf.validation import check_seed

__all__ = ["EXPERIMENT_FILE", "check_seeds", "reproduce_seeds", "seed_folder"]

EXPERIMENT_FILE = "experiment.json"


def check_seeds(seeds: Sequence[int]) -> tuple[int, ...]:
    """Distinct non-negative integer seeds (at least one)."""
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not seeds:
        raise ValueError(f"seeds must be a non-empty sequence of ints; got {seeds!r}")
    out = tuple(check_seed(s) for s in seeds)
    if len(set(out)) != len(out):
        raise ValueError(f"seeds must be distinct; got {list(out)}")
    return out


def seed_folder(output: str | Path, seed: int) -> Path:
    return Path(output) / f"seed-{seed}"


def _settings(config: ReproduceConfig) -> dict:
    return {k: v for k, v in config.to_json().items() if k not in PER_RUN}


def _claim(output: Path, config: ReproduceConfig, seeds: tuple[int, ...], overwrite: bool) -> None:
    marker = output / EXPERIMENT_FILE
    settings = _settings(config)
    if marker.is_file():
        old = json.loads(marker.read_text())
        if old.get("settings") != settings and not overwrite:
            changed = sorted(k for k in set(old.get("settings", {})) | set(settings)
                             if old.get("settings", {}).get(k) != settings.get(k))
            raise FileExistsError(
                f"{output} holds an experiment with other settings (differences: "
                f"{', '.join(changed)}); choose another folder or pass overwrite=True"
            )
    elif output.exists() and any(output.iterdir()):
        raise FileExistsError(
            f"output folder {output} is not empty and holds no {EXPERIMENT_FILE}: it is not a "
            "risc-tf experiment folder, so it is left alone; choose a new or empty folder"
        )
    ensure_output_dir(output)
    record = {"kind": "seeds", "seeds": list(seeds), "settings": settings, "updated": now_iso()}
    write_text(marker, json.dumps(record, indent=2))


def reproduce_seeds(config: ReproduceConfig, seeds: Sequence[int]) -> dict:
    """Run :func:`risc_tf.reproduce` for each seed, then aggregate; return the aggregate.

    Parameters
    ----------
    config : ReproduceConfig
        The experiment; its ``output`` becomes the experiment folder and its
        ``seed`` is replaced by each of ``seeds``.
    seeds : sequence of int
        Distinct seeds, e.g. ``(0, 1, 2)``.

    Returns
    -------
    dict
        The aggregate (the content of ``OUTPUT/results.json``).

    Raises
    ------
    ValueError
        Bad seeds or settings.
    FileExistsError
        ``config.output`` holds something other than this experiment (unless
        ``config.overwrite``, which restarts every seed).
    FileNotFoundError
        The dataset's file is not in ``config.data_root`` (and ``config.download``
        is off); checked before the experiment folder is made, so nothing is written.
    """
    from risc_tf.experiments.aggregation import aggregate
    from risc_tf.experiments.run import reproduce

    seeds = check_seeds(seeds)
    config = config.validate()
    output = Path(config.output)
    # Data first, as for one run: a missing file leaves the experiment folder unclaimed.
    load_splits(config.dataset, config.data_root, config.size, splits=("test",),
                download=config.download, verify=config.verify, timeout=config.download_timeout)
    _claim(output, config, seeds, config.overwrite)
    folders = []
    for seed in seeds:
        folder = seed_folder(output, seed)
        run = read_run(folder)
        finished = run is not None and run.get("status") == "complete" and \
            (folder / "results.json").is_file()
        if finished and not config.overwrite:
            if config.verbose:
                print(f"[risc-tf reproduce] seed {seed}: finished run in {folder}, kept",
                      flush=True)
        else:
            if config.verbose:
                print(f"[risc-tf reproduce] seed {seed} -> {folder}", flush=True)
            reproduce(dataclasses.replace(config, seed=seed, output=folder,
                                          overwrite=run is not None or config.overwrite))
        folders.append(folder)
    return aggregate(folders, output, overwrite=True)
