"""The package version, in a leaf module: what the package's own modules import (never the root)."""

__version__ = "0.2.0"
