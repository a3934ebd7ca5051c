"""Split a SQL script into statements, the way psql does: semicolons outside quotes, comments and
dollar-quoted bodies end a statement. Each statement keeps the line it starts on, for error messages."""

from __future__ import annotations

import re
from dataclasses import dataclass

DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$")


@dataclass(frozen=True)
class Statement:
    line: int  # 1-based line of the statement's first significant character
    sql: str


def _skip_quoted(sql: str, i: int, quote: str, backslash_escapes: bool) -> int:
    """Index just past the closing quote of the literal opened at sql[i]."""
    i += 1
    while i < len(sql):
        char = sql[i]
        if backslash_escapes and char == "\\":
            i += 2
            continue
        if char == quote:
            if i + 1 < len(sql) and sql[i + 1] == quote:  # doubled quote: an escaped one
                i += 2
                continue
            return i + 1
        i += 1
    return i


def _skip_block_comment(sql: str, i: int) -> int:
    depth = 0
    while i < len(sql):
        if sql.startswith("/*", i):
            depth += 1
            i += 2
        elif sql.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return i


def split_statements(sql: str) -> list[Statement]:
    statements: list[Statement] = []
    start = 0
    first_significant: int | None = None
    i = 0
    while i < len(sql):
        char = sql[i]
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = len(sql) if end == -1 else end + 1
            continue
        if sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
            continue
        if char.isspace():
            i += 1
            continue
        if first_significant is None:
            first_significant = i
        if char == "'":
            escapes = i > 0 and sql[i - 1] in "eE" and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))
            i = _skip_quoted(sql, i, "'", escapes)
        elif char == '"':
            i = _skip_quoted(sql, i, '"', False)
        elif char == "$" and (match := DOLLAR_TAG.match(sql, i)) and not (i > 0 and sql[i - 1].isalnum()):
            end = sql.find(match.group(), match.end())
            i = len(sql) if end == -1 else end + len(match.group())
        elif char == ";":
            statements.append(Statement(sql.count("\n", 0, first_significant) + 1, sql[start : i + 1]))
            start = i + 1
            first_significant = None
            i += 1
        else:
            i += 1
    if first_significant is not None:  # a last statement without a semicolon
        statements.append(Statement(sql.count("\n", 0, first_significant) + 1, sql[start:]))
    return statements
