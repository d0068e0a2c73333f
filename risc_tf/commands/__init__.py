"""``risc-tf`` subcommands: ``train-rotnet``, ``train-classifier``, ``evaluate``, ``reproduce``.

Each module exposes ``add_parser(subparsers)`` (see :mod:`risc_tf.cli`); the
work itself lives in the library modules they call.
"""
