"""Saving figures: the one PNG writer of every figure risc_tf draws.

The reports of :mod:`risc_tf.experiments` and the heatmap figures of
:mod:`risc_tf.explain.panels` draw :class:`matplotlib.figure.Figure` objects
on the Agg canvas, never through pyplot (so they work headless and leave global
state alone), and write them with :func:`save_figure`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from risc_tf.atomic import atomic_output
from risc_tf.validation import check_int

__all__ = ["save_figure"]


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 110,
                tight: bool = True) -> Path:
    """Write ``fig`` as a PNG, creating parent folders; returns the path.

    Written to a temporary file first and moved into place, so an interrupted
    write never leaves a truncated image.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (made with or without pyplot; it is drawn on an Agg canvas).
    path : path
        Where to write it; must end in ``.png``.
    dpi : int, default 110
        Resolution.
    tight : bool, default True
        Apply ``fig.tight_layout()`` first (figures with a layout engine of
        their own keep it).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        ``path`` does not end in ``.png``, or ``dpi`` is not an int >= 1.

    Examples
    --------
    >>> from matplotlib.figure import Figure  # doctest: +SKIP
    >>> fig = Figure()  # doctest: +SKIP
    >>> fig.subplots().plot([0, 1], [1, 0])  # doctest: +SKIP
    >>> save_figure(fig, "runs/line.png")  # doctest: +SKIP
    PosixPath('runs/line.png')
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"figures are saved as PNG; {path} does not end in .png")
    dpi = check_int("dpi", dpi)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    if tight:
        with warnings.catch_warnings():  # figures with their own layout say so: harmless
            warnings.filterwarnings("ignore", message=".*[Tt]ight.?layout.*")
            fig.tight_layout()
    with atomic_output(path, keep_suffix=True) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path
