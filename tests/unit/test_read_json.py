"""The read API's JSON: orjson for speed, and every value a platform's payload may hold written exactly."""

from __future__ import annotations

import json

from trove.http.read import json_bytes


def test_a_page_is_compact_utf8_json() -> None:
    page = {"posts": [{"text": "café ☕", "n": 3, "x": 1.5, "none": None}], "next_cursor": None}
    written = json_bytes(page)
    assert json.loads(written) == page
    assert "café ☕".encode() in written  # UTF-8, not \\u escapes


def test_an_integer_beyond_64_bits_is_written_exactly() -> None:
    huge = 2**70 + 1  # orjson refuses it; a stored payload may hold one
    written = json_bytes({"data": {"id": huge, "negative": -huge}})
    assert json.loads(written) == {"data": {"id": huge, "negative": -huge}}
