"""One folder over many workers: shards of the file list, and merging their predictions.

``risc-tf predict --shard K/N`` runs on the K-th of N **contiguous** blocks
of the file list (the sorted list that :func:`risc_tf.io.find_image_files`
makes; every worker runs the same command, so every worker makes the same
list). ``K`` counts from 0, like a Kubernetes indexed Job's
``JOB_COMPLETION_INDEX`` and a Slurm array declared ``--array=0-(N-1)``.
The list of ``T`` files is cut into ``W = ceil(T / B)`` windows of ``B``
files (``B`` is the batch size: a batch is the readable files of one
window, :func:`risc_tf.scans.predict_records`), and block ``K`` holds the
windows ``K * W // N`` to ``(K + 1) * W // N - 1``: blocks differ in size by at
most ``B`` files, every block is made of the same batches as one run over the
whole list, and putting the blocks' rows end to end gives that run's rows,
value for value, in order.

Each shard writes, beside its predictions file ``PRED``, a record
``PRED.shard.json`` (:func:`shard_record`): the shard, its block, a
fingerprint of the whole file list, a fingerprint of the pipeline (its
configuration and the weights of both models) and the settings that shape the
rows. :func:`merge_predictions` checks the records before writing anything
(every shard present once, the same list, pipeline and settings, each file
complete) and writes the merged file under a temporary name, renamed into
place at the end.

Only the standard library and numpy are imported.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from risc_tf._version import __version__
from risc_tf.imagefiles import display_path
from risc_tf.rowfiles import RowWriter, read_rows, row_format
from risc_tf.staging import Staging, recover
from risc_tf.validation import check_int

__all__ = [
    "RECORD_SUFFIX",
    "Shard",
    "merge_predictions",
    "parse_shard",
    "pipeline_fingerprint",
    "read_shard_record",
    "shard_record",
]

#: Appended to a shard's predictions file name for its record.
RECORD_SUFFIX = ".shard.json"
_FORMAT = "risc_tf.predict-shard"
_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Shard:
    """Block ``index`` (from 0) of ``count`` contiguous blocks of a file list.

    Raises
    ------
    ValueError
        ``count`` < 1, or ``index`` outside ``0 .. count - 1``.

    Examples
    --------
    >>> Shard(1, 3).select(list(range(10)))
    [3, 4, 5]
    >>> Shard(1, 3).select(list(range(10)), unit=2)  # windows of 2: blocks of whole windows
    [2, 3, 4, 5]
    """

    index: int
    count: int

    def __post_init__(self):
        check_int("shard count", self.count, minimum=1)
        if not isinstance(self.index, int) or isinstance(self.index, bool) or \
                not 0 <= self.index < self.count:
            raise ValueError(f"shard index must be an int in 0..{self.count - 1} (shards count "
                             f"from 0) for {self.count} shard(s); got {self.index!r}")

    def bounds(self, total: int, *, unit: int = 1) -> tuple[int, int]:
        """``(start, stop)`` of this block in a list of ``total`` files cut into windows of
        ``unit`` files (blocks start at a multiple of ``unit``)."""
        windows = -(-total // unit)
        return (min(total, self.index * windows // self.count * unit),
                min(total, (self.index + 1) * windows // self.count * unit))

    def select(self, files: Sequence, *, unit: int = 1) -> list:
        """This shard's block of ``files``."""
        start, stop = self.bounds(len(files), unit=unit)
        return list(files[start:stop])

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """A :class:`Shard` from ``"K/N"`` (K from 0 to N - 1).

    Raises
    ------
    ValueError
        Not two integers separated by ``/``, N < 1, K outside 0..N-1; the
        message quotes the text.

    Examples
    --------
    >>> parse_shard("2/8")
    Shard(index=2, count=8)
    """
    parts = str(text).split("/")
    try:
        index, count = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"shard must be K/N with integers, e.g. 0/4; got {text!r}") from None
    if count < 1:
        raise ValueError(f"shard K/N needs N >= 1; got {text!r}")
    if not 0 <= index < count:
        raise ValueError(f"shard K/N needs K in 0..N-1 (shards count from 0: 0/{count} .. "
                         f"{count - 1}/{count}); got {text!r}")
    return Shard(index, count)


def list_fingerprint(files: Sequence[os.PathLike | str]) -> str:
    """SHA-256 of a file list (the paths as given, in order)."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(os.fsencode(path) + b"\0")
    return digest.hexdigest()


#: Settings of a pipeline that a run may change (recorded with the run's settings instead).
_RUN_SETTINGS = ("min_rotation_confidence", "min_class_probability")


def pipeline_fingerprint(pipe) -> str:
    """SHA-256 of a pipeline's configuration (but its review thresholds, which a run may
    change: they are part of the run's settings) and the weights of both its models."""
    config = {k: v for k, v in pipe.get_config().items() if k not in _RUN_SETTINGS}
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for model in (pipe.rotnet, pipe.classifier):
        for weights in model.get_weights():
            digest.update(str(weights.shape).encode() + weights.tobytes())
    return digest.hexdigest()


def record_path(predictions: str | os.PathLike) -> Path:
    """The shard record beside a predictions file."""
    predictions = Path(predictions)
    return predictions.with_name(predictions.name + RECORD_SUFFIX)


def shard_record(shard: Shard, files: Sequence, *, unit: int, pipeline: str,
                 settings: dict, rows: int) -> dict:
    """The record of one shard (written as JSON beside its predictions file)."""
    start, stop = shard.bounds(len(files), unit=unit)
    return {
        "format": _FORMAT, "version": _VERSION, "risc_tf": __version__,
        "shard": {"index": shard.index, "count": shard.count},
        "files": {"total": len(files), "start": start, "stop": stop, "window": unit,
                  "list_sha256": list_fingerprint(files)},
        "rows": rows, "pipeline_sha256": pipeline, "settings": settings,
    }


def read_shard_record(predictions: str | os.PathLike) -> dict:
    """The record of a shard's predictions file.

    Raises
    ------
    FileNotFoundError
        The predictions file or its record is missing (named).
    ValueError
        A record that is not one (the message names the file).
    """
    predictions = Path(predictions)
    if not predictions.is_file():
        raise FileNotFoundError(f"no such predictions file: {display_path(predictions)}")
    path = record_path(predictions)
    if not path.is_file():
        raise FileNotFoundError(
            f"{display_path(predictions)} has no shard record {display_path(path.name)} beside "
            "it: only the predictions of a sharded run (shard=K/N) can be merged")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{display_path(path)} is not a shard record ({err})") from None
    if not isinstance(record, dict) or record.get("format") != _FORMAT:
        raise ValueError(f"{display_path(path)} is not a shard record of risc_tf predict")
    if record.get("version") != _VERSION:
        raise ValueError(f"{display_path(path)} is a shard record of version "
                         f"{record.get('version')!r}; this risc_tf reads version {_VERSION}")
    return record


def _check_same(records: list[tuple[Path, dict]]) -> None:
    first_path, first = records[0]
    for path, record in records[1:]:
        for key, what in (("pipeline_sha256", "pipelines"), ("settings", "settings"),
                          ("files", "file lists")):
            a, b = first[key], record[key]
            if key == "files":
                a, b = (a["total"], a["list_sha256"]), (b["total"], b["list_sha256"])
            if a != b:
                detail = ""
                if key == "settings":
                    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                    detail = ": " + ", ".join(f"{k} {a.get(k)!r} != {b.get(k)!r}" for k in keys)
                raise ValueError(f"{display_path(first_path)} and {display_path(path)} are "
                                 f"shards of different {what}{detail}")
        if record["shard"]["count"] != first["shard"]["count"]:
            raise ValueError(f"{display_path(first_path)} is a shard of "
                             f"{first['shard']['count']}, {display_path(path)} of "
                             f"{record['shard']['count']}")


def merge_predictions(shards: Sequence[str | os.PathLike], output: str | os.PathLike, *,
                      overwrite: bool = False) -> dict:
    """Join the predictions files of the N shards of one run into one file.

    Parameters
    ----------
    shards : sequence of paths
        The ``.csv``/``.json`` predictions files of every shard, in any order,
        each with its ``.shard.json`` record beside it.
    output : str or PathLike
        The merged file (``.csv`` or ``.json``, either from either); the same
        rows as one run over the whole list, in order.
    overwrite : bool, default False
        Replace an existing ``output``.

    Returns
    -------
    dict
        ``files`` (rows written), ``counts`` per status, ``rotated``,
        ``copies`` per kind.

    Raises
    ------
    FileNotFoundError
        A shard file or record is missing; the output's folder is missing.
    FileExistsError
        ``output`` exists and ``overwrite`` is False.
    ValueError
        No shards; shards of different pipelines, settings or file lists;
        the same shard twice (overlapping); a missing shard; a file whose
        rows do not match its record; ``output`` is one of the shards. Every
        check is made before anything is written, and the output is written
        under a temporary name.
    """
    if isinstance(shards, (str, os.PathLike)) or not shards:
        raise ValueError("shards must be a non-empty sequence of predictions files")
    output = Path(output)
    fmt = row_format(output)
    paths = [Path(p) for p in shards]
    if any(os.path.abspath(output) in (os.path.abspath(p), os.path.abspath(record_path(p)))
           for p in paths):
        raise ValueError(f"output {display_path(output)} is one of the shards: choose another "
                         "file")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"the folder {display_path(output.parent)} of output "
                                f"{display_path(output)} does not exist")
    if output.exists() and not overwrite:
        raise FileExistsError(f"{display_path(output)} exists: pass overwrite=True to replace it")
    records = [(p, read_shard_record(p)) for p in paths]
    _check_same(records)
    count = records[0][1]["shard"]["count"]
    by_index: dict[int, Path] = {}
    for path, record in records:
        index = record["shard"]["index"]
        if index in by_index:
            raise ValueError(f"{display_path(by_index[index])} and {display_path(path)} are both "
                             f"shard {index}/{count}: overlapping shards")
        by_index[index] = path
    missing = [i for i in range(count) if i not in by_index]
    if missing:
        total, unit = records[0][1]["files"]["total"], records[0][1]["files"]["window"]
        bounds = [Shard(i, count).bounds(total, unit=unit) for i in missing[:5]]
        blocks = ", ".join(f"{i}/{count} (files {a}-{b - 1})" if b > a else f"{i}/{count} (no "
                           "files)" for i, (a, b) in zip(missing, bounds))
        raise ValueError(f"shard(s) missing: {blocks}{' ...' if len(missing) > 5 else ''}; "
                         f"give the predictions files of all {count} shards")
    for path, record in records:  # every file complete, before writing anything
        rows = sum(1 for _ in read_rows(path))
        if rows != record["rows"]:
            raise ValueError(f"{display_path(path)} has {rows} rows; its record says "
                             f"{record['rows']}: the file was changed or is incomplete")
    summary = {"files": 0, "counts": {"ok": 0, "review": 0, "unreadable": 0}, "rotated": 0,
               "copies": {"exact": 0, "straightened": 0}}
    recover(output.parent)  # what a killed merge (or predict) left there
    with Staging(output.parent) as staging:
        with RowWriter(staging.file(output), format=fmt) as writer:
            for index in range(count):
                for row in read_rows(by_index[index]):
                    writer.add(row)
                    summary["files"] += 1
                    summary["counts"][row["status"]] += 1
                    summary["rotated"] += bool(row["rotated"])
                    if row["copy_kind"] in summary["copies"]:
                        summary["copies"][row["copy_kind"]] += 1
        staging.commit()
    return summary
