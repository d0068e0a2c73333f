"""TensorFlow's C++ log lines (start-up, cuInit, graph optimizers) do not reach a user of the
Python API or of the exported SavedModel unless asked for with TF_CPP_MIN_LOG_LEVEL."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CPP_LINE = re.compile(r"^[IWEF]\d{4} |absl::InitializeLog|cuInit|loop_optimizer", re.M)

_USE = """
import os, sys
import numpy as np
from risc_tf import RISCPipeline, build_classifier, build_rotnet  # TensorFlow loads here
import tensorflow as tf
rotnet = build_rotnet((16, 16, 3), backbone="small", hidden_units=(8, 8))
pipe = RISCPipeline(rotnet, build_classifier(2, (16, 16, 3), backbone="small"), mode="soft")
x = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 1), dtype=np.uint8)
pipe.predict(x)
served = tf.saved_model.load(str(pipe.export(sys.argv[1])))
served.signatures["serving_uint8"](images=tf.constant(x))
print("LEVEL", os.environ.get("TF_CPP_MIN_LOG_LEVEL"))
"""


def _run(code, *argv, level=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


@pytest.mark.slow
def test_python_api_and_saved_model_run_without_tensorflow_log_lines(tmp_path):
    done = _run(_USE, str(tmp_path / "serving"))
    assert "LEVEL 3" in done.stdout, done.stderr[-3000:]
    assert not CPP_LINE.search(done.stderr), done.stderr[-3000:]


def test_asking_for_the_lines_is_respected():
    code = ("import os\nimport risc_tf\nfrom risc_tf.tf_logs import ASKED\n"
            "print('LEVEL', os.environ['TF_CPP_MIN_LOG_LEVEL'], ASKED)")
    for level, asked in (("0", True), ("2", True), ("3", False)):
        done = _run(code, level=level)
        assert f"LEVEL {level} {asked}" in done.stdout, done.stderr[-3000:]
