"""Typed JSON records: dataclasses read from and written to JSON, nested records typed.

The machinery of the results schema (:mod:`risc_tf.experiments.results`): a
:class:`Record` reads a parsed JSON object into its dataclass fields (nested records,
``dict[str, Record]`` and ``list[Record]`` included), refusing unknown or missing
fields by name, and writes itself back (:meth:`Record.to_json`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import ClassVar, TypeVar

__all__ = ["SCHEMA_VERSION", "Record", "record"]

#: The results schema version this risc_tf writes.
SCHEMA_VERSION = 2

R = TypeVar("R", bound="Record")


def _convert(hint, value, where: str):
    """``value`` (parsed JSON) as the type ``hint`` describes."""
    if value is None:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, where) if len(inner) == 1 else value
    if isinstance(hint, type) and issubclass(hint, Record):
        return hint.from_json(value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where} must be a JSON object; got {type(value).__name__}")
        return {k: _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"{where} must be a JSON array; got {type(value).__name__}")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _plain(value):
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class Record:
    """A dataclass read from and written to JSON, with nested records typed."""

    #: Fields left out of the JSON when they are None (added after schema version 1).
    OPTIONAL: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_json(cls: type[R], data: dict, where: str = "") -> R:
        """The record of a parsed JSON object; unknown keys are an error naming them."""
        where = where or cls.__name__
        if not isinstance(data, dict):
            raise ValueError(f"{where} must be a JSON object; got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(f"{where} has fields this risc_tf does not know: {unknown} "
                             f"(results schema version {SCHEMA_VERSION}; written by a newer "
                             "risc_tf?)")
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in data
                   and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ValueError(f"{where} lacks the fields {missing}")
        return cls(**{k: _convert(hints[k], v, f"{where}.{k}") for k, v in data.items()})

    def to_json(self) -> dict:
        """A JSON-ready dict (nested records too); optional fields that are None left out."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)
                if not (f.name in self.OPTIONAL and getattr(self, f.name) is None)}


def record(cls):
    """Make ``cls`` (a :class:`Record` subclass) a dataclass: the records' decorator."""
    return dataclasses.dataclass(cls)
