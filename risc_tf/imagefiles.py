"""Image files on disk: which files are images, the read error, and atomic writes.

The file-system side of :mod:`risc_tf.io` (which re-exports these names):

* :func:`find_image_files` expands files and folders into a sorted,
  deterministic list of paths. A file counts as an image when its suffix is in
  :data:`IMAGE_SUFFIXES` (case-insensitive) or when it carries the DICOM
  marker ``DICM`` at byte 128: DICOM files are often named ``IM0001``,
  ``1.2.840.113619.2.55.3.123`` or ``*.IMA``. Hidden entries (names starting
  with ``.``) inside folders are skipped: they are system files such as
  macOS ``._scan.png`` resource forks, not scans. Files named explicitly are
  always kept, whatever their suffix; reading them reports what is wrong.
* :class:`ImageReadError` is the one exception for a file that cannot be read.
* :func:`atomic_output` gives a temporary path in the target folder that is
  renamed over the target only when writing succeeded: a reader never sees a
  half-written file.

Only the standard library is imported.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeAlias

from risc_tf.atomic import atomic_output

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageReadError",
    "as_paths",
    "atomic_output",
    "display_path",
    "escape_text",
    "find_image_files",
    "has_dicom_magic",
]

#: A path argument; one or several.
PathLike: TypeAlias = str | os.PathLike[str]
PathsLike: TypeAlias = PathLike | Sequence[PathLike]

#: Suffixes read as images (compared lower-case).
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".dcm", ".dicom"}
)
_DICOM_SUFFIXES = (".dcm", ".dicom")


class ImageReadError(ValueError):
    """A file that cannot be read as an image.

    ``str(error)`` is ``"<path>: <reason>"`` on one line; ``error.path`` and
    ``error.reason`` hold the two parts, ``error.info`` what was learnt about
    the file before the failure (a dict, often empty).
    """

    def __init__(self, path: PathLike, reason: str, info: dict | None = None):
        self.path = Path(path)
        self.reason = one_line(reason)
        self.info = {} if info is None else info
        super().__init__(f"{self.path}: {self.reason}")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def escape_text(text: str) -> str:
    """``text`` made writable as UTF-8: the bytes of a file name that are not UTF-8 as ``\\xHH``.

    Python holds such a byte (e.g. 0xff in a Linux file name) as a lone
    surrogate (U+DCFF, "surrogateescape"), which no UTF-8 file, JSON parser
    or strict terminal accepts. Each becomes the four characters ``\\xff``
    (other lone surrogates ``\\udXXX``); any other text is returned as is.
    ``os.fsencode(path).decode("utf-8", "backslashreplace")`` gives the same
    form. The form is ambiguous only for a name that itself contains a
    backslash followed by ``x`` and two hex digits.

    Examples
    --------
    >>> escape_text(os.fsdecode(b"scan\\xff.png"))
    'scan\\\\xff.png'
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub(_escape, text)
    return text


def display_path(path: PathLike) -> str:
    """A path as text that any UTF-8 output accepts (:func:`escape_text` of it)."""
    return escape_text(os.fspath(path))


def one_line(text) -> str:
    """``text`` on one line (library messages are often multi-line)."""
    return " ".join(str(text).split())


def has_dicom_magic(path: PathLike) -> bool:
    """True when the file holds ``DICM`` at byte 128 (the DICOM Part 10 preamble)."""
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def is_dicom_path(path: Path) -> bool:
    """A ``.dcm``/``.dicom`` suffix or the DICOM marker: read with pydicom."""
    return path.suffix.lower() in _DICOM_SUFFIXES or has_dicom_magic(path)


def _is_image_file(path: Path) -> bool:
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    return has_dicom_magic(path)


def as_paths(inputs) -> list[Path]:
    """``inputs`` (a path or a non-empty sequence of paths) as a list of Paths, checked."""
    if isinstance(inputs, (str, os.PathLike)):
        return [Path(inputs)]
    if isinstance(inputs, (bytes, bytearray)) or not isinstance(inputs, Sequence):
        raise ValueError(
            f"inputs must be a path or a sequence of paths (files or folders); got {inputs!r}"
        )
    if len(inputs) == 0:
        raise ValueError("inputs is an empty sequence: give at least one file or folder")
    bad = [p for p in inputs if not isinstance(p, (str, os.PathLike))]
    if bad:
        raise ValueError(f"inputs must hold paths (str or PathLike); got {bad[0]!r}")
    return [Path(p) for p in inputs]


def _raise(error: OSError) -> None:
    raise error


def _walk(folder: Path, recursive: bool) -> Iterator[Path]:
    """Non-hidden files of ``folder`` (and of its non-hidden subfolders), sorted.

    A subfolder that cannot be listed raises (``os.walk`` would skip it silently).
    """
    for root, dirs, files in os.walk(folder, onerror=_raise):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name


def _no_image_message(folder: Path, recursive: bool) -> str:
    files = list(_walk(folder, recursive))
    suffixes = sorted({p.suffix.lower() or "(none)" for p in files})
    shown = ", ".join(suffixes[:6]) + (", ..." if len(suffixes) > 6 else "")
    where = "folder and its subfolders" if recursive else "folder"
    message = (
        f"no image file in folder {folder}: the {where} hold{'' if recursive else 's'} "
        f"{len(files)} file(s)" + (f" with suffixes {shown}" if files else "")
        + f"; accepted suffixes: {', '.join(sorted(IMAGE_SUFFIXES))} "
        "(any case), or DICOM files with the 'DICM' marker"
    )
    if not recursive and any(_is_image_file(p) for p in _walk(folder, True)):
        message += "; its subfolders hold image files: pass recursive=True"
    return message


def find_image_files(inputs: PathsLike, *, recursive: bool = False) -> list[Path]:
    """Expand files and folders into the list of image files to read.

    Parameters
    ----------
    inputs : str, PathLike, or sequence of them
        Files and/or folders. Files are kept as given, even with an unknown
        suffix (reading them will say what is wrong). Folders are expanded
        to their image files (suffix in :data:`IMAGE_SUFFIXES`, or the DICOM
        marker), sorted by name; hidden entries are skipped.
    recursive : bool, default False
        Also expand subfolders (sorted, depth first; symbolic links to
        folders are not followed).

    Returns
    -------
    list of Path
        In the order of ``inputs``, each folder's files sorted; a file reached
        twice is listed once (at its first place).

    Raises
    ------
    FileNotFoundError
        A path that does not exist (the message names it).
    PermissionError
        A folder that cannot be listed.
    ValueError
        ``inputs`` is not a path or a non-empty sequence of paths; a folder is
        empty; a folder holds no image file (the message says how many files
        it holds, which suffixes are accepted, and whether ``recursive=True``
        would find images in its subfolders).

    Examples
    --------
    >>> find_image_files(["scans/", "extra/scan_007.png"])  # doctest: +SKIP
    [PosixPath('scans/a.png'), PosixPath('scans/b.dcm'), PosixPath('extra/scan_007.png')]
    """
    if not isinstance(recursive, bool):
        raise ValueError(f"recursive must be True or False; got {recursive!r}")
    found: list[Path] = []
    seen: set[str] = set()
    paths = as_paths(inputs)
    for path in paths:
        if path.is_dir():
            with os.scandir(path) as entries:
                empty = next(entries, None) is None
            if empty:
                raise ValueError(f"folder {path} is empty: no image file to read")
            files = [p for p in _walk(path, recursive) if _is_image_file(p)]
            if not files:
                raise ValueError(_no_image_message(path, recursive))
        elif path.exists():
            files = [path]
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
        if len(paths) == 1:  # one folder lists each file once: no set of every name
            return files
        for file in files:
            key = os.path.normcase(os.path.abspath(file))
            if key not in seen:
                seen.add(key)
                found.append(file)
    return found


def copy_target(src: Path, outdir: Path, relative_to: PathLike | None, *,
                overwrite: bool = False) -> Path:
    """Where the copy of ``src`` goes in ``outdir`` (keeping its subfolders below
    ``relative_to``), checked: not the original itself, not a folder, not an existing
    file unless ``overwrite``.

    Raises
    ------
    ValueError
        ``outdir`` is a file; ``src`` is not inside ``relative_to``; the target
        is ``src`` itself or a folder.
    FileExistsError
        The target exists and ``overwrite`` is False.
    """
    if outdir.exists() and not outdir.is_dir():
        raise ValueError(f"outdir {outdir} is a file, not a folder")
    if relative_to is None:
        target = outdir / src.name
    else:
        try:
            inner = Path(os.path.abspath(src)).relative_to(os.path.abspath(relative_to))
        except ValueError:
            raise ValueError(f"{src} is not inside relative_to={str(relative_to)!r}") from None
        target = outdir / inner
    if target.exists():
        if os.path.samefile(target, src):
            raise ValueError(
                f"refusing to write the copy of {src} over the file itself: "
                "choose an outdir that is not the input folder"
            )
        if target.is_dir():
            raise ValueError(f"cannot write the copy of {src}: {target} is a folder")
        if not overwrite:
            raise FileExistsError(f"{target} exists: pass overwrite=True to replace it")
    return target
