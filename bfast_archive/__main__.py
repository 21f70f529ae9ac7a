"""Command line: ``python -m bfast_archive <command>`` (also ``bfast-archive``).
The commands live in ``bfast_archive.cli``."""
from __future__ import annotations

import sys

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
