"""Many output files of one run, staged in a hidden folder and put in place together.

A run that writes a predictions file, a review page and thousands of upright
copies must never leave a mix: copies that no predictions file lists, or a
predictions file naming copies that are not there. :class:`Staging` writes
every output into a hidden folder ``.risc-tf-staging.<token>`` inside a home
folder (the copies' folder, so that putting them in place is a rename on the
same file system) and records in a journal where each staged file goes.
:meth:`Staging.commit` then marks the run committed and moves every file to
its place; :meth:`Staging.abort` (any error) deletes the folder.

What a killed run (``kill -9``, power loss) leaves, and what happens next:

* killed **before** the commit: the hidden folder and its lock file
  ``.risc-tf-staging.<token>.lock``; none of the run's outputs is visible.
  :func:`recover` (called by the next run with the same home) deletes them.
* killed **during** the commit (a window of renames): the folder holds a
  ``committed`` marker; :func:`recover` finishes moving its files into place,
  so the outputs end complete and consistent.

A staging folder belongs to a live run as long as that process holds an
exclusive ``flock`` on its lock file (released by the system when the
process dies, however it dies), so :func:`recover` never touches the folder
of a run still in progress, e.g. another shard writing copies to the same
folder. On systems without ``fcntl`` (Windows) nothing is recovered
automatically: delete the hidden folders of runs that are not running.

Only the standard library is imported.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["PREFIX", "Staging", "recover"]

#: Name prefix of the hidden staging folders and their lock files.
PREFIX = ".risc-tf-staging."
_JOURNAL, _COMMITTED = "journal", "committed"


def _lock(fd: int, wait: bool) -> bool:
    if fcntl is None:
        return wait  # no locking: own folders are "locked", others are never taken
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every system can open a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Staging:
    """A hidden folder of staged outputs in ``home`` (an existing folder).

    Use as a context manager: on an error inside the block the staged files
    are deleted (:meth:`abort`); :meth:`commit` must be called explicitly.

    Parameters
    ----------
    home : str or PathLike
        Where the hidden folder is made; it should be on the same file system
        as most outputs (renames there are atomic; others are copied).

    Examples
    --------
    >>> import tempfile
    >>> home = Path(tempfile.mkdtemp())
    >>> with Staging(home) as staging:
    ...     _ = staging.file(home / "result.txt").write_text("done")
    ...     staging.commit()
    1
    >>> sorted(p.name for p in home.iterdir())
    ['result.txt']
    """

    def __init__(self, home: str | os.PathLike):
        home = Path(home)
        token = secrets.token_hex(8)
        # The lock file is locked under another name, then renamed into place (the lock
        # stays with the file), so a recover() in another process never sees it unlocked.
        fresh = home / f".risc-tf-lock.{token}"
        self._fd = os.open(fresh, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        _lock(self._fd, wait=True)
        self.lock_path = home / f"{PREFIX}{token}.lock"
        os.replace(fresh, self.lock_path)
        self.folder = home / f"{PREFIX}{token}"
        self.folder.mkdir()
        self._journal = open(self.folder / _JOURNAL, "ab")  # noqa: SIM115
        self._files = 0
        self.done = False

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if not self.done:
            self.abort()

    def _record(self, kind: bytes, staged: Path, final: Path) -> None:
        rel = os.fsencode(staged.relative_to(self.folder))
        self._journal.write(kind + b"\0" + rel + b"\0" + os.fsencode(os.path.abspath(final))
                            + b"\0\n")
        self._journal.flush()

    def file(self, final: str | os.PathLike) -> Path:
        """A new staged path for the output file ``final`` (put in place by :meth:`commit`)."""
        self._files += 1
        staged = self.folder / "files" / f"{self._files}{Path(final).suffix}"
        staged.parent.mkdir(exist_ok=True)
        staged.touch()
        self._record(b"F", staged, Path(final))
        return staged

    def folder_for(self, final_folder: str | os.PathLike) -> Path:
        """A staged folder standing for ``final_folder``: what is written under it goes,
        with the same relative paths, under ``final_folder`` (:meth:`add`)."""
        staged = self.folder / "copies"
        staged.mkdir(exist_ok=True)
        self._copies_home = Path(final_folder)
        return staged

    def add(self, staged: str | os.PathLike) -> Path:
        """Register a file written under :meth:`folder_for`'s folder; return its final path."""
        staged = Path(staged)
        final = self._copies_home / staged.relative_to(self.folder / "copies")
        self._record(b"C", staged, final)
        return final

    def commit(self) -> int:
        """Mark the run committed and move every staged file into place; return how many.

        Copies go first, then the files of :meth:`file` in the order they were
        asked for (e.g. the predictions file last), so that once the last
        file is visible all the others are too.
        """
        self._journal.flush()
        os.fsync(self._journal.fileno())
        self._journal.close()
        marker = os.open(self.folder / _COMMITTED, os.O_WRONLY | os.O_CREAT, 0o666)
        os.fsync(marker)
        os.close(marker)
        _fsync_dir(self.folder)
        moved = _apply(self.folder)
        self._close()
        return moved

    def abort(self) -> None:
        """Delete everything staged (the outputs were never visible)."""
        with contextlib.suppress(OSError):
            self._journal.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        self._close()

    def _close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.lock_path.unlink()
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self.done = True


def _entries(folder: Path, kind: bytes) -> Iterator[tuple[Path, Path]]:
    """The journal's ``(staged, final)`` pairs of one kind, read a record at a time.

    A record is ``kind \\0 staged \\0 final \\0 \\n``; a path may hold a newline (Linux)
    but never a NUL, and no field starts with one (staged paths start with ``files`` or
    ``copies``, final ones are absolute), so a record ends at the first newline right
    after a NUL. Only one record is in memory at a time, whatever the number of copies.
    """
    try:
        journal = open(folder / _JOURNAL, "rb")  # noqa: SIM115
    except OSError:
        return
    with journal:
        record = b""
        for piece in journal:
            record += piece
            if not record.endswith(b"\0\n"):
                continue  # a newline inside a path, or an unfinished last record
            parts = record.split(b"\0")
            record = b""
            if len(parts) == 4 and parts[0] == kind:
                yield folder / os.fsdecode(parts[1]), Path(os.fsdecode(parts[2]))


def _move(staged: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(staged, final)
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise
        part = final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp")
        try:
            shutil.copyfile(staged, part)
            os.replace(part, final)
        finally:
            part.unlink(missing_ok=True)
        staged.unlink()


def _apply(folder: Path) -> int:
    """Move the staged files of a committed folder into place (again: idempotent)."""
    moved = 0
    for kind in (b"C", b"F"):  # the journal is read once per kind, never held whole
        for staged, final in _entries(folder, kind):
            if staged.exists():
                _move(staged, final)
                moved += 1
    return moved


def recover(home: str | os.PathLike) -> dict[str, int]:
    """Clean up after runs that were killed while staging in ``home``.

    Folders of runs killed before their commit are deleted; those killed
    during it are finished (their files moved into place). Folders of live
    runs (lock held) are left alone.

    Returns
    -------
    dict
        ``{"removed": n, "finished": m}`` (numbers of staging folders).
    """
    home = Path(home)
    done = {"removed": 0, "finished": 0}
    if fcntl is None or not home.is_dir():
        return done
    for folder in sorted(home.glob(PREFIX + "*")):
        if folder.suffix == ".lock" or not folder.is_dir():
            continue
        lock = folder.with_name(folder.name + ".lock")
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            fd = None  # the lock is made first and removed last: a leftover
        try:
            if fd is not None and not _lock(fd, wait=False):
                continue  # a live run
            if (folder / _COMMITTED).exists():
                _apply(folder)
                done["finished"] += 1
            else:
                done["removed"] += 1
            shutil.rmtree(folder, ignore_errors=True)
            lock.unlink(missing_ok=True)
        finally:
            if fd is not None:
                os.close(fd)
    for lock in home.glob(PREFIX + "*.lock"):  # a lock without its folder
        if not lock.with_suffix("").exists():
            fd = os.open(lock, os.O_RDWR)
            try:
                if _lock(fd, wait=False):
                    lock.unlink(missing_ok=True)
            finally:
                os.close(fd)
    return done
