"""The hostile-JSON checks alone: depth counted without parsing, UTF-8 only, unstorable text named by field."""

from __future__ import annotations

import pytest

from trove.json_input import InvalidJson, nesting_depth, parse_json, unstorable_text


@pytest.mark.parametrize(
    ("body", "depth"),
    [(b"{}", 1), (b'{"a": [1, {"b": 2}]}', 3), (b'{"a": "[[[[{{{{"}', 1), (b'["\\"[["]', 1), (b"1", 0)],
)
def test_nesting_depth_skips_strings(body: bytes, depth: int) -> None:
    assert nesting_depth(body) == depth


def test_parse_json_names_the_field_it_cannot_store() -> None:
    assert parse_json(b'{"a": {"b": ["ok"]}}') == {"a": {"b": ["ok"]}}
    with pytest.raises(InvalidJson, match=r"field a\.b\[1\] contains a NUL"):
        parse_json(b'{"a": {"b": ["ok", "no\\u0000"]}}')
    with pytest.raises(InvalidJson, match="nested more than 32"):
        parse_json(b"[" * 33 + b"]" * 33)
    with pytest.raises(InvalidJson) as refused:
        parse_json(b'{"a": ')
    assert refused.value.code == "malformed_json"
    assert (
        unstorable_text({"k\x00": 1}) == "a key in the body contains a NUL character (\\u0000), which cannot be stored"
    )
