"""The one PNG writer for every figure risc_tf draws (reports, explanations).

Figures are :class:`matplotlib.figure.Figure` objects drawn on the Agg canvas,
never through pyplot, so they work headless and leave global state alone.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["save_figure"]


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 110, tight: bool = True) -> Path:
    """Write ``fig`` as a PNG, creating parent folders; returns the path.

    Written to a temporary file first and moved into place, so an interrupted
    write never leaves a truncated image.

    Raises
    ------
    ValueError
        ``path`` does not end in ``.png``.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"figures are saved as PNG; {path} does not end in .png")
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    if tight:
        fig.tight_layout()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, format="png")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
