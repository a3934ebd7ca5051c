"""Hostile JSON bodies: size-capped before they are read whole, depth-limited before they are parsed, and
checked for text Postgres cannot store, with an error that names the field."""

from __future__ import annotations

import json
from typing import Any

# A platform's event is a few levels deep; anything far deeper is an attack on the parser's recursion.
MAX_DEPTH = 32


class InvalidJson(ValueError):
    """The body is refused: `code` is the error code the client sees, the message says why."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def nesting_depth(text: str | bytes) -> int:
    """The deepest [ / { nesting of a JSON text, counted without parsing (strings are skipped)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_json(body: bytes, max_depth: int = MAX_DEPTH, *, storable: bool = True) -> Any:
    """JSON from untrusted bytes: strict UTF-8, depth-limited and (unless `storable` is False: the caller
    checks each part it stores on its own) only text Postgres can hold; InvalidJson saying why not."""
    # JSON on the wire is UTF-8 (RFC 8259). json.loads(bytes) would also take UTF-16/32, whose bytes the
    # depth count cannot read: decode strictly first, and count and parse the same text.
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidJson("malformed_json", "the body is not UTF-8 JSON") from error
    if nesting_depth(text) > max_depth:
        raise InvalidJson("invalid_event", f"the body is nested more than {max_depth} levels deep")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise InvalidJson("malformed_json", "the body is not JSON") from error
    problem = unstorable_text(value) if storable else None
    if problem:
        raise InvalidJson("invalid_event", problem)
    return value


def _why_unstorable(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate (\\ud800-\\udfff), which is not valid Unicode"
    return None


def unstorable_text(value: Any, path: str = "") -> str | None:
    """The first string (key or value) Postgres' jsonb and text cannot hold, as 'field a.b[2]: why'."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            why = _why_unstorable(item)
            if why:
                return f"field {where or '(the body)'} {why}"
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{where}.{key}" if where else str(key)
                why = _why_unstorable(key)
                if why:
                    return f"a key in {where or 'the body'} {why}"
                stack.append((child_path, child))
        elif isinstance(item, list):
            stack.extend((f"{where}[{index}]", child) for index, child in enumerate(item))
    return None
