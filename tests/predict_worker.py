"""``risc-tf`` in a subprocess with the stub pipeline of tests/predict_stub.py (no TensorFlow).

    python tests/predict_worker.py DELAY predict --pipeline P scans/ --output out.csv ...

DELAY: seconds each pipeline call sleeps (to kill a run in the middle).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from predict_stub import install  # noqa: E402

if __name__ == "__main__":
    install(delay=float(sys.argv[1]))
    from risc_tf.cli import main

    sys.exit(main(sys.argv[2:]))
