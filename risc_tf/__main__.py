"""``python -m risc_tf`` runs the ``risc-tf`` command line."""

import sys

from risc_tf.cli import main

sys.exit(main())
