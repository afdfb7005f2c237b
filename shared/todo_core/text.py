"""String types for request bodies: text that PostgreSQL will store exactly as it was sent.

PostgreSQL rejects NUL in text and UTF-8 cannot encode a lone surrogate (which ``json.loads``
accepts from ``"\\ud800"``); both would otherwise surface as a 500 at insert time. Other control
characters are refused in single-line fields, where they can only be a mistake or an attack.
"""

from __future__ import annotations

import re

from pydantic import AfterValidator

_SURROGATES = re.compile("[\ud800-\udfff]")
_CONTROL_EXCEPT_WHITESPACE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ANY_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _storable(value: str) -> str:
    if _SURROGATES.search(value):
        raise ValueError("must be valid Unicode (no lone surrogates)")
    if _CONTROL_EXCEPT_WHITESPACE.search(value):
        raise ValueError("must not contain control characters")
    return value


def _single_line(value: str) -> str:
    _storable(value)
    if _ANY_CONTROL.search(value):
        raise ValueError("must be a single line without control characters")
    return value


SingleLine = AfterValidator(_single_line)
"""Refuses control characters, lone surrogates and NUL: for titles and other one-line fields."""

StorableText = AfterValidator(_storable)
"""Refuses NUL, lone surrogates and control characters other than newline, tab and CR."""
