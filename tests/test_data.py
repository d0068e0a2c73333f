"""risc_tf.data: real files, every error, and the download path against a local HTTP server."""

import functools
import hashlib
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from risc_tf import catalog
from risc_tf.catalog import dataset_info, flags_2d, medmnist_filename
from risc_tf.data import load_medmnist
from risc_tf.download import download_medmnist
from tests.conftest import requires_data


# -- real files -------------------------------------------------------------------
@requires_data
@pytest.mark.parametrize(
    "flag, sizes, rgb",
    [("pneumoniamnist", (4708, 524, 624), False), ("retinamnist", (1080, 120, 400), True)],
)
def test_real_split_sizes_match_medmnist_info(data_root, flag, sizes, rgb):
    info = dataset_info(flag)
    for split, n in zip(catalog.SPLITS, sizes):
        x, y = load_medmnist(flag, split, root=data_root)
        assert len(x) == len(y) == n == info["n_samples"][split]
        assert x.dtype == np.uint8 and x.shape[1:3] == (28, 28)
        assert (x.ndim == 4) is rgb
        assert y.ndim == 1 and y.dtype == np.int64
        assert set(np.unique(y)) <= set(range(len(info["label"])))


@requires_data
def test_real_file_md5_is_verified(data_root):
    path = data_root / "pneumoniamnist.npz"
    assert hashlib.md5(path.read_bytes()).hexdigest() == dataset_info("pneumoniamnist")["MD5"]


@requires_data
def test_root_defaults_to_the_environment_variable(data_root, monkeypatch):
    monkeypatch.setenv(catalog.DATA_ENV, str(data_root))
    x, _ = load_medmnist("retinamnist", "val")
    assert x.shape == (120, 28, 28, 3)


# -- errors -------------------------------------------------------------------------
def test_flags_are_the_2d_sets():
    flags = flags_2d()
    assert "organamnist" in flags and "pneumoniamnist" in flags
    assert not any(f.endswith("3d") for f in flags)


def test_unknown_flag_lists_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset: 'pneumonia'.*pneumoniamnist"):
        load_medmnist("pneumonia", root=tmp_path)
    with pytest.raises(ValueError, match="3D datasets are not supported"):
        load_medmnist("organmnist3d", root=tmp_path)


def test_unknown_split_and_size(tmp_path):
    with pytest.raises(ValueError, match="split must be one of"):
        load_medmnist("pneumoniamnist", "validation", root=tmp_path)
    with pytest.raises(ValueError, match="size must be one of"):
        load_medmnist("pneumoniamnist", size=32, root=tmp_path)
    assert medmnist_filename("organamnist", 64) == "organamnist_64.npz"


def test_missing_file_says_where_and_which_url(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_medmnist("organamnist", root=tmp_path, size=128)
    msg = str(err.value)
    assert "organamnist_128.npz" in msg and str(tmp_path) in msg
    assert dataset_info("organamnist")["url_128"] in msg


def _write_npz(path, n=6, rgb=False, drop=None):
    rng = np.random.default_rng(0)
    shape = (n, 28, 28, 3) if rgb else (n, 28, 28)
    arrays = {}
    for split in catalog.SPLITS:
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 2, (n, 1), dtype=np.uint8)
    arrays.pop(drop, None)
    np.savez_compressed(path, **arrays)
    return path


def test_md5_mismatch_is_an_error(tmp_path):
    _write_npz(tmp_path / "pneumoniamnist.npz")
    with pytest.raises(ValueError, match="MD5 mismatch.*expected 28209eda"):
        load_medmnist("pneumoniamnist", root=tmp_path)
    x, y = load_medmnist("pneumoniamnist", "val", root=tmp_path, verify=False)
    assert x.shape == (6, 28, 28) and y.shape == (6,)


def test_truncated_file_is_an_error(tmp_path):
    path = _write_npz(tmp_path / "pneumoniamnist.npz")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_medmnist("pneumoniamnist", root=tmp_path, verify=False)


def test_missing_keys_are_named(tmp_path):
    _write_npz(tmp_path / "pneumoniamnist.npz", drop="test_labels")
    with pytest.raises(ValueError, match=r"missing keys \['test_labels'\]"):
        load_medmnist("pneumoniamnist", "test", root=tmp_path, verify=False)


# -- download against a local server ----------------------------------------------------
@pytest.fixture()
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/'served'."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _serve(monkeypatch, served, base, name, md5_of=None):
    """Point organamnist (size 64) at the local server with the MD5 of ``md5_of``."""
    path = served / name
    md5 = hashlib.md5((md5_of or path).read_bytes()).hexdigest()
    monkeypatch.setattr(catalog, "url_and_md5", lambda flag, size: (f"{base}/{name}", md5))
    return md5


def test_download_good_file(tmp_path, server, monkeypatch):
    served, base = server
    _write_npz(served / "organamnist_64.npz", n=5)
    _serve(monkeypatch, served, base, "organamnist_64.npz")
    root = tmp_path / "root"
    x, y = load_medmnist("organamnist", "train", root=root, size=64, download=True)
    assert x.shape == (5, 28, 28) and y.shape == (5,)
    assert sorted(p.name for p in root.iterdir()) == ["organamnist_64.npz"]
    # second call reads the verified local copy without downloading
    shutil.rmtree(served)
    assert load_medmnist("organamnist", "test", root=root, size=64)[0].shape == (5, 28, 28)


def test_download_with_wrong_md5_leaves_nothing(tmp_path, server, monkeypatch):
    served, base = server
    _write_npz(served / "organamnist_64.npz")
    other = _write_npz(tmp_path / "other.npz", n=3)
    _serve(monkeypatch, served, base, "organamnist_64.npz", md5_of=other)
    root = tmp_path / "root"
    with pytest.raises(ValueError, match="failed its MD5 check.*nothing was written"):
        load_medmnist("organamnist", root=root, size=64, download=True)
    assert list(root.iterdir()) == []


def test_download_of_truncated_file_fails_md5_and_leaves_nothing(tmp_path, server, monkeypatch):
    served, base = server
    good = _write_npz(tmp_path / "good.npz")
    (served / "organamnist_64.npz").write_bytes(good.read_bytes()[:1000])
    _serve(monkeypatch, served, base, "organamnist_64.npz", md5_of=good)
    root = tmp_path / "root"
    with pytest.raises(ValueError, match="MD5"):
        download_medmnist("organamnist", root, size=64)
    assert list(root.iterdir()) == []


def test_download_http_error_is_clear(tmp_path, server, monkeypatch):
    served, base = server
    monkeypatch.setattr(catalog, "url_and_md5", lambda flag, size: (f"{base}/absent.npz", None))
    with pytest.raises(OSError, match="download of organamnist_64.npz from .* failed.*404"):
        download_medmnist("organamnist", tmp_path / "root", size=64)
    assert list((tmp_path / "root").iterdir()) == []


@pytest.fixture()
def silent_server():
    """A socket on 127.0.0.1 that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    accepted = []
    stop = threading.Event()

    def accept():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(sock.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    sock.close()


def test_download_times_out_on_a_server_that_never_answers(tmp_path, silent_server,
                                                           monkeypatch):
    monkeypatch.setattr(catalog, "url_and_md5",
                        lambda flag, size: (f"{silent_server}/x.npz", None))
    start = time.monotonic()
    with pytest.raises(OSError, match=r"timed out \(timeout 1 s\)"):
        download_medmnist("organamnist", tmp_path / "root", size=64, timeout=1.0)
    assert time.monotonic() - start < 30
    assert list((tmp_path / "root").iterdir()) == []
    with pytest.raises(ValueError, match="timeout must be a finite number > 0"):
        download_medmnist("organamnist", tmp_path / "root", size=64, timeout=0)


@pytest.mark.slow
def test_a_killed_download_leaves_a_folder_that_the_next_one_removes(tmp_path, silent_server,
                                                                     server, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    code = (
        "import sys; from risc_tf import catalog, download\n"
        f"catalog.url_and_md5 = lambda flag, size: ({silent_server + '/x.npz'!r}, None)\n"
        f"download.download_medmnist('organamnist', {str(root)!r}, size=64, timeout=60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], env={**os.environ,
                             "TF_CPP_MIN_LOG_LEVEL": "3"})
    deadline = time.monotonic() + 60
    while not list(root.glob(".download-*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    child.kill()
    child.wait()
    leftovers = list(root.glob(".download-*"))
    assert leftovers, "the killed download should have left its temporary folder"
    served, base = server
    _write_npz(served / "organamnist_64.npz", n=5)
    _serve(monkeypatch, served, base, "organamnist_64.npz")
    download_medmnist("organamnist", root, size=64)
    assert sorted(p.name for p in root.iterdir()) == ["organamnist_64.npz"]


def test_corrupt_npz_without_verification_names_the_file(tmp_path):
    good = _write_npz(tmp_path / "good.npz")
    raw = bytearray(good.read_bytes())
    start = raw.find(b"train_images") + 200  # inside the first member's deflated data
    raw[start:start + 64] = bytes(64)
    bad = tmp_path / "pneumoniamnist.npz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"pneumoniamnist.npz is truncated or corrupt"):
        load_medmnist("pneumoniamnist", "train", root=tmp_path, verify=False)


def test_npz_of_pickled_objects_is_refused_with_the_file_named(tmp_path):
    path = tmp_path / "pneumoniamnist.npz"
    objects = np.empty(2, dtype=object)
    objects[:] = [{"a": 1}, {"b": 2}]
    np.savez(path, train_images=objects, train_labels=np.zeros(2))
    with pytest.raises(ValueError, match="pneumoniamnist.npz is not a MedMNIST npz file"):
        load_medmnist("pneumoniamnist", "train", root=tmp_path, verify=False)


def test_root_that_is_a_file_is_a_clear_error(tmp_path):
    root = tmp_path / "data.txt"
    root.write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="data root .*data.txt is a file"):
        load_medmnist("organamnist", root=root, size=64, download=True)
    with pytest.raises(NotADirectoryError, match="is a file"):
        load_medmnist("organamnist", root=root)


def test_load_splits_subsets_and_refuses_multilabel(tmp_path):
    from risc_tf.data import load_splits

    _write_npz(tmp_path / "pneumoniamnist.npz", n=10)
    splits = load_splits("pneumoniamnist", tmp_path, subset=4, seed=1, verify=False)
    assert {k: len(v[0]) for k, v in splits.items()} == {"train": 4, "val": 4, "test": 4}
    with pytest.raises(ValueError, match="subset must be an int >= 2"):
        load_splits("pneumoniamnist", tmp_path, subset=1, verify=False)
