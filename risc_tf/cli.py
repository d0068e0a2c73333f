"""The ``risc-tf`` command line: wiring only; the work lives in the library modules.

Each subcommand module exposes ``add_parser(subparsers)``, which registers its
parser and sets ``func`` (called with the parsed arguments, returns an exit
code). Parsers import nothing heavy: TensorFlow is loaded by a command's
``func`` only, so ``--help``, ``--version`` and argument errors answer at once,
and TensorFlow's start-up logging is silenced before it can load. Errors in
options, data or files end with exit code 2 and one line; set
``RISC_TF_TRACEBACK=1`` to see the full traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys

#: Modules that register subcommands, in --help order.
COMMAND_MODULES: tuple[str, ...] = (
    "risc_tf.commands.train",
    "risc_tf.commands.evaluate",
    "risc_tf.commands.reproduce",
    "risc_tf.commands.aggregate",
    "risc_tf.commands.tune",
    "risc_tf.commands.explain",
    "risc_tf.commands.predict",
    "risc_tf.commands.merge",
    "risc_tf.commands.export",
)

#: Errors that end a command with exit code 2 and one line (no traceback).
USER_ERRORS = (ValueError, OSError, ImportError)

#: How a library error's remedy reads on the command line (library argument -> option).
CLI_WORDS = {"overwrite=True": "--overwrite"}


def cli_message(err: BaseException) -> str:
    """The first line of a library error, with its remedies in the command line's words and
    file names that are not UTF-8 escaped (``\\xHH``), so that it always prints."""
    from risc_tf.imagefiles import escape_text

    message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    for library, option in CLI_WORDS.items():
        message = message.replace(library, option)
    return escape_text(message)


def build_parser() -> argparse.ArgumentParser:
    from risc_tf._version import __version__

    parser = argparse.ArgumentParser(
        prog="risc-tf",
        description="Rotation-invariant self-supervised classification (RISC) of medical "
                    "images: train, evaluate, reproduce the paper, explain, predict on your "
                    "own scans, export for serving.",
    )
    parser.add_argument("--version", action="version", version=f"risc-tf {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def _load_tensorflow_quietly() -> None:
    """Import TensorFlow without its start-up lines, and silence its Python loggers.

    The start-up lines are muted as for the library (:mod:`risc_tf.tf_logs`:
    unless ``TF_CPP_MIN_LOG_LEVEL`` was set); only the import is muted, so later
    errors still reach the terminal.
    """
    import logging

    from risc_tf.tf_logs import quiet_tensorflow_import

    with quiet_tensorflow_import():
        import tensorflow  # noqa: F401
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # what an output cannot encode is escaped, never fatal
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "needs_tensorflow", True):
            _load_tensorflow_quietly()
        return int(args.func(args) or 0)
    except USER_ERRORS as err:
        if os.environ.get("RISC_TF_TRACEBACK"):  # for bug reports: the full traceback
            raise
        parser.exit(2, f"risc-tf {args.command}: error: {cli_message(err)}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"risc-tf {args.command}: interrupted\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
