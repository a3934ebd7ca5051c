from trove.db.sqlsplit import split_statements


def lines_and_text(sql: str) -> list[tuple[int, str]]:
    return [(s.line, s.sql.strip()) for s in split_statements(sql)]


def test_splits_on_semicolons_and_keeps_start_lines() -> None:
    sql = "-- header\ncreate table a (id int);\n\n/* note; */\ninsert into a values (1);\nselect 1"
    assert lines_and_text(sql) == [
        (2, "-- header\ncreate table a (id int);"),
        (5, "/* note; */\ninsert into a values (1);"),
        (6, "select 1"),
    ]


def test_semicolons_inside_literals_comments_and_bodies_do_not_split() -> None:
    sql = (
        "select 'a;b', \"we;ird\", E'it\\'s;';\n"
        "create function f() returns int language plpgsql as $body$ begin return 1; end; $body$;\n"
        "select $$;$$; -- trailing; comment\n"
        "select 'it''s; fine' /* nested /* ; */ ; */;\n"
    )
    assert [s.line for s in split_statements(sql)] == [1, 2, 3, 4]
    assert "return 1; end;" in split_statements(sql)[1].sql


def test_only_comments_and_whitespace_make_no_statement() -> None:
    assert split_statements("-- nothing\n\n/* here */\n") == []


def test_dollar_in_identifiers_is_not_a_quote() -> None:
    assert [s.line for s in split_statements("select a$b from t;\nselect 2;")] == [1, 2]
