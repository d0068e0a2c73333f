"""A probe's result: printed as JSON and, when asked, written to a file beside it."""

from __future__ import annotations

import json
from pathlib import Path


def emit(result: dict, output: str | None) -> None:
    """Print ``result`` as indented JSON; also write it to ``output`` when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if output:
        Path(output).write_text(text + "\n")
