"""risc_tf under tf.distribute, on this CPU machine: two logical CPU devices, two worker processes.

The bodies run in fresh processes (tests/distribute_worker.py): logical devices
are fixed at TensorFlow's start, and a process holds one MirroredStrategy only.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

#: Every test here trains in fresh TensorFlow processes (tens of seconds).
pytestmark = pytest.mark.slow

WORKER = Path(__file__).resolve().parent / "distribute_worker.py"
ROOT = WORKER.parents[1]


def _env(**extra) -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), **extra}


def _result(stdout: str, stderr: str, code: int) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert code == 0 and lines, stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.fixture(scope="module")
def mirrored():
    done = subprocess.run([sys.executable, str(WORKER), "mirrored"], capture_output=True,
                          text=True, env=_env(), timeout=300)
    return _result(done.stdout, done.stderr, done.returncode)


@pytest.mark.parametrize("kind", ["rotnet", "classifier"])
def test_mirrored_strategy_on_two_cpu_devices_matches_one_device(mirrored, kind):
    """Fast layers, FusedAdam, the training helpers: 2 replicas train as 1 device (inference-mode
    BatchNorm, so that per-replica batch statistics play no part)."""
    assert mirrored["replicas"] == 2
    r = mirrored[kind]
    np.testing.assert_allclose(r["loss_two"], r["loss_one"], rtol=1e-5, atol=1e-6)
    assert r["max_weight_diff"] < 1e-5


@pytest.mark.parametrize("kind", ["rotnet", "classifier"])
def test_per_replica_batchnorm_keeps_one_copy_of_its_statistics(mirrored, kind):
    r = mirrored[kind]
    assert all(np.isfinite(r["per_replica_bn_losses"]))
    assert r["replica_divergence"] == 0.0  # aggregation="mean" + re-estimation on every copy


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_strategy_two_processes(tmp_path):
    """Two workers on 127.0.0.1 (TF_CONFIG): one epoch each way, identical weights, chief saves."""
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = [
        subprocess.Popen([sys.executable, str(WORKER), "worker", str(tmp_path)], text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=_env(TF_CONFIG=json.dumps({"cluster": cluster,
                                                        "task": {"type": "worker",
                                                                 "index": i}})))
        for i in range(2)
    ]
    deadline, results = time.monotonic() + 240, []
    try:
        for p in procs:
            out, err = p.communicate(timeout=max(deadline - time.monotonic(), 1))
            results.append(_result(out, err, p.returncode))
    finally:  # never leave a worker waiting in a collective
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    chief, other = results
    assert chief["chief"] and not other["chief"] and chief["replicas"] == 2
    assert chief["digests"] == other["digests"]  # bitwise identical weights
    assert chief["history"] == other["history"]
    assert sorted(os.listdir(tmp_path)) == ["model.keras"]  # only the chief's file remains
    assert not os.path.exists(other["saved_to"])
    import risc_tf

    model = risc_tf.load_model(tmp_path / "model.keras")
    assert model.output_shape == (None, 2)
