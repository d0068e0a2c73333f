"""``risc-tf`` subcommands: train-rotnet, train-classifier, evaluate, reproduce, aggregate,
tune, explain, predict, export.

Each module exposes ``add_parser(subparsers)`` (see :mod:`risc_tf.cli`); the
work itself lives in the library modules they call. :mod:`._common` holds the
options they share.
"""
