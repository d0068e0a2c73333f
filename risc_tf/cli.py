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

import os

# Before anything imports TensorFlow: no C++ start-up log lines in any command's output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import importlib  # noqa: E402
import sys  # noqa: E402

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


@contextlib.contextmanager
def _stderr_to_devnull():
    """Point file descriptor 2 at /dev/null (C++ code writes there, not to sys.stderr)."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _load_tensorflow_quietly() -> None:
    """Import TensorFlow without its start-up lines, and silence its Python loggers.

    TensorFlow 2.19 and later write their start-up messages (oneDNN, CUDA, CPU
    features) from C++ before its logging is configured, ignoring
    ``TF_CPP_MIN_LOG_LEVEL`` (tensorflow/tensorflow#100442); only the import is
    muted, so later errors still reach the terminal.
    """
    import logging

    if "tensorflow" not in sys.modules:
        with _stderr_to_devnull():
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
        from risc_tf.imagefiles import escape_text  # file names that are not UTF-8: \xHH

        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        message = escape_text(message)
        parser.exit(2, f"risc-tf {args.command}: error: {message}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"risc-tf {args.command}: interrupted\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
