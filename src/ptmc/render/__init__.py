"""Renderers: each turns a Result into one format, and never explores anything itself."""
from __future__ import annotations

import os


def shown_path(path: str) -> str:
    """A file as the user would name it: relative to the working directory when under it."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel
