"""Exceptions that the command-line tools turn into clear messages."""
from __future__ import annotations


class DataNotFoundError(FileNotFoundError):
    """A dataset's processed files are missing; the message says how to create them."""
