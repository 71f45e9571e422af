"""Sieve (RFC 5228) and its extensions: parse a script, run it on a message, get the actions.

Pure code: no I/O, no logging. Storage, delivery and ManageSieve use it.
"""

from __future__ import annotations

from pochta.filters.sieve.errors import SieveError
from pochta.filters.sieve.grammar import SUPPORTED_EXTENSIONS
from pochta.filters.sieve.parser import Node, Script, parse

__all__ = ["SUPPORTED_EXTENSIONS", "Node", "Script", "SieveError", "parse"]
