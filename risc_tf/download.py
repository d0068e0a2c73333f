"""Downloading a MedMNIST file: checksummed, with a timeout, never half-written.

``keras.utils.get_file`` fetches the file (with its MD5 check) into a
temporary folder inside the data folder; the file is moved into place only
once verified. ``get_file`` has no timeout of its own: it opens its connection
with the default socket timeout, which is set for the call. Temporary folders
that a killed download left behind are deleted by the next download.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

from risc_tf import catalog
from risc_tf.validation import check_number

__all__ = ["download_medmnist"]

_TMP_PREFIX = ".download-"
_STALE_AFTER_S = 3600.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _remove_stale_downloads(root: Path) -> None:
    """Delete temporary download folders that no running process owns.

    Folders are named ``.download-<pid>-*``; one whose process is gone (a
    killed download) is deleted, as is any other ``.download-*`` folder older
    than an hour.
    """
    for tmp in root.glob(f"{_TMP_PREFIX}*"):
        if not tmp.is_dir():
            continue
        owner = tmp.name[len(_TMP_PREFIX):].split("-", 1)[0]
        if owner.isdigit():
            stale = int(owner) != os.getpid() and not _pid_alive(int(owner))
        else:
            stale = time.time() - tmp.stat().st_mtime > _STALE_AFTER_S
        if stale:
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    """``keras.utils.get_file`` opens its connection with the default socket timeout."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def download_medmnist(
    flag: str,
    root: str | os.PathLike | None = None,
    size: int = 28,
    url: str | None = None,
    timeout: float = catalog.DOWNLOAD_TIMEOUT,
) -> Path:
    """Download one MedMNIST npz into ``root`` and verify its MD5.

    Uses ``keras.utils.get_file`` (with its hash check) into a temporary folder
    inside ``root``; the file is moved into place only once verified, so a failed
    or interrupted download never leaves a partial file behind, and temporary
    folders left by killed downloads are deleted on the next call.

    Parameters
    ----------
    flag : str
        Dataset name, e.g. ``"organamnist"``.
    root : path, optional
        Target folder; :func:`risc_tf.catalog.default_root` when omitted.
    size : {28, 64, 128, 224}
        Image size.
    url : str, optional
        Override the official URL (mirrors, tests).
    timeout : float, default 60
        Seconds to wait for the server at each connect or read before failing.

    Returns
    -------
    Path
        The verified file.

    Raises
    ------
    OSError
        The download failed or timed out (the message names the file and URL).
    ValueError
        The downloaded file failed its MD5 check (nothing is written).
    NotADirectoryError
        ``root`` is a file.
    """
    import keras

    name = catalog.medmnist_filename(flag, size)
    official_url, md5 = catalog.url_and_md5(flag, size)
    url = url or official_url
    if url is None:
        raise ValueError(f"medmnist lists no download URL for {flag} at size {size}")
    timeout = check_number("timeout", timeout, 0.0, include_minimum=False)
    root = catalog.data_folder(root, create=True)
    _remove_stale_downloads(root)
    target = root / name
    with tempfile.TemporaryDirectory(dir=root, prefix=f"{_TMP_PREFIX}{os.getpid()}-") as tmp:
        try:
            with _socket_timeout(timeout):
                fetched = keras.utils.get_file(
                    fname=name, origin=url, file_hash=md5, hash_algorithm="md5",
                    cache_dir=tmp, cache_subdir="",
                )
        except ValueError as err:
            if "hash" not in str(err).lower():  # not keras's checksum error
                raise OSError(f"download of {name} from {url} failed: {err}") from err
            raise ValueError(
                f"download of {name} from {url} failed its MD5 check (expected {md5}); "
                "nothing was written"
            ) from err
        except Exception as err:
            reason = "timed out" if "timed out" in str(err) else "failed"
            raise OSError(
                f"download of {name} from {url} {reason} (timeout {timeout:g} s): {err}"
            ) from err
        os.replace(fetched, target)
    return target
