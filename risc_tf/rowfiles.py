"""The predictions file of ``risc-tf predict``: its columns, written row by row, read back.

One row per file, the columns of :data:`ROW_FIELDS` (described in
docs/deploy.md). A ``.csv`` file has a header line and one line per row
(empty cells for missing values, ``True``/``False`` for ``rotated``); a
``.json`` file is a list of objects with the same keys (``null`` for missing
values), one object per line. Both are written as the rows come
(:class:`RowWriter`), so memory does not grow with the number of files, and
read back with their types by :func:`read_rows`. Every text is UTF-8: bytes
of file names that are not UTF-8 are written as ``\\xHH``
(:func:`risc_tf.imagefiles.escape_text`).

Only the standard library (and numpy, through :mod:`risc_tf.decisions`) is imported.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from risc_tf.decisions import STATUSES
from risc_tf.imagefiles import escape_text

__all__ = ["FIELD_TYPES", "ROW_FIELDS", "RowWriter", "read_rows", "row_format"]

#: Columns of the predictions file, in order, with the type of their values.
FIELD_TYPES: dict[str, type] = {
    "path": str,
    "status": str,
    "reason": str,
    "reason_codes": str,
    "class_index": int,
    "class_name": str,
    "class_probability": float,
    "rotation": float,
    "rotation_confidence": float,
    "estimated_rotation": float,
    "rotated": bool,
    "upright_copy": str,
    "copy_kind": str,
}
ROW_FIELDS: tuple[str, ...] = tuple(FIELD_TYPES)
_FORMATS = {".csv": "csv", ".json": "json"}


def row_format(path: str | os.PathLike) -> str:
    """``"csv"`` or ``"json"`` from a file's suffix.

    Raises
    ------
    ValueError
        Another suffix (the message names the file).
    """
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMATS:
        raise ValueError(f"{escape_text(os.fspath(path))} must end in .csv or .json")
    return _FORMATS[suffix]


def _clean(row: Mapping) -> dict:
    out = {}
    for key in ROW_FIELDS:
        value = row.get(key)
        out[key] = escape_text(value) if isinstance(value, str) else value
    return out


class RowWriter:
    """Write rows to a ``.csv`` or ``.json`` file as they come.

    Parameters
    ----------
    path : str or PathLike
        The file to write (created or truncated).
    format : {"csv", "json"}
        See :func:`row_format`.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "rows.csv"
    >>> with RowWriter(path, format="csv") as rows:
    ...     rows.add({"path": "a.png", "status": "ok", "rotated": False})
    >>> [row["rotated"] for row in read_rows(path)]
    [False]
    """

    def __init__(self, path: str | os.PathLike, *, format: str):
        if format not in ("csv", "json"):
            raise ValueError(f"format must be 'csv' or 'json'; got {format!r}")
        self.format, self.count = format, 0
        self.file = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115
        if format == "csv":
            self.csv = csv.DictWriter(self.file, fieldnames=ROW_FIELDS)
            self.csv.writeheader()
        else:
            self.file.write("[")

    def add(self, row: Mapping) -> None:
        """Write one row (keys of :data:`ROW_FIELDS`; missing keys are empty)."""
        row = _clean(row)
        if self.format == "csv":
            self.csv.writerow({k: "" if v is None else v for k, v in row.items()})
        else:
            self.file.write(("," if self.count else "") + "\n" + json.dumps(row,
                                                                            ensure_ascii=False))
        self.count += 1

    def close(self) -> None:
        """Finish the file (flushed to disk)."""
        if self.file.closed:
            return
        if self.format == "json":
            self.file.write("\n]\n")
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _checked(row: dict) -> dict:
    if row["status"] not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}; got {row['status']!r}")
    return row


def _typed(key: str, text: str):
    if text == "":
        return None
    kind = FIELD_TYPES.get(key, str)
    if kind is bool:
        if text not in ("True", "False"):
            raise ValueError(f"{key} must be True or False; got {text!r}")
        return text == "True"
    return kind(text)


def read_rows(path: str | os.PathLike) -> Iterator[dict]:
    """The rows of a predictions file, with their types (CSV cells converted back).

    Raises
    ------
    ValueError
        Not a ``.csv``/``.json`` predictions file: other columns, a value of
        the wrong type, invalid JSON (the message names the file).
    """
    path = Path(path)
    where = escape_text(os.fspath(path))
    if row_format(path) == "json":
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{where} is not a JSON predictions file ({err})") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError(f"{where} is not a JSON predictions file (a list of objects)")
        for row in rows:
            if set(row) != set(ROW_FIELDS):
                raise ValueError(f"{where}: a row has the keys {sorted(row)}, not "
                                 f"{list(ROW_FIELDS)}")
            try:
                yield _checked({k: row[k] for k in ROW_FIELDS})
            except ValueError as err:
                raise ValueError(f"{where}: {err}") from None
        return
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != ROW_FIELDS:
            raise ValueError(f"{where} does not have the columns of a predictions file "
                             f"({','.join(ROW_FIELDS)}); got {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            try:
                yield _checked({k: _typed(k, row[k] or "") for k in ROW_FIELDS})
            except (TypeError, ValueError) as err:
                raise ValueError(f"{where}, line {line}: {err}") from None
