"""How refused input is answered: always a 422 in FastAPI's shape, bounded in size.

- A body must be UTF-8 JSON (RFC 8259 section 8.1). Bytes that are not UTF-8, a raw NUL byte,
  and a declared ``charset`` other than UTF-8, are refused as they are read (Python's ``json``
  would otherwise guess UTF-16 or UTF-32 from the first bytes, and fail on anything else with a
  bare 400). ASCII in UTF-16 or UTF-32 without a BOM is valid UTF-8, NULs and all; but no UTF-8
  JSON has a raw NUL (a control character, escaped in strings, not whitespace outside them).
- JSON the parser gives up on (nested too deeply, an integer of more than 4,300 digits) is the
  same class as malformed JSON: 422, not FastAPI's generic 400.
- A 422 repeats what it refuses only in part: each problem's ``input`` (and any string in its
  ``loc`` or ``ctx``) is cut to :data:`MAX_ECHOED_CHARS`, and at most :data:`MAX_PROBLEMS`
  problems are listed, so a 60 KB body of unknown fields cannot make a 500 KB answer.
- A 422 repeats a lone surrogate (which JSON's ``"\\ud800"`` escape can carry into a string) as
  U+FFFD: it is not Unicode, and strict JSON parsers refuse its escape.
"""

from __future__ import annotations

import codecs
import json
from email.message import Message as MimeHeader
from typing import Any, cast

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from todo_core.text import LONE_SURROGATES

MAX_PROBLEMS = 20
"""At most this many problems are listed in a 422 (the first ones, in FastAPI's order)."""

MAX_ECHOED_CHARS = 100
"""Longest piece of the request a 422 repeats (an input, a field name); longer ones are cut."""

UTF8_NAMES = frozenset({"utf-8", "utf8"})


class BodyNotUtf8(ValueError):
    """The body's bytes are not UTF-8 (or hold a raw NUL: UTF-16 or UTF-32 that is also valid
    UTF-8), or its declared charset is another one."""


def _declared_charset(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"content-type" and b"charset" in value.lower():
            header = MimeHeader()
            header["content-type"] = value.decode("latin-1")
            charset = header.get_param("charset")
            if charset is None:
                return None  # "charset" is in the media type or another parameter's value
            return charset.lower() if isinstance(charset, str) else "unreadable"
    return None


class Utf8Bodies:
    """Checks, as it is read, that a request's body is UTF-8 (and declared as such if declared
    at all). A body nobody reads is never checked. The failure surfaces as FastAPI's body
    parsing error, whose cause :func:`unparsable_body_handler` turns into a 422."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        first = True

        async def checked_receive() -> Message:
            nonlocal first
            message = await receive()
            if message["type"] == "http.request":
                if first:
                    first = False
                    charset = _declared_charset(scope)
                    if charset is not None and charset not in UTF8_NAMES:
                        raise BodyNotUtf8("charset")
                body = message.get("body", b"")
                try:
                    decoder.decode(body, final=not message.get("more_body", False))
                except UnicodeDecodeError:
                    raise BodyNotUtf8("bytes") from None
                if b"\x00" in body:
                    raise BodyNotUtf8("nul")
            return message

        await self.app(scope, checked_receive, send)


def _unparsable_reason(cause: BaseException | None) -> str:
    if isinstance(cause, BodyNotUtf8):
        if cause.args == ("charset",):
            return "Request body must be UTF-8 JSON (the declared charset is not UTF-8)"
        if cause.args == ("nul",):
            return "Request body must be UTF-8 JSON (it has a NUL byte: UTF-16 or UTF-32?)"
        return "Request body is not valid UTF-8"
    if isinstance(cause, RecursionError):
        return "JSON nested too deeply"
    return "JSON could not be parsed (malformed, or a number too large)"


async def unparsable_body_handler(request: Request, error: Exception) -> Response:
    """FastAPI answers a body its parser cannot read (anything but a JSONDecodeError) with a
    bare 400; here it is malformed JSON like any other: a 422 in FastAPI's shape. Every other
    HTTPException keeps FastAPI's own answer."""
    error = cast(HTTPException, error)
    if error.status_code != 400 or error.detail != "There was an error parsing the body":
        return await http_exception_handler(request, error)
    problem = {
        "type": "json_invalid",
        "loc": ["body"],
        "msg": _unparsable_reason(error.__cause__),
        "input": {},
    }
    return problem_response([problem])


def _cut(text: str) -> str:
    return text if len(text) <= MAX_ECHOED_CHARS else text[:MAX_ECHOED_CHARS] + "…"


def _bounded(value: Any) -> Any:
    """``value`` as JSON that repeats at most MAX_ECHOED_CHARS of the request.

    Python's ``json`` reads ``NaN``, ``Infinity`` and ``1e400`` (infinity) as floats, which JSON
    cannot write: such an input, alone or inside a list or object, is repeated as text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, bytes):
        return _cut(_text_of(value))
    if isinstance(value, str):
        return _cut(value)
    encoded = jsonable_encoder(value, custom_encoder={bytes: _text_of})
    try:
        text = json.dumps(encoded, ensure_ascii=False, allow_nan=False)
    except ValueError:  # NaN or infinity somewhere inside: repeated as text
        return _cut(json.dumps(encoded, ensure_ascii=False))
    return encoded if len(text) <= MAX_ECHOED_CHARS else _cut(text)


def _text_of(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


def _well_formed(value: Any) -> Any:
    """``value`` (JSON-compatible) with each lone surrogate replaced by U+FFFD."""
    if isinstance(value, str):
        return LONE_SURROGATES.sub("\ufffd", value)
    if isinstance(value, list):
        return [_well_formed(item) for item in value]
    if isinstance(value, dict):
        return {_well_formed(key): _well_formed(item) for key, item in value.items()}
    return value


def bounded_problems(problems: list[Any]) -> list[dict[str, Any]]:
    """FastAPI's list of problems, at most MAX_PROBLEMS long, each repeating little input."""
    bounded: list[dict[str, Any]] = []
    for problem in problems[:MAX_PROBLEMS]:
        item = dict(problem)
        item["loc"] = [_cut(p) if isinstance(p, str) else p for p in item.get("loc", ())]
        if "input" in item:
            item["input"] = _bounded(item["input"])
        if isinstance(item.get("ctx"), dict):
            item["ctx"] = {k: _bounded(v) for k, v in item["ctx"].items()}
        bounded.append(item)
    return bounded


def problem_response(problems: list[Any]) -> Response:
    # Lone surrogates replaced in everything the answer repeats (input, loc, ctx, a message):
    # UTF-8 cannot encode one, and strict parsers refuse its \u escape. (Still ASCII-escaped,
    # as 422s always were.)
    body = json.dumps(
        {"detail": _well_formed(jsonable_encoder(bounded_problems(problems)))},
        ensure_ascii=True,
        separators=(",", ":"),
    )
    return Response(body, status_code=422, media_type="application/json")


async def validation_error_handler(request: Request, error: Exception) -> Response:
    """FastAPI's 422 for a request that fails validation, bounded in size."""
    return problem_response(list(cast(RequestValidationError, error).errors()))
