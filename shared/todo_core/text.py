"""String types for request bodies: text that PostgreSQL will store exactly as it was sent.

PostgreSQL rejects NUL in text and UTF-8 cannot encode a lone surrogate (which ``json.loads``
accepts from ``"\\ud800"``); both would otherwise surface as a 500 at insert time. Other control
characters are refused in single-line fields, where they can only be a mistake or an attack.
Control characters are C0, DEL and C1 (U+0080-U+009F): NEL (U+0085) is a line break to Unicode
and whitespace to Python's ``str.split``, which made a message of NELs an untitled conversation.

Each rule is also published in the OpenAPI document as a ``pattern``, so that clients and
property-based testers know exactly which strings are valid. Trimming uses the whitespace that
JSON Schema's ``\\s`` means (ECMAScript's), not Python's, so the two never disagree.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import AfterValidator, BeforeValidator, Field

# ECMAScript's \s: what a JSON Schema pattern means by whitespace.
WHITESPACE = "\t\n\x0b\x0c\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"  # noqa: E501

LONE_SURROGATES = re.compile("[\ud800-\udfff]")
"""Any surrogate in a str is a lone one: ``json.loads`` joins an escaped pair into one character."""
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_CONTROL_EXCEPT_WHITESPACE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ANY_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")

# Unicode's Default_Ignorable_Code_Point characters of the Basic Multilingual Plane: they render
# as nothing (zero-width spaces and joiners, direction marks, the soft hyphen, variation
# selectors, Hangul fillers). A title or a message made of them alone would show as blank.
# Astral ones are left out: a JSON Schema pattern sees them as two UTF-16 code units.
_INVISIBLE_RANGES = (
    r"\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    r"\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
)

_NO_CONTROL = r"[^\u0000-\u001f\u007f-\u009f]"
_NO_CONTROL_BUT_LINES = r"[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]"
_VISIBLE = rf"[^\s\u0000-\u001f\u007f-\u009f{_INVISIBLE_RANGES}]"
# The same class for Python's re, whose \s is not ECMAScript's: the whitespace spelled out.
_VISIBLE_CHARACTER = re.compile(
    "[^" + re.escape(WHITESPACE) + rf"\u0000-\u001f\u007f-\u009f{_INVISIBLE_RANGES}]"
)

SINGLE_LINE_PATTERN = f"^{_NO_CONTROL}*{_VISIBLE}{_NO_CONTROL}*$"
"""One line, no control characters, at least one visible character (not whitespace, not one
that renders as nothing)."""

TEXT_PATTERN = f"^{_NO_CONTROL_BUT_LINES}*$"
"""Free text: newlines, tabs and carriage returns allowed, other control characters not."""

NON_BLANK_TEXT_PATTERN = f"^{_NO_CONTROL_BUT_LINES}*{_VISIBLE}{_NO_CONTROL_BUT_LINES}*$"
"""Free text with at least one visible character."""

IDEMPOTENCY_KEY_MAX = 255
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]([ -~]*[!-~])?$"
"""An ``Idempotency-Key`` header: printable ASCII; spaces inside only (a header value's outer
whitespace is not part of it)."""


def trim(value: Any) -> Any:
    """Strip JSON Schema whitespace from both ends of a string; leave other types to validation."""
    return value.strip(WHITESPACE) if isinstance(value, str) else value


def _storable(value: str) -> str:
    if LONE_SURROGATES.search(value):
        raise ValueError("must be valid Unicode (no lone surrogates)")
    if _CONTROL_EXCEPT_WHITESPACE.search(value):
        raise ValueError("must not contain control characters")
    return value


def is_storable(value: str) -> bool:
    """Whether PostgreSQL can store ``value`` in a text or jsonb column (no NUL, no lone
    surrogate)."""
    return _UNSTORABLE.search(value) is None


def storable(value: str) -> str:
    """``value`` with each NUL and lone surrogate replaced by U+FFFD: for text that no request
    validated (a model's answer), which would otherwise fail its insert."""
    return _UNSTORABLE.sub("\ufffd", value)


def _visible(value: str) -> str:
    # Empty (after trimming) is the length constraint's to report.
    if value and _VISIBLE_CHARACTER.search(value) is None:
        raise ValueError("must have a visible character (not only invisible ones)")
    return value


def _single_line(value: str) -> str:
    _storable(value)
    if _ANY_CONTROL.search(value):
        raise ValueError("must be a single line without control characters")
    return _visible(value)


def _non_blank_text(value: str) -> str:
    return _visible(_storable(value))


Trimmed = BeforeValidator(trim)
"""Strips leading and trailing whitespace before the other checks run."""

SingleLine = AfterValidator(_single_line)
"""Refuses control characters, lone surrogates and NUL: for titles and other one-line fields."""

StorableText = AfterValidator(_storable)
"""Refuses NUL, lone surrogates and control characters other than newline, tab and CR."""

NonBlankText = AfterValidator(_non_blank_text)
""":data:`StorableText` that shows something: at least one visible character."""

SingleLineSchema = Field(json_schema_extra={"pattern": SINGLE_LINE_PATTERN})
TextSchema = Field(json_schema_extra={"pattern": TEXT_PATTERN})
