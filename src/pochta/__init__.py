"""Pochta: a complete mail server in one process."""

__version__ = "0.1.0"
