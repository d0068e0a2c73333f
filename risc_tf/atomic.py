"""Writing files and folders so that nothing is ever half-written.

Every file risc_tf writes (models, pipelines, exports, figures, reports,
upright copies) goes under a temporary hidden name in its target's folder and
is renamed into place at the end, so the target is either its old self or the
complete new version. Temporary files and folders get the usual permissions
(0o666 / 0o777 minus the umask): what they become is readable as any other
file the user writes. Only the standard library is imported.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_output", "make_parent", "swap_into_place", "temporary_folder", "write_text"]


def make_parent(target: str | os.PathLike) -> Path:
    """Create ``target``'s folder (and its parents) if missing; return it.

    Raises
    ------
    NotADirectoryError
        A part of the path is a file (the message names that part).
    """
    folder = Path(target).parent
    for part in (folder, *folder.parents):
        if part.exists():
            if not part.is_dir():
                raise NotADirectoryError(f"cannot write {target}: {part} is a file, not a folder")
            break
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _hidden(target: Path, keep_suffix: bool) -> Path:
    token = secrets.token_hex(4)
    if keep_suffix:
        return target.with_name(f".{target.stem}.{token}{target.suffix}")
    return target.with_name(f".{target.name}.{token}.tmp")


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike, keep_suffix: bool = False) -> Iterator[Path]:
    """Write a file under a temporary name and rename it to ``target`` on success.

    The temporary file is hidden and lives in the target's folder, so the final
    ``os.replace`` is atomic. On any error the temporary file is removed and the
    error propagates.

    Parameters
    ----------
    target : str or PathLike
        The file to create or replace; its folder must exist.
    keep_suffix : bool, default False
        Give the temporary file the target's suffix (for writers that insist on
        one, such as Keras and ``.keras``); otherwise it ends in ``.tmp``.

    Yields
    ------
    Path
        The temporary path to write to (it exists, empty).

    Examples
    --------
    >>> with atomic_output(tmp / "page.html") as part:  # doctest: +SKIP
    ...     part.write_text("<html></html>")
    """
    target = Path(target)
    while True:
        tmp = _hidden(target, keep_suffix)
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def temporary_folder(target: str | os.PathLike) -> Iterator[Path]:
    """A new hidden folder beside ``target`` (mode 0o777 minus the umask), removed on exit.

    The caller fills it and moves it (or what it holds) into place before the
    block ends; whatever is left is deleted.
    """
    target = Path(target)
    make_parent(target)
    while True:
        tmp = _hidden(target, False)
        try:
            tmp.mkdir()
            break
        except FileExistsError:
            continue
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def swap_into_place(new: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Move a finished file or folder ``new`` to ``target``, replacing what is there, with rollback.

    ``new`` must be on the same file system as ``target`` (written in a
    :func:`temporary_folder` beside it, or an :func:`atomic_output` name). A
    file replacing a file is one atomic ``os.replace``. Otherwise (a folder, which
    a rename cannot put over a non-empty folder) an existing ``target`` is first
    renamed to a hidden name beside it, ``new`` is moved in, and the old one is
    deleted only then; if moving ``new`` in fails, the old one is put back and the
    error propagates, so ``target`` is its old self or the complete new version.

    Parameters
    ----------
    new : str or PathLike
        The finished file or folder.
    target : str or PathLike
        Where it goes; its folder must exist.

    Returns
    -------
    Path
        ``target``.

    Examples
    --------
    >>> with temporary_folder(target) as tmp:  # doctest: +SKIP
    ...     write_everything(tmp / "new")
    ...     swap_into_place(tmp / "new", target)
    """
    new, target = Path(new), Path(target)
    if not (target.exists() or target.is_symlink()) or (new.is_file() and target.is_file()):
        os.replace(new, target)
        return target
    old = _hidden(target, False)
    os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old, target)  # put the old one back
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)
    return target


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return the path."""
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
