"""The one PNG writer for every figure risc_tf draws (reports, explanations).

Figures are :class:`matplotlib.figure.Figure` objects drawn on the Agg canvas,
never through pyplot, so they work headless and leave global state alone.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from risc_tf.atomic import atomic_output

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
        with warnings.catch_warnings():  # figures with their own layout say so: harmless
            warnings.filterwarnings("ignore", message=".*[Tt]ight.?layout.*")
            fig.tight_layout()
    with atomic_output(path, keep_suffix=True) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path
