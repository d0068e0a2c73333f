"""The ``risc-tf`` command line: wiring only; the work lives in the library modules.

Each subcommand module exposes ``add_parser(subparsers)``, which registers its
parser and sets ``func`` (called with the parsed arguments, returns an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

#: Modules that register subcommands, in --help order.
COMMAND_MODULES: tuple[str, ...] = (
    "risc_tf.commands.train",
    "risc_tf.commands.evaluate",
    "risc_tf.commands.reproduce",
    "risc_tf.explain.command",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="risc-tf",
        description="Rotation-invariant self-supervised classification (RISC) of MedMNIST images.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, PermissionError) as err:
        parser.exit(2, f"risc-tf {args.command}: error: {err}\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
