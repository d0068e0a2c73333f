"""A progress line for long loops over files: a bar on a terminal, plain lines elsewhere.

On a terminal (``stream.isatty()``) the line is redrawn in place with a
carriage return (``\\r``), at most a few times a second. Anywhere else (a log
file, a pipe, a CI job, ``kubectl logs``) it writes plain lines, one every 10 %
of the work and one at the end, with no carriage return, backspace or escape
code. Only ASCII characters are written, so any output encoding accepts them.
Only the standard library is imported.

Keras's own progress bar (``fit(verbose=1)``) redraws with backspaces, ``\r``
and bold escape codes on every POSIX process, terminal or not;
:func:`fit_verbosity` picks its one-line-per-epoch mode (``verbose=2``, the mode
Keras recommends for logs) when the output is not a terminal.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from risc_tf.validation import check_int

__all__ = ["Progress", "fit_verbosity"]


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def fit_verbosity(stream: TextIO | None = None) -> int:
    """Keras's ``verbose`` for a shown training run: 1 (a bar) on a terminal or in
    a notebook, 2 (one plain line per epoch) anywhere else.

    Parameters
    ----------
    stream : text stream, optional
        Where Keras writes (default ``sys.stdout``, read at call time).

    Returns
    -------
    int
        1 or 2.

    Examples
    --------
    >>> import io
    >>> fit_verbosity(io.StringIO()) == 2 or "ipykernel" in sys.modules
    True
    """
    stream = sys.stdout if stream is None else stream
    return 1 if _is_terminal(stream) or "ipykernel" in sys.modules else 2


class Progress:
    """Count work done and show it on ``stream`` (default: standard output).

    Parameters
    ----------
    total : int
        Units of work (>= 0).
    unit : str, default "file"
        Name of one unit, for the line (``"120/2000 files"``).
    stream : text stream, optional
        Where to write (default ``sys.stdout`` at construction).
    interval : float, default 0.2
        Least seconds between two redraws on a terminal.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> bar = Progress(20, stream=out)
    >>> for _ in range(20):
    ...     bar.add(1)
    >>> bar.close()
    >>> out.getvalue().splitlines()[-1].startswith("20/20 files (100%)")
    True
    """

    width = 30

    def __init__(self, total: int, *, unit: str = "file", stream: TextIO | None = None,
                 interval: float = 0.2):
        self.total = check_int("total", total, minimum=0)
        self.unit, self.interval = unit, float(interval)
        self.stream = sys.stdout if stream is None else stream
        self.terminal = _is_terminal(self.stream)
        self.done, self.start, self.last, self.next_step = 0, time.monotonic(), 0.0, 1
        self.closed = False

    def _line(self) -> str:
        elapsed = time.monotonic() - self.start
        units = self.unit + ("" if self.total == 1 else "s")
        share = self.done / self.total if self.total else 1.0
        text = f"{self.done}/{self.total} {units} ({share:.0%}), {elapsed:.0f} s"
        if 0 < self.done < self.total:
            text += f", about {elapsed / self.done * (self.total - self.done):.0f} s left"
        if self.terminal:
            filled = int(self.width * share)
            text = "[" + "#" * filled + "." * (self.width - filled) + "] " + text
        return text

    def add(self, n: int = 1) -> None:
        """Record ``n`` more units of work done."""
        self.done += n
        now = time.monotonic()
        if self.terminal:
            if now - self.last >= self.interval or self.done >= self.total:
                self.last = now
                self.stream.write("\r" + self._line().ljust(self.width + 50))
                self.stream.flush()
        elif self.total and self.done * 10 >= self.next_step * self.total \
                and self.done < self.total:
            while self.done * 10 >= self.next_step * self.total:
                self.next_step += 1
            self.stream.write(self._line() + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Write the final line (once)."""
        if self.closed:
            return
        self.closed = True
        self.stream.write(("\r" if self.terminal else "") + self._line() +
                          (" " * 20 if self.terminal else "") + "\n")
        self.stream.flush()
